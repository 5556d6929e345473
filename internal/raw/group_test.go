package raw_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/proxy"
	"arca/internal/raw"
	"arca/internal/repo"
)

func TestGroup(t *testing.T) {
	e := formattest.Serve(t, func(repos *repo.Service, _ *auth.Service, cache *proxy.Service) format.Format {
		return raw.New(repos, cache)
	})
	e.Create(t, `{"name":"a","format":"raw","type":"hosted"}`)
	e.Create(t, `{"name":"b","format":"raw","type":"hosted"}`)
	e.Create(t, `{"name":"g","format":"raw","type":"group","group":{"members":["a","b"],"writeMember":"a"}}`)
	e.Create(t, `{"name":"ro","format":"raw","type":"group","group":{"members":["b"]}}`)
	e.Create(t, `{"name":"outer","format":"raw","type":"group","group":{"members":["ro","a"]}}`)
	ctx := context.Background()
	var grants []auth.Grant
	for _, name := range []string{"g", "b", "outer", "ro"} {
		grants = append(grants, auth.Grant{Repository: name, Actions: []string{"read"}})
	}
	if err := e.Auth.CreateUser(ctx, &auth.User{Name: "reader", Password: "reader-secret", Permissions: grants}); err != nil {
		t.Fatal(err)
	}
	do := func(user, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.URL+"/repository/"+path, strings.NewReader(body))
		pass := formattest.AdminPassword
		if user == "reader" {
			pass = "reader-secret"
		}
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []struct{ path, body string }{{"a/x", "from a"}, {"b/x", "from b"}, {"b/y", "only b"}} {
		if status, msg := do("admin", "PUT", p.path, p.body); status != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s", p.path, status, msg)
		}
	}
	for _, tt := range []struct {
		user, path string
		status     int
		body       string
	}{
		{"admin", "g/x", 200, "from a"}, // the first member wins
		{"admin", "g/y", 200, "only b"},
		{"admin", "g/z", 404, ""},
		{"admin", "outer/x", 200, "from b"}, // a nested group, asked first
		{"reader", "g/x", 200, "from b"},    // a member the caller cannot read is skipped
		{"reader", "a/x", 403, ""},
	} {
		status, body := do(tt.user, "GET", tt.path, "")
		if status != tt.status || (tt.body != "" && body != tt.body) {
			t.Errorf("%s GET %s = %d %q, want %d %q", tt.user, tt.path, status, body, tt.status, tt.body)
		}
	}
	// Writes land in the write member; a group without one refuses them.
	if status, msg := do("admin", "PUT", "g/new", "through g"); status != http.StatusCreated {
		t.Fatalf("PUT through the group = %d %s", status, msg)
	}
	if status, body := do("admin", "GET", "a/new", ""); status != 200 || body != "through g" {
		t.Errorf("the write member has %d %q", status, body)
	}
	if status, body := do("admin", "PUT", "ro/new", "x"); status != http.StatusMethodNotAllowed || !strings.Contains(body, "writeMember") {
		t.Errorf("PUT to a group without writeMember = %d %s", status, body)
	}
	// Writing through a group takes the permission on the write member.
	if status, _ := do("reader", "PUT", "g/other", "x"); status != http.StatusForbidden {
		t.Errorf("reader's PUT through the group = %d, want 403", status)
	}
}
