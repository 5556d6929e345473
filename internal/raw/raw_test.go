package raw_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"  //nolint:gosec // the checksum raw serves
	"crypto/sha1" //nolint:gosec // the checksum raw serves
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/format"
	"arca/internal/meta"
	"arca/internal/raw"
	"arca/internal/repo"
	"arca/internal/server"
)

// env is a whole arca server, serving raw, over stores in a temporary
// folder.
type env struct {
	ts    *httptest.Server
	repos *repo.Service
	blobs string // the blob driver's root
	logs  *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv builds the server as cmd/arca does, with the repositories given as
// JSON definitions; the admin's password is "secret".
func newEnv(t *testing.T, defs ...string) *env {
	t.Helper()
	ctx := context.Background()
	data := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(data, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(data, "blobs")
	driver, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	blobs := blob.NewStore(driver)
	repos := repo.NewService(db, blobs)
	f := raw.New(repos, nil)
	repos.RegisterFormat(f.ID(), f.ValidateSettings)
	authn := auth.NewService(db)
	if _, err := authn.Bootstrap(ctx, data, "secret"); err != nil {
		t.Fatal(err)
	}
	for _, def := range defs {
		var r repo.Repository
		if err := json.Unmarshal([]byte(def), &r); err != nil {
			t.Fatal(err)
		}
		if err := repos.Create(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	srv := server.New(server.Options{}, log,
		server.Services{DB: db, Blobs: blobs, Repos: repos, Auth: authn, Audit: audit.New(db, log)}, []format.Format{f})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{ts: ts, repos: repos, blobs: root, logs: logs}
}

const filesRepo = `{"name":"files","format":"raw","type":"hosted","anonymousRead":true}`

type response struct {
	*http.Response
	body []byte
}

// errorCode returns the code of arca's JSON error document.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var doc struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Errors) != 1 {
		t.Fatalf("body %q is not a JSON error document: %v", r.body, err)
	}
	return doc.Errors[0].Code
}

// do sends a request for path in the repository "files" as admin (unless
// an empty Authorization header is given) and reads the answer; headers
// come in name, value pairs.
func (e *env) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	return e.doRepo(t, "files", method, path, body, headers...)
}

// doRepo is do for any repository.
func (e *env) doRepo(t *testing.T, repoName, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" || method == http.MethodPut {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+"/repository/"+repoName+"/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "secret")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Authorization" && headers[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, b}
}

// put uploads a file and insists on 201.
func (e *env) put(t *testing.T, path, body string, headers ...string) response {
	t.Helper()
	r := e.do(t, http.MethodPut, path, body, headers...)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: status %d, want 201 (%s)", path, r.StatusCode, r.body)
	}
	return r
}

func digests(s string) (sha256hex, sha1hex, md5hex string) {
	a := sha256.Sum256([]byte(s))
	b := sha1.Sum([]byte(s)) //nolint:gosec // checksum
	c := md5.Sum([]byte(s))  //nolint:gosec // checksum
	return hex.EncodeToString(a[:]), hex.EncodeToString(b[:]), hex.EncodeToString(c[:])
}

func TestPutThenGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo)
	start := time.Now().Add(-time.Second)
	tests := []struct {
		name        string
		path        string
		body        string
		sentType    string
		wantType    string
		wantEncoded string // the Location's path when it differs from path
	}{
		{name: "type from extension", path: "dir/hello.txt", body: "hello world", wantType: "text/plain; charset=utf-8"},
		{name: "json from extension", path: "a.json", body: `{"a":1}`, wantType: "application/json"},
		{name: "type kept from the client", path: "data.bin", body: "\x00\x01\x02", sentType: "application/x-custom; v=1",
			wantType: "application/x-custom; v=1"},
		{name: "form type ignored", path: "b.json", body: "[]", sentType: "application/x-www-form-urlencoded",
			wantType: "application/json"},
		{name: "no extension", path: "noext", body: "plain", wantType: "application/octet-stream"},
		{name: "unknown extension", path: "x.weirdext", body: "plain", wantType: "application/octet-stream"},
		{name: "empty file", path: "empty.bin", body: "", wantType: "application/octet-stream"},
		{name: "escaped name", path: "sp%20ace/na%23me.txt", body: "escaped", wantType: "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.sentType != "" {
				hdr = []string{"Content-Type", tt.sentType}
			}
			put := e.put(t, tt.path, tt.body, hdr...)
			sha, sha1hex, md5hex := digests(tt.body)
			if loc := put.Header.Get("Location"); loc != e.ts.URL+"/repository/files/"+tt.path {
				t.Errorf("Location = %q", loc)
			}
			if etag := put.Header.Get("ETag"); etag != `"`+sha+`"` {
				t.Errorf("PUT ETag = %q", etag)
			}
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				r := e.do(t, method, tt.path, "")
				if r.StatusCode != http.StatusOK {
					t.Fatalf("%s: status %d (%s)", method, r.StatusCode, r.body)
				}
				want := map[string]string{
					"Content-Length":    strconv.Itoa(len(tt.body)),
					"Content-Type":      tt.wantType,
					"ETag":              `"` + sha + `"`,
					"X-Checksum-Sha256": sha,
					"X-Checksum-Sha1":   sha1hex,
					"X-Checksum-Md5":    md5hex,
				}
				for k, v := range want {
					if got := r.Header.Get(k); got != v {
						t.Errorf("%s %s = %q, want %q", method, k, got, v)
					}
				}
				lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
				if err != nil || lm.Before(start.Truncate(time.Second)) || lm.After(time.Now()) {
					t.Errorf("%s Last-Modified = %q (%v), want about now", method, r.Header.Get("Last-Modified"), err)
				}
				wantBody := tt.body
				if method == http.MethodHead {
					wantBody = ""
				}
				if string(r.body) != wantBody {
					t.Errorf("%s body = %q, want %q", method, r.body, wantBody)
				}
			}
		})
	}
}

func TestRangeAndConditional(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo)
	const content = "hello world"
	put := e.put(t, "f.txt", content)
	etag := put.Header.Get("ETag")
	lastModified := e.do(t, http.MethodGet, "f.txt", "").Header.Get("Last-Modified")
	lm, err := http.ParseTime(lastModified)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		headers      []string
		status       int
		body         string // checked unless "-"
		contentRange string
	}{
		{"plain", nil, 200, content, ""},
		{"range start", []string{"Range", "bytes=0-4"}, 206, "hello", "bytes 0-4/11"},
		{"range middle", []string{"Range", "bytes=2-5"}, 206, "llo ", "bytes 2-5/11"},
		{"range open end", []string{"Range", "bytes=6-"}, 206, "world", "bytes 6-10/11"},
		{"range suffix", []string{"Range", "bytes=-3"}, 206, "rld", "bytes 8-10/11"},
		{"range end past size", []string{"Range", "bytes=6-100"}, 206, "world", "bytes 6-10/11"},
		{"unsatisfiable range", []string{"Range", "bytes=100-200"}, 416, "-", "bytes */11"},
		{"unsatisfiable start at size", []string{"Range", "bytes=11-"}, 416, "-", "bytes */11"},
		{"if-none-match same", []string{"If-None-Match", etag}, 304, "", ""},
		{"if-none-match weak", []string{"If-None-Match", "W/" + etag}, 304, "", ""},
		{"if-none-match star", []string{"If-None-Match", "*"}, 304, "", ""},
		{"if-none-match in list", []string{"If-None-Match", `"abc", ` + etag}, 304, "", ""},
		{"if-none-match other", []string{"If-None-Match", `"other"`}, 200, content, ""},
		{"if-modified-since same", []string{"If-Modified-Since", lastModified}, 304, "", ""},
		{"if-modified-since later", []string{"If-Modified-Since", lm.Add(time.Hour).Format(http.TimeFormat)}, 304, "", ""},
		{"if-modified-since earlier", []string{"If-Modified-Since", lm.Add(-time.Hour).Format(http.TimeFormat)}, 200, content, ""},
		{"if-none-match wins over if-modified-since", []string{"If-None-Match", `"other"`,
			"If-Modified-Since", lastModified}, 200, content, ""},
		{"if-range matching", []string{"Range", "bytes=0-4", "If-Range", etag}, 206, "hello", "bytes 0-4/11"},
		{"if-range stale", []string{"Range", "bytes=0-4", "If-Range", `"other"`}, 200, content, ""},
		{"if-match other", []string{"If-Match", `"other"`}, 412, "-", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, http.MethodGet, "f.txt", "", tt.headers...)
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%q)", r.StatusCode, tt.status, r.body)
			}
			if tt.body != "-" && string(r.body) != tt.body {
				t.Errorf("body = %q, want %q", r.body, tt.body)
			}
			if got := r.Header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range = %q, want %q", got, tt.contentRange)
			}
			if tt.status == http.StatusNotModified && r.Header.Get("ETag") != etag {
				t.Errorf("304 ETag = %q, want %q", r.Header.Get("ETag"), etag)
			}
		})
	}
	t.Run("multiple ranges", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "f.txt", "", "Range", "bytes=0-0,6-6")
		if r.StatusCode != http.StatusPartialContent ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("status %d, type %q", r.StatusCode, r.Header.Get("Content-Type"))
		}
		if !bytes.Contains(r.body, []byte("Content-Range: bytes 6-6/11\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nw\r\n")) {
			t.Errorf("multipart body lacks the second range: %q", r.body)
		}
	})
}

