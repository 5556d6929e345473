package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/proxy"
	"arca/internal/raw"
	"arca/internal/repo"
)

// joiningFormat is raw with merged reads: a group answers "merged/..."
// with its readable members' files joined by "|", and counts the merges.
type joiningFormat struct {
	*raw.Format
	merges atomic.Int32
	keep   bool
	delay  time.Duration
}

func (f *joiningFormat) Merges(r *http.Request, path string) bool {
	return strings.HasPrefix(path, "merged/")
}

func (f *joiningFormat) MergeVariant(r *http.Request, path string) (string, bool) { return "", f.keep }

func (f *joiningFormat) Routes() []format.Route {
	routes := f.Format.Routes()
	get := routes[0].Handle
	routes[0].Handle = func(w http.ResponseWriter, r *format.Request) error {
		if r.Repo.Type != repo.Group {
			return get(w, r)
		}
		f.merges.Add(1)
		time.Sleep(f.delay)
		var parts []string
		for _, m := range r.Members {
			c, err := format.Capture(get, m)
			if err != nil {
				continue
			}
			parts = append(parts, string(c.Body))
		}
		body := strings.Join(parts, "|")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"`+blob.DigestBytes([]byte(body)).SHA256+`"`)
		io.WriteString(w, body) //nolint:errcheck // the client went away
		return nil
	}
	return routes
}

func TestMergedViewsAreKeptUntilAMemberChanges(t *testing.T) {
	f := &joiningFormat{keep: true}
	e := formattest.Serve(t, func(repos *repo.Service, _ *auth.Service, cache *proxy.Service) format.Format {
		f.Format = raw.New(repos, cache)
		return f
	})
	e.Create(t, `{"name":"a","format":"raw","type":"hosted","writePolicy":"allow"}`)
	e.Create(t, `{"name":"b","format":"raw","type":"hosted","writePolicy":"allow"}`)
	e.Create(t, `{"name":"g","format":"raw","type":"group","group":{"members":["a","b"]}}`)
	if err := e.Auth.CreateUser(context.Background(), &auth.User{Name: "reader", Password: "reader-secret",
		Permissions: []auth.Grant{{Repository: "g", Actions: []string{"read"}}, {Repository: "b", Actions: []string{"read"}}}}); err != nil {
		t.Fatal(err)
	}
	do := func(user, method, path, body string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.URL+"/repository/"+path, strings.NewReader(body))
		if user == "admin" {
			req.SetBasicAuth("admin", formattest.AdminPassword)
		} else {
			req.SetBasicAuth(user, "reader-secret")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	read := func(user string, want string, merges int32) *http.Response {
		t.Helper()
		resp := do(user, "GET", "g/merged/x", "")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != want {
			t.Errorf("%s: GET = %d %q, want %q", user, resp.StatusCode, b, want)
		}
		if n := f.merges.Load(); n != merges {
			t.Errorf("%s: %d merges so far, want %d", user, n, merges)
		}
		return resp
	}
	do("admin", "PUT", "a/merged/x", "A")
	do("admin", "PUT", "b/merged/x", "B")

	first := read("admin", "A|B", 1)
	read("admin", "A|B", 1) // kept
	// The kept answer honours conditional and HEAD requests.
	if resp := do("admin", "GET", "g/merged/x", "", "If-None-Match", first.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match on a kept answer = %d, want 304", resp.StatusCode)
	}
	// (Go's client asks for gzip on a GET, not on a HEAD, unless told.)
	if resp := do("admin", "HEAD", "g/merged/x", "", "Accept-Encoding", "gzip"); resp.StatusCode != http.StatusOK || resp.ContentLength != 3 {
		t.Errorf("HEAD of a kept answer = %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	// A caller who cannot read a has an answer of its own.
	read("reader", "B", 2)
	read("reader", "B", 2)
	// A change to a member is seen at once, by every caller.
	do("admin", "PUT", "b/merged/x", "B2")
	read("admin", "A|B2", 3)
	read("reader", "B2", 4)
	do("admin", "DELETE", "a/merged/x", "")
	read("admin", "B2", 5)
	read("admin", "B2", 5)
	if n := f.merges.Load(); n != 5 {
		t.Fatalf("%d merges", n)
	}

	// Requests that arrive during a merge wait for it.
	f.delay = 100 * time.Millisecond
	do("admin", "PUT", "b/merged/x", "B3")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", e.URL+"/repository/g/merged/x", nil)
			req.SetBasicAuth("admin", formattest.AdminPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if b, _ := io.ReadAll(resp.Body); string(b) != "B3" {
				t.Errorf("concurrent GET = %d %q", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	if n := f.merges.Load(); n != 6 {
		t.Errorf("20 concurrent requests merged %d times, want once", n-5)
	}
	f.delay = 0

	// A client asking for revalidation gets a new merge, kept for others.
	if resp := do("admin", "GET", "g/merged/x", "", "Cache-Control", "max-age=0"); resp.StatusCode != http.StatusOK || f.merges.Load() != 7 {
		t.Errorf("Cache-Control: max-age=0 = %d after %d merges, want a new merge (7)", resp.StatusCode, f.merges.Load())
	}
	read("admin", "B3", 7)

	// A format that declines keeping is merged every time.
	f.keep = false
	read("admin", "B3", 8)
	read("admin", "B3", 9)
}
