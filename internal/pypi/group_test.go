package pypi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"arca/internal/auth"
)

// getAs reads a URL as a user with a password, and returns the status,
// the body and the headers.
func getAs(t *testing.T, user, pass, u string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// simplePage is a PEP 691 project page as a test reads it.
type simplePage struct {
	Meta struct {
		APIVersion string `json:"api-version"`
	} `json:"meta"`
	Versions []string `json:"versions"`
	Files    []struct {
		Filename       string            `json:"filename"`
		URL            string            `json:"url"`
		Hashes         map[string]string `json:"hashes"`
		RequiresPython string            `json:"requires-python"`
		Size           int64             `json:"size"`
		UploadTime     string            `json:"upload-time"`
		CoreMetadata   any               `json:"core-metadata"`
	} `json:"files"`
}

func TestGroupMerge(t *testing.T) {
	e := serve(t)
	for _, name := range []string{"a", "b"} {
		e.Create(t, `{"name":"`+name+`","format":"pypi","type":"hosted","online":true}`)
	}
	e.Create(t, `{"name":"g","format":"pypi","type":"group","online":true,"group":{"members":["a","b"],"writeMember":"a"}}`)
	e.Create(t, `{"name":"ro","format":"pypi","type":"group","online":true,"group":{"members":["b"]}}`)
	e.Create(t, `{"name":"outer","format":"pypi","type":"group","online":true,"group":{"members":["ro","a"]}}`)
	repoURL := func(name string) string { return e.URL + "/repository/" + name + "/" }

	a1 := sdist(t, "demo", "1.0", "from a")
	b1 := sdist(t, "demo", "1.0", "from b")
	b2 := wheelBytes(t, "demo", "2.0")
	for _, u := range []struct {
		repo, file string
		content    []byte
		fields     map[string]string
	}{
		{"a", "demo-1.0.tar.gz", a1, nil},
		{"a", "only_a-1.0.tar.gz", sdist(t, "only_a", "1.0"), map[string]string{"name": "only_a"}},
		{"b", "demo-1.0.tar.gz", b1, nil},
		{"b", "demo-2.0-py3-none-any.whl", b2, map[string]string{"version": "2.0", "requires_python": ">=3.9"}},
	} {
		if code, body := upload(t, repoURL(u.repo), u.file, u.content, u.fields); code != 200 {
			t.Fatalf("upload %s to %s: %d %s", u.file, u.repo, code, body)
		}
	}

	// HTML: a's demo-1.0.tar.gz wins over b's, b's wheel is added, every
	// link points at the group.
	code, body, h := getAs(t, "admin", "secret", repoURL("g")+"simple/demo/")
	if code != 200 || h.Get("Content-Type") != "text/html" {
		t.Fatalf("group page: %d %s %s", code, h.Get("Content-Type"), body)
	}
	for _, want := range []string{
		`href="` + repoURL("g") + `packages/demo/1.0/demo-1.0.tar.gz#sha256=` + sha256Hex(a1) + `"`,
		`href="` + repoURL("g") + `packages/demo/2.0/demo-2.0-py3-none-any.whl#sha256=` + sha256Hex(b2) + `" data-requires-python="&gt;=3.9" data-dist-info-metadata="sha256=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("group page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, sha256Hex(b1)) || strings.Contains(body, "/repository/a/") || strings.Contains(body, "/repository/b/") {
		t.Errorf("group page shows b's shadowed file or a member's link:\n%s", body)
	}
	etag := h.Get("ETag")
	if etag == "" {
		t.Error("no ETag on the group page")
	} else if code, _, _ := getAs(t, "admin", "secret", repoURL("g")+"simple/demo/", "If-None-Match", etag); code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", code)
	}

	// JSON: the same files, versions united, PEP 700's fields kept.
	code, body, h = getAs(t, "admin", "secret", repoURL("g")+"simple/demo/", "Accept", "application/vnd.pypi.simple.v1+json")
	var page simplePage
	if code != 200 || h.Get("Content-Type") != "application/vnd.pypi.simple.v1+json" || json.Unmarshal([]byte(body), &page) != nil {
		t.Fatalf("group JSON page: %d %s %s", code, h.Get("Content-Type"), body)
	}
	if page.Meta.APIVersion != "1.1" || strings.Join(page.Versions, ",") != "1.0,2.0" || len(page.Files) != 2 {
		t.Fatalf("group JSON page: %s", body)
	}
	if f := page.Files[0]; f.Filename != "demo-1.0.tar.gz" || f.Hashes["sha256"] != sha256Hex(a1) || f.Size != int64(len(a1)) ||
		f.URL != repoURL("g")+"packages/demo/1.0/demo-1.0.tar.gz" || f.UploadTime == "" {
		t.Errorf("first file: %+v", f)
	}
	if f := page.Files[1]; f.URL != repoURL("g")+"packages/demo/2.0/demo-2.0-py3-none-any.whl" || f.RequiresPython != ">=3.9" ||
		f.CoreMetadata == nil || f.Size != int64(len(b2)) {
		t.Errorf("second file: %+v", f)
	}

	// Downloads through the group come from the member that won the name.
	for path, want := range map[string][]byte{
		"packages/demo/1.0/demo-1.0.tar.gz":           a1,
		"packages/demo/2.0/demo-2.0-py3-none-any.whl": b2,
	} {
		if code, body, _ := getAs(t, "admin", "secret", repoURL("g")+path); code != 200 || body != string(want) {
			t.Errorf("GET g/%s: %d, %d bytes", path, code, len(body))
		}
	}
	if code, body, _ := getAs(t, "admin", "secret", repoURL("g")+"packages/demo/2.0/demo-2.0-py3-none-any.whl.metadata"); code != 200 ||
		!strings.Contains(body, "Version: 2.0") {
		t.Errorf("metadata through the group: %d %s", code, body)
	}

	// The index unites the members' projects.
	code, body, _ = getAs(t, "admin", "secret", repoURL("g")+"simple/")
	if code != 200 || !strings.Contains(body, `<a href="demo/">demo</a>`) || !strings.Contains(body, `<a href="only-a/">only-a</a>`) {
		t.Errorf("group index: %d %s", code, body)
	}
	code, body, _ = getAs(t, "admin", "secret", repoURL("g")+"simple/", "Accept", "application/vnd.pypi.simple.v1+json")
	if code != 200 || !strings.Contains(body, `"projects":[{"name":"demo"},{"name":"only-a"}]`) {
		t.Errorf("group JSON index: %d %s", code, body)
	}
	if code, _, _ := getAs(t, "admin", "secret", repoURL("g")+"simple/nothing/"); code != 404 {
		t.Errorf("a project no member has: %d", code)
	}
	// Names are redirected to the group's normalized URL.
	req, _ := http.NewRequest("GET", repoURL("g")+"simple/Demo/", nil)
	req.SetBasicAuth("admin", "secret")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != repoURL("g")+"simple/demo/" {
		t.Errorf("redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A nested group asked first gives b's file of the shared name.
	code, body, _ = getAs(t, "admin", "secret", repoURL("outer")+"simple/demo/")
	if code != 200 || !strings.Contains(body, repoURL("outer")+"packages/demo/1.0/demo-1.0.tar.gz#sha256="+sha256Hex(b1)) ||
		strings.Contains(body, sha256Hex(a1)) || strings.Contains(body, "/repository/ro/") {
		t.Errorf("nested group page: %d %s", code, body)
	}
	if code, body, _ := getAs(t, "admin", "secret", repoURL("outer")+"packages/demo/1.0/demo-1.0.tar.gz"); code != 200 || body != string(b1) {
		t.Errorf("download through the nested group: %d", code)
	}

	// The JSON API is merged too.
	code, body, _ = getAs(t, "admin", "secret", repoURL("g")+"pypi/demo/json")
	var doc struct {
		Info     map[string]any `json:"info"`
		URLs     []map[string]any
		Releases map[string][]map[string]any `json:"releases"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("group JSON API: %d %s", code, body)
	}
	if doc.Info["version"] != "2.0" || len(doc.Releases) != 2 || len(doc.URLs) != 1 ||
		doc.URLs[0]["url"] != repoURL("g")+"packages/demo/2.0/demo-2.0-py3-none-any.whl" ||
		doc.Releases["1.0"][0]["digests"].(map[string]any)["sha256"] != sha256Hex(a1) ||
		doc.Info["release_url"] != repoURL("g")+"pypi/demo/2.0/" {
		t.Errorf("group JSON API: %s", body)
	}
	code, body, _ = getAs(t, "admin", "secret", repoURL("g")+"pypi/demo/1.0/json")
	if code != 200 || !strings.Contains(body, sha256Hex(a1)) || strings.Contains(body, sha256Hex(b1)) || strings.Contains(body, `"releases"`) {
		t.Errorf("group release JSON: %d %s", code, body)
	}
	if code, _, _ := getAs(t, "admin", "secret", repoURL("g")+"pypi/demo/9.0/json"); code != 404 {
		t.Errorf("missing release through the group: %d", code)
	}

	// A caller who may not read b sees none of b's files.
	ctx := context.Background()
	if err := e.Auth.CreateUser(ctx, &auth.User{Name: "reader", Password: "reader-secret", Permissions: []auth.Grant{
		{Repository: "g", Actions: []string{"read"}}, {Repository: "a", Actions: []string{"read"}}}}); err != nil {
		t.Fatal(err)
	}
	code, body, _ = getAs(t, "reader", "reader-secret", repoURL("g")+"simple/demo/")
	if code != 200 || !strings.Contains(body, sha256Hex(a1)) || strings.Contains(body, "demo-2.0") {
		t.Errorf("reader's group page: %d %s", code, body)
	}
	if code, _, _ := getAs(t, "reader", "reader-secret", repoURL("g")+"packages/demo/2.0/demo-2.0-py3-none-any.whl"); code != 404 {
		t.Errorf("reader's download of b's file: %d, want 404", code)
	}

	// Uploads through the group land in its write member; a group
	// without one refuses them in plain text.
	if code, body := upload(t, repoURL("g"), "demo-3.0.tar.gz", sdist(t, "demo", "3.0"), map[string]string{"version": "3.0"}); code != 200 {
		t.Fatalf("upload through the group: %d %s", code, body)
	}
	if code, body, _ := getAs(t, "admin", "secret", repoURL("a")+"simple/demo/"); code != 200 || !strings.Contains(body, "demo-3.0.tar.gz") {
		t.Errorf("a after the upload through g: %d %s", code, body)
	}
	if code, body, _ := getAs(t, "admin", "secret", repoURL("b")+"simple/demo/"); code != 200 || strings.Contains(body, "demo-3.0.tar.gz") {
		t.Errorf("b after the upload through g: %d %s", code, body)
	}
	ct, form := form(t, "demo-4.0.tar.gz", sdist(t, "demo", "4.0"), map[string]string{"version": "4.0"})
	resp, body = do(t, "POST", repoURL("ro"), ct, form)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(body, "writeMember") {
		t.Errorf("upload to a group without writeMember: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestGroupWithProxy merges a hosted member with a proxy of another arca,
// and passes over a proxy whose upstream is down.
func TestGroupWithProxy(t *testing.T) {
	up := serve(t)
	up.Create(t, `{"name":"up","format":"pypi","type":"hosted","online":true,"anonymousRead":true}`)
	upURL := up.URL + "/repository/up/"
	u1 := sdist(t, "demo", "1.0", "upstream")
	u4 := sdist(t, "demo", "4.0", "upstream")
	for _, c := range []struct {
		file    string
		content []byte
		version string
	}{{"demo-1.0.tar.gz", u1, "1.0"}, {"demo-4.0.tar.gz", u4, "4.0"}} {
		if code, body := upload(t, upURL, c.file, c.content, map[string]string{"version": c.version}); code != 200 {
			t.Fatalf("upload upstream: %d %s", code, body)
		}
	}
	// A port nothing listens on, for a dead upstream.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/"
	l.Close()

	e := serve(t)
	e.Create(t, `{"name":"h","format":"pypi","type":"hosted","online":true}`)
	e.Create(t, fmt.Sprintf(`{"name":"pp","format":"pypi","type":"proxy","online":true,"proxy":{"url":%q,"retries":0}}`, upURL))
	e.Create(t, fmt.Sprintf(`{"name":"down","format":"pypi","type":"proxy","online":true,"proxy":{"url":%q,"retries":0}}`, dead))
	e.Create(t, `{"name":"g","format":"pypi","type":"group","online":true,"group":{"members":["h","down","pp"],"writeMember":"h"}}`)
	e.Create(t, `{"name":"gdown","format":"pypi","type":"group","online":true,"group":{"members":["down"]}}`)
	g := e.URL + "/repository/g/"
	h1 := sdist(t, "demo", "1.0", "hosted")
	if code, body := upload(t, e.URL+"/repository/h/", "demo-1.0.tar.gz", h1, nil); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	code, body, _ := getAs(t, "admin", "secret", g+"simple/demo/")
	if code != 200 || !strings.Contains(body, g+"packages/demo/1.0/demo-1.0.tar.gz#sha256="+sha256Hex(h1)) ||
		!strings.Contains(body, g+"packages/demo/4.0/demo-4.0.tar.gz#sha256="+sha256Hex(u4)) || strings.Contains(body, sha256Hex(u1)) {
		t.Fatalf("group page with a proxy: %d %s", code, body)
	}
	for path, want := range map[string][]byte{"packages/demo/1.0/demo-1.0.tar.gz": h1, "packages/demo/4.0/demo-4.0.tar.gz": u4} {
		if code, body, _ := getAs(t, "admin", "secret", g+path); code != 200 || body != string(want) {
			t.Errorf("GET g/%s: %d %d bytes", path, code, len(body))
		}
	}
	// The proxy serves the JSON API too: the group's has h's 1.0 and the
	// upstream's 4.0, the dead member passed over.
	code, body, _ = getAs(t, "admin", "secret", g+"pypi/demo/json")
	if code != 200 || !strings.Contains(body, sha256Hex(h1)) || strings.Contains(body, sha256Hex(u1)) ||
		!strings.Contains(body, g+"packages/demo/4.0/demo-4.0.tar.gz") {
		t.Errorf("group JSON API with a proxy: %d %s", code, body)
	}
	// With only a dead member, its failure is the answer.
	if code, body, _ := getAs(t, "admin", "secret", e.URL+"/repository/gdown/simple/demo/"); code < 500 {
		t.Errorf("group of a dead proxy: %d %s", code, body)
	}
}