func TestPutChecksums(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo)
	const content = "checked content"
	sha, sha1hex, md5hex := digests(content)
	otherSHA, otherSHA1, otherMD5 := digests("something else")
	tests := []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"no checksum", nil, 201, ""},
		{"matching sha256", []string{"X-Checksum-Sha256", sha}, 201, ""},
		{"matching sha1", []string{"X-Checksum-Sha1", sha1hex}, 201, ""},
		{"matching md5", []string{"X-Checksum-Md5", md5hex}, 201, ""},
		{"all three matching", []string{"X-Checksum-Sha256", sha, "X-Checksum-Sha1", sha1hex, "X-Checksum-Md5", md5hex}, 201, ""},
		{"upper-case hex", []string{"X-Checksum-Sha256", strings.ToUpper(sha)}, 201, ""},
		{"mismatching sha256", []string{"X-Checksum-Sha256", otherSHA}, 400, "DIGEST_INVALID"},
		{"mismatching sha1", []string{"X-Checksum-Sha1", otherSHA1}, 400, "DIGEST_INVALID"},
		{"mismatching md5", []string{"X-Checksum-Md5", otherMD5}, 400, "DIGEST_INVALID"},
		{"one of three mismatching", []string{"X-Checksum-Sha256", sha, "X-Checksum-Sha1", otherSHA1, "X-Checksum-Md5", md5hex}, 400, "DIGEST_INVALID"},
		{"malformed sha256", []string{"X-Checksum-Sha256", "not-hex"}, 400, "INVALID"},
		{"sha1 in the sha256 header", []string{"X-Checksum-Sha256", sha1hex}, 400, "INVALID"},
		{"short md5", []string{"X-Checksum-Md5", md5hex[:30]}, 400, "INVALID"},
		{"non-hex sha1", []string{"X-Checksum-Sha1", strings.Repeat("g", 40)}, 400, "INVALID"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "c/" + strconv.Itoa(i) + ".txt"
			r := e.do(t, http.MethodPut, path, content, tt.headers...)
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.StatusCode, tt.status, r.body)
			}
			get := e.do(t, http.MethodGet, path, "")
			if tt.status == http.StatusCreated {
				if get.StatusCode != http.StatusOK || string(get.body) != content {
					t.Errorf("GET after PUT: %d %q", get.StatusCode, get.body)
				}
				return
			}
			if code := r.errorCode(t); code != tt.code {
				t.Errorf("code = %q, want %q", code, tt.code)
			}
			if get.StatusCode != http.StatusNotFound {
				t.Errorf("GET after a refused PUT: status %d, want 404", get.StatusCode)
			}
		})
	}
}

func TestWritePolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo,
		`{"name":"loose","format":"raw","type":"hosted","writePolicy":"allow"}`,
		`{"name":"frozen","format":"raw","type":"hosted","writePolicy":"deny"}`)
	type step struct {
		method, body string
		status       int
	}
	tests := []struct {
		name  string
		repo  string
		path  string
		steps []step
		final string // the content afterwards; "" means 404
	}{
		{"allow-once refuses a second PUT", "files", "once.txt", []step{
			{"PUT", "first", 201}, {"PUT", "second", 409}, {"PUT", "first", 409},
		}, "first"},
		{"allow-once after DELETE", "files", "again.txt", []step{
			{"PUT", "first", 201}, {"DELETE", "", 204}, {"PUT", "second", 201},
		}, "second"},
		{"allow overwrites", "loose", "f.txt", []step{
			{"PUT", "v1", 201}, {"PUT", "version two", 201}, {"PUT", "v3", 201}, {"PUT", "version two", 201},
		}, "version two"},
		{"deny refuses PUT and DELETE", "frozen", "f.txt", []step{
			{"PUT", "x", 403}, {"DELETE", "", 403},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, s := range tt.steps {
				r := e.doRepo(t, tt.repo, s.method, tt.path, s.body)
				if r.StatusCode != s.status {
					t.Fatalf("step %d, %s %q: status %d, want %d (%s)", i, s.method, s.body, r.StatusCode, s.status, r.body)
				}
				want := map[int]string{409: "CONFLICT", 403: "DENIED"}[s.status]
				if want != "" && r.errorCode(t) != want {
					t.Errorf("step %d: code %q, want %q", i, r.errorCode(t), want)
				}
			}
			g := e.doRepo(t, tt.repo, http.MethodGet, tt.path, "")
			if tt.final == "" {
				if g.StatusCode != http.StatusNotFound {
					t.Errorf("GET afterwards: %d, want 404", g.StatusCode)
				}
				return
			}
			if g.StatusCode != http.StatusOK || string(g.body) != tt.final ||
				g.Header.Get("Content-Length") != strconv.Itoa(len(tt.final)) {
				t.Errorf("GET afterwards: %d %q, want %q", g.StatusCode, g.body, tt.final)
			}
			if sha, _, _ := digests(tt.final); g.Header.Get("X-Checksum-Sha256") != sha {
				t.Errorf("X-Checksum-Sha256 = %q, want that of %q", g.Header.Get("X-Checksum-Sha256"), tt.final)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo)
	e.put(t, "d/a.txt", "same")
	e.put(t, "d/b.txt", "same")
	tests := []struct {
		name, method, path string
		auth               []string
		status             int
	}{
		{"anonymous delete", "DELETE", "d/a.txt", []string{"Authorization", ""}, 401},
		{"delete", "DELETE", "d/a.txt", nil, 204},
		{"gone", "GET", "d/a.txt", nil, 404},
		{"delete again", "DELETE", "d/a.txt", nil, 404},
		{"same bytes under another path stay", "GET", "d/b.txt", nil, 200},
		{"delete missing", "DELETE", "nope.txt", nil, 404},
		{"delete last file", "DELETE", "d/b.txt", nil, 204},
		{"folder gone with its last file", "GET", "d/", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, "", tt.auth...)
			if r.StatusCode != tt.status {
				t.Fatalf("%s %s: %d, want %d (%s)", tt.method, tt.path, r.StatusCode, tt.status, r.body)
			}
			if tt.status == http.StatusNoContent && len(r.body) != 0 {
				t.Errorf("204 with a body: %q", r.body)
			}
			if tt.status == http.StatusNotFound && r.errorCode(t) != "NOT_FOUND" {
				t.Errorf("code %q, want NOT_FOUND", r.errorCode(t))
			}
		})
	}
}

func TestPutFolderPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo)
	for _, path := range []string{"dir/", "", "a/b/"} {
		t.Run("path "+strconv.Quote(path), func(t *testing.T) {
			r := e.do(t, http.MethodPut, path, "content")
			if r.StatusCode != http.StatusBadRequest || r.errorCode(t) != "INVALID" {
				t.Fatalf("PUT %q: %d %s, want 400 INVALID", path, r.StatusCode, r.body)
			}
			if g := e.do(t, http.MethodGet, path, "", "Accept", "application/json"); path != "" && g.StatusCode != http.StatusNotFound {
				t.Errorf("folder %q exists after a refused PUT: %d", path, g.StatusCode)
			}
		})
	}
}

func TestListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo, `{"name":"empty","format":"raw","type":"hosted","anonymousRead":true}`)
	e.put(t, "dir/a.txt", "abc")
	e.put(t, "dir/sub/b.txt", "b")
	e.put(t, "dir/sub/deeper/c.txt", "c")
	e.put(t, "top.txt", "top")
	e.put(t, "other/z.txt", "z")
	e.put(t, "odd/sub-x.txt", "1")
	e.put(t, "odd/sub/y.txt", "2")
	e.put(t, "odd/sub0.txt", "3")
	e.put(t, "odd/zero", "")
	e.put(t, "odd/a:b.txt", "colon")
	shaABC, _, _ := digests("abc")

	t.Run("folder JSON has the documented shape", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "dir/", "", "Accept", "application/json")
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, type %q (%s)", r.StatusCode, r.Header.Get("Content-Type"), r.body)
		}
		var doc struct {
			Children []struct {
				LastModified string `json:"lastModified"`
			} `json:"children"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Children) != 2 {
			t.Fatalf("listing %s: %v", r.body, err)
		}
		lm := doc.Children[0].LastModified
		when, err := time.Parse(time.RFC3339, lm)
		if err != nil || time.Since(when) > time.Minute || !strings.HasSuffix(lm, "Z") {
			t.Errorf("lastModified %q is not a recent RFC 3339 UTC time: %v", lm, err)
		}
		want := `{"path":"dir/","children":[{"name":"a.txt","type":"file","size":3,"sha256":"` + shaABC +
			`","lastModified":"` + lm + `"},{"name":"sub","type":"dir"}]}`
		if got := strings.TrimSpace(string(r.body)); got != want {
			t.Errorf("listing =\n%s\nwant\n%s", got, want)
		}
	})

	type child struct{ Name, Type string }
	tests := []struct {
		name     string
		repo     string
		path     string
		wantPath string
		children []child
	}{
		{"root", "files", "", "", []child{{"dir", "dir"}, {"odd", "dir"}, {"other", "dir"}, {"top.txt", "file"}}},
		{"nested folder", "files", "dir/sub/", "dir/sub/", []child{{"b.txt", "file"}, {"deeper", "dir"}}},
		{"folder listed once among similar names", "files", "odd/", "odd/", []child{
			{"a:b.txt", "file"}, {"sub-x.txt", "file"}, {"sub", "dir"}, {"sub0.txt", "file"}, {"zero", "file"},
		}},
		{"empty repository root", "empty", "", "", []child{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.doRepo(t, tt.repo, http.MethodGet, tt.path, "", "Accept", "application/json")
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%s)", r.StatusCode, r.body)
			}
			var doc struct {
				Path     *string          `json:"path"`
				Children []map[string]any `json:"children"`
			}
			if err := json.Unmarshal(r.body, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Path == nil || *doc.Path != tt.wantPath {
				t.Errorf("path = %v, want %q", doc.Path, tt.wantPath)
			}
			if doc.Children == nil {
				t.Fatalf("children is not a list: %s", r.body)
			}
			var got []child
			for _, c := range doc.Children {
				got = append(got, child{c["name"].(string), c["type"].(string)})
				_, hasSize := c["size"]
				if c["type"] == "file" && (!hasSize || c["sha256"] == nil || c["lastModified"] == nil) {
					t.Errorf("file entry %v lacks size, sha256 or lastModified", c)
				}
				if c["type"] == "dir" && len(c) != 2 {
					t.Errorf("dir entry %v has more than a name and a type", c)
				}
			}
			if len(got) != len(tt.children) {
				t.Fatalf("children = %v, want %v", got, tt.children)
			}
			for i := range got {
				if got[i] != tt.children[i] {
					t.Errorf("child %d = %v, want %v", i, got[i], tt.children[i])
				}
			}
		})
	}

	t.Run("empty file has size 0", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "odd/", "", "Accept", "application/json")
		if !strings.Contains(string(r.body), `{"name":"zero","type":"file","size":0,`) {
			t.Errorf("listing %s lacks the empty file's size", r.body)
		}
	})

	htmlTests := []struct {
		name, path, accept string
		contains           []string
		absent             []string
	}{
		{"folder", "dir/", "text/html", []string{`<a href="./a.txt">a.txt</a>`, `<a href="./sub/">sub/</a>`,
			`<a href="../">../</a>`, shaABC}, nil},
		{"browser accept header", "dir/", "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
			[]string{`<a href="./a.txt">`}, nil},
		{"no accept header", "dir/", "", []string{`<a href="./sub/">`}, nil},
		{"root has no parent link", "", "text/html", []string{`<a href="./dir/">dir/</a>`, `<a href="./top.txt">`},
			[]string{`href="../"`}},
		{"colon in a name stays a relative link", "odd/", "text/html", []string{`<a href="./a:b.txt">a:b.txt</a>`},
			[]string{"ZgotmplZ"}},
	}
	for _, tt := range htmlTests {
		t.Run("HTML "+tt.name, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept", tt.accept}
			}
			r := e.do(t, http.MethodGet, tt.path, "", hdr...)
			if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("status %d, type %q", r.StatusCode, r.Header.Get("Content-Type"))
			}
			for _, s := range tt.contains {
				if !strings.Contains(string(r.body), s) {
					t.Errorf("page lacks %q:\n%s", s, r.body)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(string(r.body), s) {
					t.Errorf("page has %q:\n%s", s, r.body)
				}
			}
		})
	}

	missing := []struct{ name, path string }{
		{"missing folder", "nope/"},
		{"prefix of a folder is not a folder", "di/"},
		{"file as a folder", "top.txt/"},
		{"folder without slash is a file", "dir"},
	}
	for _, tt := range missing {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, http.MethodGet, tt.path, "", "Accept", "application/json")
			if r.StatusCode != http.StatusNotFound || r.errorCode(t) != "NOT_FOUND" {
				t.Errorf("GET %s: %d %s, want 404", tt.path, r.StatusCode, r.body)
			}
		})
	}
}

