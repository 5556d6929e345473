package npm_test

import (
	"archive/tar"
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
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/format"
	"arca/internal/meta"
	"arca/internal/npm"
	"arca/internal/repo"
	"arca/internal/server"
)

// registry serves one npm repository "js" over stores in a temporary
// folder; the user admin's password is "secret".
func registry(t *testing.T) string {
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
	f := npm.New(repos, authn, nil)
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
	return ts.URL + "/repository/js/"
}

// call sends a request as admin and returns the status and body.
func call(t *testing.T, method, url string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "secret")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// publishBody is what npm publish sends for one version.
func publishBody(t *testing.T, name, version string, tags ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	pj := fmt.Sprintf(`{"name":%q,"version":%q}`, name, version)
	tw.WriteHeader(&tar.Header{Name: "package/package.json", Mode: 0o644, Size: int64(len(pj))})
	tw.Write([]byte(pj))
	tw.Close()
	gz.Close()
	tgz := buf.Bytes()
	s512, s1 := sha512.Sum512(tgz), sha1.Sum(tgz)
	distTags := map[string]string{}
	for _, tag := range tags {
		distTags[tag] = version
	}
	b, _ := json.Marshal(map[string]any{
		"name": name, "dist-tags": distTags,
		"versions": map[string]any{version: map[string]any{"name": name, "version": version,
			"description": "the " + name + " package", "keywords": []string{"kw-" + name},
			"scripts": map[string]string{"postinstall": "true"},
			"dist": map[string]string{"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"shasum": hex.EncodeToString(s1[:])}}},
		"_attachments": map[string]any{name + "-" + version + ".tgz": map[string]any{
			"data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}},
	})
	return b
}

func TestPackumentForms(t *testing.T) {
	base := registry(t)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if resp, b := call(t, "PUT", base+"@sc%2fpkg", publishBody(t, "@sc/pkg", v, "latest")); resp.StatusCode != 201 {
			t.Fatalf("publish %s: %s %s", v, resp.Status, b)
		}
	}
	if resp, _ := call(t, "PUT", base+"@sc%2fpkg", publishBody(t, "@sc/pkg", "2.0.0-rc.1", "next")); resp.StatusCode != 201 {
		t.Fatalf("publish rc: %s", resp.Status)
	}

	resp, b := call(t, "GET", base+"@sc%2fpkg", nil)
	var full struct {
		DistTags map[string]string         `json:"dist-tags"`
		Time     map[string]string         `json:"time"`
		Versions map[string]map[string]any `json:"versions"`
		Rev      string                    `json:"_rev"`
	}
	if err := json.Unmarshal(b, &full); err != nil || resp.StatusCode != 200 {
		t.Fatalf("packument: %s %v %s", resp.Status, err, b)
	}
	if full.DistTags["latest"] != "1.1.0" || full.DistTags["next"] != "2.0.0-rc.1" || len(full.Time) != 5 || full.Rev == "" {
		t.Errorf("packument: tags %v, time %v, rev %q", full.DistTags, full.Time, full.Rev)
	}
	tarball := full.Versions["1.0.0"]["dist"].(map[string]any)["tarball"].(string)
	if tarball != base+"@sc/pkg/-/pkg-1.0.0.tgz" {
		t.Errorf("tarball URL %s", tarball)
	}

	// The same document again: 304 on its ETag, gzip on request.
	etag := resp.Header.Get("ETag")
	if resp, _ := call(t, "GET", base+"@sc/pkg", nil, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %s, want 304", resp.Status)
	}
	resp, gz := call(t, "GET", base+"@sc%2Fpkg", nil, "Accept-Encoding", "gzip")
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: %v %v", err, resp.Header)
	}
	if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, b) {
		t.Errorf("gzip body differs")
	}

	// Abbreviated: install fields only.
	resp, b = call(t, "GET", base+"@sc%2fpkg", nil, "Accept", "application/vnd.npm.install-v1+json; q=1.0, */*")
	var small struct {
		Modified string                    `json:"modified"`
		Versions map[string]map[string]any `json:"versions"`
		Time     any                       `json:"time"`
	}
	json.Unmarshal(b, &small)
	if resp.Header.Get("Content-Type") != "application/vnd.npm.install-v1+json" || small.Modified == "" ||
		small.Time != nil || small.Versions["1.0.0"]["description"] != nil || small.Versions["1.0.0"]["hasInstallScript"] != true {
		t.Errorf("abbreviated: %s %s", resp.Header.Get("Content-Type"), b)
	}

	// Version documents, by version and by tag; the tarball.
	if _, b := call(t, "GET", base+"@sc%2fpkg/next", nil); !strings.Contains(string(b), `"version":"2.0.0-rc.1"`) {
		t.Errorf("version by tag: %s", b)
	}
	if resp, _ := call(t, "GET", base+"@sc%2fpkg/9.9.9", nil); resp.StatusCode != 404 {
		t.Errorf("unknown version: %s", resp.Status)
	}
	if resp, b := call(t, "GET", tarball, nil); resp.StatusCode != 200 || resp.Header.Get("X-Checksum-Sha1") == "" || len(b) == 0 {
		t.Errorf("tarball: %s", resp.Status)
	}

	// A dist-tag change is seen at once (the cache follows the revision).
	if resp, _ := call(t, "PUT", base+"-/package/@sc%2fpkg/dist-tags/beta", []byte(`"1.0.0"`)); resp.StatusCode != 200 {
		t.Fatalf("dist-tag add: %s", resp.Status)
	}
	if _, b := call(t, "GET", base+"@sc%2fpkg", nil); !strings.Contains(string(b), `"beta":"1.0.0"`) {
		t.Errorf("packument after dist-tag add: %s", b)
	}
}

func TestErrorsAndAccounts(t *testing.T) {
	base := registry(t)
	resp, b := call(t, "GET", base+"nothing-here", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"error":`) {
		t.Errorf("missing package: %s %s", resp.Status, b)
	}
	if resp, _ := call(t, "PUT", base+"Bad%20Name", publishBody(t, "Bad Name", "1.0.0")); resp.StatusCode != 400 {
		t.Errorf("bad name: %s", resp.Status)
	}
	if resp, _ := call(t, "PUT", base+"x", publishBody(t, "x", "1.0")); resp.StatusCode != 400 {
		t.Errorf("bad version: %s", resp.Status)
	}
	if resp, _ := call(t, "POST", base+"-/v1/login", []byte(`{}`)); resp.StatusCode != 404 {
		t.Errorf("web login: %s, want 404", resp.Status)
	}
	resp, b = call(t, "PUT", base+"-/user/org.couchdb.user:admin", []byte(`{"name":"admin","password":"secret"}`))
	var login struct{ Token string }
	json.Unmarshal(b, &login)
	if resp.StatusCode != 201 || login.Token == "" {
		t.Fatalf("login: %s %s", resp.Status, b)
	}
	if resp, _ := call(t, "PUT", base+"-/user/org.couchdb.user:admin", []byte(`{"name":"admin","password":"wrong"}`)); resp.StatusCode != 401 {
		t.Errorf("login with a wrong password: %s", resp.Status)
	}
	req, _ := http.NewRequest("GET", base+"-/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r2.Body)
	r2.Body.Close()
	if !strings.Contains(string(b), `"username":"admin"`) {
		t.Errorf("whoami with the login token: %s", b)
	}
	if resp, b := call(t, "POST", base+"-/npm/v1/security/advisories/bulk", []byte(`{"x":["1.0.0"]}`)); resp.StatusCode != 200 || string(b) != "{}" {
		t.Errorf("audit: %s %s", resp.Status, b)
	}
}

// TestPublishNotATarball checks that an attachment that is no gzipped
// tarball is refused with a message saying so, and nothing is published.
func TestPublishNotATarball(t *testing.T) {
	base := registry(t)
	data := []byte("this is not a tarball")
	s512, s1 := sha512.Sum512(data), sha1.Sum(data)
	body, _ := json.Marshal(map[string]any{
		"name": "plain", "dist-tags": map[string]string{"latest": "1.0.0"},
		"versions": map[string]any{"1.0.0": map[string]any{"name": "plain", "version": "1.0.0",
			"dist": map[string]string{"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"shasum": hex.EncodeToString(s1[:])}}},
		"_attachments": map[string]any{"plain-1.0.0.tgz": map[string]any{
			"data": base64.StdEncoding.EncodeToString(data), "length": len(data)}},
	})
	resp, b := call(t, "PUT", base+"plain", body)
	if resp.StatusCode != 400 || !bytes.Contains(b, []byte("not a gzipped tarball")) {
		t.Fatalf("publish of a non-tarball: %s %s", resp.Status, b)
	}
	if resp, _ := call(t, "GET", base+"plain", nil); resp.StatusCode != 404 {
		t.Fatalf("after a refused publish the package answers %s, want 404", resp.Status)
	}
}
