package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/format"
	"arca/internal/gc"
	"arca/internal/meta"
	"arca/internal/raw"
	"arca/internal/repo"
)

// adminPassword is the admin's password in every test server.
const adminPassword = "secret"

// logBuffer collects the server's JSON log lines; the server logs from many
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log records written so far.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// testEnv is a whole server over real stores in a temporary folder.
type testEnv struct {
	srv   *Server
	ts    *httptest.Server
	db    *meta.DB
	repos *repo.Service
	data  string
	logs  *logBuffer
}

// newTestEnv builds a Server as cmd/arca does and serves it with httptest.
func newTestEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	ctx := context.Background()
	data := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(data, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	driver, err := filesystem.New(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := blob.NewStore(driver)
	repos := repo.NewService(db, blobs)
	rawFormat := raw.New(repos, nil)
	repos.RegisterFormat(rawFormat.ID(), rawFormat.ValidateSettings)
	authn := auth.NewService(db)
	if _, err := authn.Bootstrap(ctx, data, adminPassword); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := New(opts, log, Services{DB: db, Blobs: blobs, Repos: repos, Auth: authn,
		Audit: audit.New(db, log), GC: gc.New(db, blobs, time.Hour, log)}, []format.Format{rawFormat})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &testEnv{srv: srv, ts: ts, db: db, repos: repos, data: data, logs: logs}
}

// createRepo stores a repository definition given as JSON.
func (e *testEnv) createRepo(t *testing.T, def string) {
	t.Helper()
	var r repo.Repository
	if err := json.Unmarshal([]byte(def), &r); err != nil {
		t.Fatal(err)
	}
	if err := e.repos.Create(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
}

// createUser adds a user who is not an admin.
func (e *testEnv) createUser(t *testing.T, name, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.Queries().CreateUser(context.Background(), &meta.User{Name: name, PasswordHash: string(hash)}); err != nil {
		t.Fatal(err)
	}
}

// response is a finished response with its body read.
type response struct {
	*http.Response
	body []byte
}

// jsonError decodes arca's JSON error document and returns its one code.
func (r response) jsonError(t *testing.T) (code, message string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json (body %q)", ct, r.body)
	}
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || len(doc.Errors) != 1 {
		t.Fatalf("error body %q is not arca's JSON error document: %v", r.body, err)
	}
	return doc.Errors[0].Code, doc.Errors[0].Message
}

// reqOption changes a request before it is sent.
type reqOption func(r *http.Request)

func asAdmin(r *http.Request) { r.SetBasicAuth("admin", adminPassword) }

func basicAuth(user, password string) reqOption {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

func header(name, value string) reqOption {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// noRedirects is a client that reports redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// do sends a request to the test server and reads the whole answer.
func (e *testEnv) do(t *testing.T, method, path string, body io.Reader, opts ...reqOption) response {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{resp, b}
}

// rawDo writes request (a whole HTTP/1.1 request head and body) on a fresh
// TCP connection, so that no client cleans or re-encodes the path, and reads
// the answer.
func (e *testEnv) rawDo(t *testing.T, request string) response {
	t.Helper()
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // test
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, b}
}

// waitForLog waits until an access line matching match has been written.
func (e *testEnv) waitForLog(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.logs.lines(t) {
			if l["msg"] == "request" && match(l) {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the expected access line was never written")
	return nil
}
