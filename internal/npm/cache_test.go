package npm

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/format"
	"arca/internal/meta"
	"arca/internal/repo"
	"arca/internal/server"
)

// cacheRegistry serves one npm repository "js" as registry in server_test.go
// does, and returns the format too so that its cache can be inspected.
func cacheRegistry(t *testing.T) (*Format, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	driver, err := filesystem.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := blob.NewStore(driver)
	repos := repo.NewService(db, blobs)
	authn := auth.NewService(db)
	f := New(repos, authn, nil)
	repos.RegisterFormat(f.ID(), f.ValidateSettings)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := server.New(server.Options{}, log, server.Services{DB: db, Blobs: blobs, Repos: repos,
		Auth: authn, Audit: audit.New(db, log)}, []format.Format{f})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); db.Close() })
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err := authn.CreateUser(ctx, &auth.User{Name: "admin", PasswordHash: string(hash), Admin: true}); err != nil {
		t.Fatal(err)
	}
	r := &repo.Repository{Name: "js", Format: "npm", Type: repo.Hosted, Online: true, AnonymousRead: true, WritePolicy: repo.AllowOnce}
	if err := repos.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	return f, ts.URL + "/repository/js/"
}

// cacheCall sends a request (anonymously: the repository reads without
// credentials, and a password would cost a bcrypt per request) and returns
// the response and its body.
func cacheCall(t *testing.T, method, url string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	if method != http.MethodGet {
		req.SetBasicAuth("admin", "secret")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// publishVersion publishes one version as npm does and fails the test
// unless it lands.
func publishVersion(t *testing.T, base, name, version string) {
	t.Helper()
	tgz := tarball(t, map[string]string{"package/package.json": fmt.Sprintf(`{"name":%q,"version":%q}`, name, version)})
	s512, s1 := sha512.Sum512(tgz), sha1.Sum(tgz)
	body, _ := json.Marshal(map[string]any{
		"name": name, "dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: map[string]any{"name": name, "version": version,
			"description": "many versions", "dependencies": map[string]string{"left-pad": "^1.3.0"},
			"dist": map[string]string{"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"shasum": hex.EncodeToString(s1[:])}}},
		"_attachments": map[string]any{name + "-" + version + ".tgz": map[string]any{
			"content_type": "application/octet-stream",
			"data":         base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}},
	})
	if resp, b := cacheCall(t, "PUT", base+name, body); resp == nil || resp.StatusCode != 201 {
		t.Errorf("publish %s@%s: %v %s", name, version, resp, b)
	}
}

// cached returns the newest cache entry of a package's form, its key and
// the number of entries.
func cached(f *Format, name string, abbreviated bool) (cacheKey, *rendered, int) {
	f.cache.mu.Lock()
	defer f.cache.mu.Unlock()
	var key cacheKey
	var out *rendered
	for k, r := range f.cache.m {
		if k.name == name && k.abbreviated == abbreviated && (out == nil || k.revision > key.revision) {
			key, out = k, r
		}
	}
	return key, out, len(f.cache.m)
}

// versionsOf decodes a gzip-compressed packument and returns its versions.
func versionsOf(t *testing.T, resp *http.Response, gz []byte) map[string]json.RawMessage {
	t.Helper()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not gzip-compressed: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Versions map[string]json.RawMessage }
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatalf("packument: %v", err)
	}
	return doc.Versions
}

// TestPackumentCache500 publishes a package with 500 versions and checks
// that both packument forms are served from the cache, with ETag/304, and
// that a new publish invalidates them.
func TestPackumentCache500(t *testing.T) {
	const name, count = "many", 500
	f, base := cacheRegistry(t)

	// 500 versions, through the publish endpoint, a few at a time.
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range work {
				publishVersion(t, base, name, v)
			}
		}()
	}
	for i := range count {
		work <- fmt.Sprintf("1.%d.%d", i/10, i%10)
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	forms := []struct {
		label       string
		accept      string
		abbreviated bool
	}{
		{"full", "application/json", false},
		{"abbreviated", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", true},
	}
	etags := map[bool]string{}
	for _, form := range forms {
		get := func(header ...string) (*http.Response, []byte) {
			t.Helper()
			resp, b := cacheCall(t, "GET", base+name, nil,
				append([]string{"Accept", form.accept, "Accept-Encoding", "gzip"}, header...)...)
			if resp == nil {
				t.FailNow()
			}
			return resp, b
		}

		// First GET: a miss that renders and stores the document.
		if _, r, _ := cached(f, name, form.abbreviated); r != nil {
			t.Fatalf("%s: cached before any GET", form.label)
		}
		resp, b := get()
		if resp.StatusCode != 200 || len(versionsOf(t, resp, b)) != count {
			t.Fatalf("%s: %s, %d versions", form.label, resp.Status, len(versionsOf(t, resp, b)))
		}
		key, first, _ := cached(f, name, form.abbreviated)
		if first == nil || resp.Header.Get("ETag") != first.etag || !bytes.Equal(b, first.gz) {
			t.Fatalf("%s: the first GET left no matching cache entry", form.label)
		}

		// Second GET: the same entry answers; a miss would have stored a
		// new *rendered under the key.
		resp2, b2 := get()
		if _, again, _ := cached(f, name, form.abbreviated); again != first {
			t.Errorf("%s: the second GET re-rendered the packument", form.label)
		}
		if resp2.StatusCode != 200 || resp2.Header.Get("ETag") != first.etag || !bytes.Equal(b2, b) {
			t.Errorf("%s: second GET: %s, ETag %s", form.label, resp2.Status, resp2.Header.Get("ETag"))
		}
		// And it is what is sent: a planted entry is served as is, which
		// the document in the database could not produce.
		planted, err := render([]byte(`{"planted":true}`))
		if err != nil {
			t.Fatal(err)
		}
		f.cache.put(key, planted)
		if resp, b := get(); resp.Header.Get("ETag") != planted.etag || !bytes.Equal(b, planted.gz) {
			t.Errorf("%s: the planted cache entry was not served", form.label)
		}
		f.cache.put(key, first)

		// ETag/304, plain and weak, and 200 for another tag.
		etag := first.etag
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
			if resp, b := get("If-None-Match", inm); resp.StatusCode != 304 || len(b) != 0 {
				t.Errorf("%s: If-None-Match %s: %s, %d bytes", form.label, inm, resp.Status, len(b))
			}
		}
		if resp, _ := get("If-None-Match", `"other"`); resp.StatusCode != 200 {
			t.Errorf("%s: If-None-Match of another tag: %s", form.label, resp.Status)
		}
		etags[form.abbreviated] = etag
	}
	if etags[false] == etags[true] {
		t.Errorf("both forms have ETag %s", etags[false])
	}

	// A new publish: both forms show it at once, with a new ETag, and the
	// old ETag no longer gets 304.
	publishVersion(t, base, name, "2.0.0")
	for _, form := range forms {
		resp, b := cacheCall(t, "GET", base+name, nil, "Accept", form.accept, "Accept-Encoding", "gzip",
			"If-None-Match", etags[form.abbreviated])
		if resp == nil {
			t.FailNow()
		}
		if resp.StatusCode != 200 {
			t.Errorf("%s after a publish, with the old ETag: %s, want 200", form.label, resp.Status)
			continue
		}
		versions := versionsOf(t, resp, b)
		if _, ok := versions["2.0.0"]; !ok || len(versions) != count+1 {
			t.Errorf("%s after a publish: %d versions, 2.0.0 present: %v", form.label, len(versions), ok)
		}
		if resp.Header.Get("ETag") == etags[form.abbreviated] {
			t.Errorf("%s: ETag unchanged by a publish", form.label)
		}
		if _, r, _ := cached(f, name, form.abbreviated); r == nil || r.etag != resp.Header.Get("ETag") {
			t.Errorf("%s: the new revision is not cached", form.label)
		}
	}
}
