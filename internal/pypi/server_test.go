package pypi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
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
	"arca/internal/pypi"
	"arca/internal/repo"
	"arca/internal/server"
)

// index serves a PyPI repository "py" with the given write policy over
// stores in a temporary folder; the user admin's password is "secret".
func index(t *testing.T, policy repo.WritePolicy) string {
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
	f := pypi.New(repos, nil)
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
	r := &repo.Repository{Name: "py", Format: "pypi", Type: repo.Hosted, Online: true, AnonymousRead: true, WritePolicy: policy}
	if err := repos.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	return ts.URL + "/repository/py/"
}

// form is an upload form; fields override the defaults, "" removes one.
func form(t *testing.T, filename string, content []byte, fields map[string]string) (string, *bytes.Buffer) {
	t.Helper()
	sha := sha256.Sum256(content)
	sum := md5.Sum(content)
	values := map[string]string{
		":action": "file_upload", "protocol_version": "1", "name": "demo", "version": "1.0",
		"sha256_digest": hex.EncodeToString(sha[:]), "md5_digest": hex.EncodeToString(sum[:]),
		"requires_python": ">=3.8", "summary": "a demo",
	}
	for k, v := range fields {
		if v == "" {
			delete(values, k)
		} else {
			values[k] = v
		}
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range values {
		mw.WriteField(k, v) //nolint:errcheck // a bytes.Buffer
	}
	if filename != "" {
		w, _ := mw.CreateFormFile("content", filename)
		w.Write(content) //nolint:errcheck // a bytes.Buffer
	}
	mw.Close()
	return mw.FormDataContentType(), &body
}

// wheelBytes is a minimal wheel whose METADATA names name and version.
func wheelBytes(t *testing.T, name, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("pkg/__init__.py")
	w.Write([]byte("x = 1\n")) //nolint:errcheck // a bytes.Buffer
	w, _ = zw.Create("pkg-" + version + ".dist-info/METADATA")
	w.Write([]byte("Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + //nolint:errcheck // a bytes.Buffer
		"\nSummary: from METADATA\nRequires-Python: >=3.9\nRequires-Dist: requests\n\nThe description.\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func do(t *testing.T, method, url, ct string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "secret")
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func upload(t *testing.T, base, filename string, content []byte, fields map[string]string) (int, string) {
	t.Helper()
	ct, body := form(t, filename, content, fields)
	resp, b := do(t, "POST", base, ct, body)
	return resp.StatusCode, b
}

func TestUploadChecks(t *testing.T) {
	base := index(t, repo.AllowOnce)
	content := []byte("an sdist")
	if code, body := upload(t, base, "Demo-1.0-py3-none-any.whl", wheelBytes(t, "demo", "1.0"), nil); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	for name, c := range map[string]struct {
		filename string
		fields   map[string]string
		want     string
	}{
		"again":          {"Demo-1.0-py3-none-any.whl", nil, "File already exists"},
		"not a zip":      {"demo-1.1-py3-none-any.whl", map[string]string{"version": "1.1"}, "not a valid zip"},
		"bad sha256":     {"demo-1.0.tar.gz", map[string]string{"sha256_digest": strings.Repeat("a", 64)}, "sha256_digest"},
		"bad md5":        {"demo-1.0.tar.gz", map[string]string{"md5_digest": strings.Repeat("a", 32)}, "md5_digest"},
		"no digest":      {"demo-1.0.tar.gz", map[string]string{"md5_digest": "", "sha256_digest": ""}, "neither"},
		"other project":  {"other-1.0.tar.gz", nil, "names project"},
		"other version":  {"demo-1.1.tar.gz", nil, "names version"},
		"bad version":    {"demo-1.0.tar.gz", map[string]string{"version": "latest"}, "PEP 440"},
		"bad name":       {"demo-1.0.tar.gz", map[string]string{"name": "-x-"}, "project name"},
		"bad filename":   {"demo-1.0.exe", nil, "file name"},
		"no file":        {"", nil, "no file"},
		"bad action":     {"demo-1.0.tar.gz", map[string]string{":action": "remove_pkg"}, ":action"},
		"wrong filetype": {"demo-1.0.tar.gz", map[string]string{"filetype": "bdist_wheel"}, "filetype"},
	} {
		code, body := upload(t, base, c.filename, content, c.fields)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 with %q", name, code, body, c.want)
		}
	}
	// Equivalent spellings of the version are accepted.
	if code, body := upload(t, base, "demo-1.0.0rc1.tar.gz", sdist(t, "demo", "1.0.0rc1"), map[string]string{"version": "1.0.0-RC1"}); code != 200 {
		t.Fatalf("upload rc: %d %s", code, body)
	}
	// A wheel whose METADATA disagrees with the form.
	for _, c := range []struct{ name, version, want string }{{"other", "2.0", "names project"}, {"demo", "2.1", "names version"}} {
		code, body := upload(t, base, "demo-2.0-py3-none-any.whl", wheelBytes(t, c.name, c.version), map[string]string{"version": "2.0"})
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("METADATA %s %s: %d %s", c.name, c.version, code, body)
		}
	}
	// Not multipart.
	if resp, body := do(t, "POST", base, "application/json", strings.NewReader("{}")); resp.StatusCode != 400 {
		t.Fatalf("json body: %d %s", resp.StatusCode, body)
	}
}

func TestReuploadAllowed(t *testing.T) {
	base := index(t, repo.Allow)
	second := sdist(t, "demo", "1.0", "two")
	for _, content := range [][]byte{sdist(t, "demo", "1.0", "one"), second} {
		if code, body := upload(t, base, "demo-1.0.tar.gz", content, nil); code != 200 {
			t.Fatalf("upload: %d %s", code, body)
		}
	}
	resp, body := do(t, "GET", base+"packages/demo/1.0/demo-1.0.tar.gz", "", nil)
	if resp.StatusCode != 200 || body != string(second) {
		t.Fatalf("download: %d %q", resp.StatusCode, body)
	}
}

func TestSimpleAPI(t *testing.T) {
	base := index(t, repo.AllowOnce)
	content := wheelBytes(t, "my.cool-pkg", "1.0")
	if code, body := upload(t, base, "My_Cool.Pkg-1.0-py3-none-any.whl", content,
		map[string]string{"name": "My_Cool.Pkg", "requires_python": `>=3.8,<"4"`}); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	sha := sha256.Sum256(content)
	hexSHA := hex.EncodeToString(sha[:])

	resp, body := do(t, "GET", base+"simple/", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `<a href="my-cool-pkg/">my-cool-pkg</a>`) ||
		resp.Header.Get("Content-Type") != "text/html" {
		t.Fatalf("index: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// Pages carry an ETag, and a revalidation costs no transfer.
	if etag := resp.Header.Get("ETag"); etag == "" {
		t.Error("index without an ETag")
	} else if again, _ := do(t, "GET", base+"simple/", "", nil, "If-None-Match", etag); again.StatusCode != 304 {
		t.Errorf("revalidated index = %d, want 304", again.StatusCode)
	}
	for _, p := range []string{"simple/My_Cool.Pkg/", "simple/my_cool_pkg", "simple/my-cool-pkg"} {
		resp, _ := do(t, "GET", base+p, "", nil)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != base+"simple/my-cool-pkg/" {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, body = do(t, "GET", base+"simple/my-cool-pkg/", "", nil)
	wantLink := `<a href="` + base + `packages/my-cool-pkg/1.0/My_Cool.Pkg-1.0-py3-none-any.whl#sha256=` + hexSHA +
		`" data-requires-python="&gt;=3.8,&lt;&#34;4&#34;" data-dist-info-metadata="sha256=`
	if resp.StatusCode != 200 || !strings.Contains(body, wantLink) || !strings.Contains(body, `pypi:repository-version`) {
		t.Fatalf("project page: %d\n%s\nwant %s", resp.StatusCode, body, wantLink)
	}
	resp, body = do(t, "GET", base+"simple/my-cool-pkg/", "", nil,
		"Accept", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")
	if resp.Header.Get("Content-Type") != "application/vnd.pypi.simple.v1+json" {
		t.Fatalf("JSON page type %s", resp.Header.Get("Content-Type"))
	}
	var page map[string]any
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	files := page["files"].([]any)
	f := files[0].(map[string]any)
	if page["name"] != "my-cool-pkg" || f["hashes"].(map[string]any)["sha256"] != hexSHA || f["yanked"] != false ||
		f["size"] != float64(len(content)) || f["requires-python"] != `>=3.8,<"4"` || f["upload-time"] == "" ||
		page["versions"].([]any)[0] != "1.0" || page["meta"].(map[string]any)["api-version"] != "1.1" {
		t.Fatalf("JSON page: %s", body)
	}
	if resp, _ := do(t, "GET", base+"simple/nothing/", "", nil); resp.StatusCode != 404 {
		t.Fatalf("missing project: %d", resp.StatusCode)
	}
	if f["core-metadata"].(map[string]any)["sha256"] == "" {
		t.Fatalf("no core-metadata: %s", body)
	}
	resp, body = do(t, "GET", base+"packages/my-cool-pkg/1.0/My_Cool.Pkg-1.0-py3-none-any.whl.metadata", "", nil)
	msum := sha256.Sum256([]byte(body))
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "Metadata-Version: 2.1\nName: my.cool-pkg\n") ||
		hex.EncodeToString(msum[:]) != f["core-metadata"].(map[string]any)["sha256"] {
		t.Fatalf("metadata file: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", base+"packages/my-cool-pkg/1.0/My_Cool.Pkg-1.0-py3-none-any.whl", "", nil)
	if resp.StatusCode != 200 || body != string(content) || resp.Header.Get("X-Checksum-Sha256") != hexSHA {
		t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
	}
}