// TestCutOffUpload sends fewer bytes than announced and hangs up: nothing
// may be stored, and no temporary file may stay behind.
func TestCutOffUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, filesRepo)
	tests := []struct {
		name     string
		path     string
		announce int
		send     string
		hangUp   bool // close at once rather than wait for an answer
	}{
		{"half sent", "cut/half.bin", 1000, strings.Repeat("x", 500), false},
		{"nothing sent", "cut/none.bin", 100, "", false},
		{"all but one byte", "cut/one.bin", 11, "hello worl", false},
		{"hang up at once", "cut/hangup.bin", 1 << 20, strings.Repeat("y", 64<<10), true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			head := "PUT /repository/files/" + tt.path + " HTTP/1.1\r\nHost: arca.test\r\n" +
				"Authorization: Basic YWRtaW46c2VjcmV0\r\nContent-Length: " + strconv.Itoa(tt.announce) + "\r\n\r\n"
			if _, err := io.WriteString(conn, head+tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.hangUp {
				conn.Close()
			} else {
				// Close the writing side only, so that an answer could
				// still be read; a server that stored the bytes would
				// answer 201.
				if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				conn.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // test
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
					resp.Body.Close()
					if resp.StatusCode < 400 {
						t.Errorf("cut-off upload answered %d", resp.StatusCode)
					}
				}
				conn.Close()
			}
			// The access line is written once the handler is done.
			line := waitForPut(t, e.logs, i+1)
			if line["status"] != 400.0 || !strings.Contains(fmt.Sprint(line["error"]), "unexpected EOF") {
				t.Errorf("access line = %v, want 400 with unexpected EOF", line)
			}
			if r := e.do(t, http.MethodGet, tt.path, ""); r.StatusCode != http.StatusNotFound {
				t.Errorf("GET after a cut-off upload: %d %q, want 404", r.StatusCode, r.body)
			}
			if n := countFiles(t, filepath.Join(e.blobs, "tmp")); n != 0 {
				t.Errorf("%d temporary files left behind", n)
			}
			if n := countFiles(t, filepath.Join(e.blobs, "blobs")); n != 0 {
				t.Errorf("%d blobs committed", n)
			}
		})
	}
	if r := e.do(t, http.MethodGet, "cut/", "", "Accept", "application/json"); r.StatusCode != http.StatusNotFound {
		t.Errorf("folder of cut-off uploads: %d %s, want 404", r.StatusCode, r.body)
	}
}

// waitForPut waits until the log holds n access lines of PUT requests and
// returns the last one.
func waitForPut(t *testing.T, logs *syncBuffer, n int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var puts []map[string]any
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["method"] == "PUT" {
				puts = append(puts, m)
			}
		}
		if len(puts) >= n {
			return puts[n-1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no access line for PUT number %d", n)
	return nil
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
