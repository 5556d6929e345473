package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"arca/internal/meta"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	tests := []struct {
		name    string
		inbound string // "" sends none
		echoed  bool   // the inbound id comes back
	}{
		{"none sent", "", false},
		{"sane id echoed", "build-42_step.7", true},
		{"uuid echoed", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"64 characters echoed", strings.Repeat("a", 64), true},
		{"65 characters replaced", strings.Repeat("a", 65), false},
		{"space replaced", "abc def", false},
		{"quote replaced", `abc"def`, false},
		{"slash replaced", "abc/def", false},
		{"non-ASCII replaced", "abcé", false},
		{"log injection replaced", "abc\tlevel=ERROR", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []reqOption
			if tt.inbound != "" {
				opts = append(opts, header("X-Request-Id", tt.inbound))
			}
			resp := e.do(t, http.MethodGet, "/healthz", nil, opts...)
			got := resp.Header.Get("X-Request-Id")
			if tt.echoed {
				if got != tt.inbound {
					t.Errorf("X-Request-Id = %q, want the inbound %q", got, tt.inbound)
				}
				return
			}
			if !generatedID.MatchString(got) {
				t.Errorf("X-Request-Id = %q, want a new 16-hex-digit id", got)
			}
			if seen[got] {
				t.Errorf("id %q was given twice", got)
			}
			seen[got] = true
		})
	}
	t.Run("id in the access line and in error responses", func(t *testing.T) {
		resp := e.do(t, http.MethodGet, "/repository/nope/x", nil, header("X-Request-Id", "trace-me"))
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Request-Id") != "trace-me" {
			t.Fatalf("status %d, id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
		}
		e.waitForLog(t, func(l map[string]any) bool { return l["request_id"] == "trace-me" && l["status"] == 404.0 })
	})
}

func TestPathValidatedBeforeRouting(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	e.createRepo(t, `{"name":"files","format":"raw","type":"hosted","anonymousRead":true}`)
	tests := []struct {
		name, method, path string
	}{
		{"dot dot", "GET", "/repository/files/../x"},
		{"dot dot to another repository", "GET", "/repository/files/../other/x"},
		{"encoded dot dot", "GET", "/repository/files/%2e%2e/x"},
		{"upper-case encoded dot dot", "GET", "/repository/files/%2E%2E/x"},
		{"double-encoded dot dot", "GET", "/repository/files/%252e%252e/x"},
		{"encoded slash", "GET", "/repository/files/a%2fb"},
		{"encoded slash on upload", "PUT", "/repository/files/a%2Fb"},
		{"dot dot in the API", "GET", "/api/v1/../x"},
		{"dot dot in the API to a real endpoint", "GET", "/api/v1/repositories/../status"},
		{"dot dot for an unknown repository", "GET", "/repository/nope/../files/x"},
		{"dot", "GET", "/repository/files/./x"},
		{"empty segment", "GET", "/repository/files//x"},
		{"leading empty segment", "GET", "//repository/files/x"},
		{"encoded backslash", "GET", "/repository/files/a%5cb"},
		{"encoded NUL", "GET", "/repository/files/a%00b"},
		{"invalid UTF-8", "GET", "/repository/files/a%ffb"},
		{"dot dot at the root", "GET", "/../etc/passwd"},
		{"dot dot for DELETE", "DELETE", "/repository/files/a/../../x"},
		{"encoded slash in the repository name", "GET", "/repository/files%2fpub/x"},
		{"escaped repository name", "GET", "/repository/%66iles/x"},
		{"encoded slash in the API", "GET", "/api/v1/repositories/a%2fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.rawDo(t, tt.method+" "+tt.path+" HTTP/1.1\r\nHost: arca.test\r\n"+
				"Authorization: Basic YWRtaW46c2VjcmV0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s %s: status %d, want 400 (body %q)", tt.method, tt.path, resp.StatusCode, resp.body)
			}
			if code, _ := resp.jsonError(t); code != "INVALID" {
				t.Errorf("code = %q, want INVALID", code)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("answered with a redirect to %q", loc)
			}
		})
	}

	t.Run("also with URL.Opaque through Go's client", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, e.ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = "/repository/files/%2e%2e/x"
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})

	t.Run("a sane path still works over the raw connection", func(t *testing.T) {
		resp := e.rawDo(t, "GET /repository/files/ok%20name.txt HTTP/1.1\r\nHost: arca.test\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404 (body %q)", resp.StatusCode, resp.body)
		}
		if code, _ := resp.jsonError(t); code != "NOT_FOUND" {
			t.Errorf("code = %q, want NOT_FOUND", code)
		}
	})
}

func TestRepositoryAccess(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	e.createRepo(t, `{"name":"private","format":"raw","type":"hosted"}`)
	e.createRepo(t, `{"name":"public","format":"raw","type":"hosted","anonymousRead":true}`)
	e.createRepo(t, `{"name":"off","format":"raw","type":"hosted","online":false,"anonymousRead":true}`)
	e.createUser(t, "alice", "alicepw")
	for _, name := range []string{"private", "public"} {
		if r := e.do(t, http.MethodPut, "/repository/"+name+"/there.txt", strings.NewReader("here"), asAdmin); r.StatusCode != http.StatusCreated {
			t.Fatalf("seed %s: %d %s", name, r.StatusCode, r.body)
		}
	}
	tests := []struct {
		name     string
		method   string
		path     string
		opts     []reqOption
		status   int
		code     string // expected JSON error code; "" for a success
		body     string // expected body of a success
		wwwAuthn bool
	}{
		{name: "unknown repository", method: "GET", path: "/repository/nope/x", status: 404, code: "NOT_FOUND"},
		{name: "unknown repository root", method: "GET", path: "/repository/nope/", status: 404, code: "NOT_FOUND"},
		{name: "no repository name", method: "GET", path: "/repository/", status: 404, code: "NOT_FOUND"},
		{name: "unknown endpoint", method: "GET", path: "/nothing/here", status: 404, code: "NOT_FOUND"},
		{name: "offline repository", method: "GET", path: "/repository/off/x", status: 503, code: "UNAVAILABLE"},
		{name: "offline repository upload", method: "PUT", path: "/repository/off/x", opts: []reqOption{asAdmin},
			status: 503, code: "UNAVAILABLE"},
		{name: "anonymous read without anonymousRead", method: "GET", path: "/repository/private/there.txt",
			status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "anonymous read of a missing file without anonymousRead", method: "GET",
			path: "/repository/private/missing.txt", status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "anonymous listing without anonymousRead", method: "GET", path: "/repository/private/",
			status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "admin reads private", method: "GET", path: "/repository/private/there.txt", opts: []reqOption{asAdmin},
			status: 200, body: "here"},
		{name: "wrong password on private", method: "GET", path: "/repository/private/there.txt",
			opts: []reqOption{basicAuth("admin", "nope")}, status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "wrong password on public", method: "GET", path: "/repository/public/there.txt",
			opts: []reqOption{basicAuth("admin", "nope")}, status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "bearer token not supported", method: "GET", path: "/repository/public/there.txt",
			opts: []reqOption{header("Authorization", "Bearer abc")}, status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "non-admin user on private", method: "GET", path: "/repository/private/there.txt",
			opts: []reqOption{basicAuth("alice", "alicepw")}, status: 403, code: "DENIED"},
		{name: "non-admin user reads public", method: "GET", path: "/repository/public/there.txt",
			opts: []reqOption{basicAuth("alice", "alicepw")}, status: 200, body: "here"},
		{name: "non-admin user writes public", method: "PUT", path: "/repository/public/new.txt",
			opts: []reqOption{basicAuth("alice", "alicepw")}, status: 403, code: "DENIED"},
		{name: "anonymous read with anonymousRead, missing file", method: "GET", path: "/repository/public/missing.txt",
			status: 404, code: "NOT_FOUND"},
		{name: "anonymous read with anonymousRead, existing file", method: "GET", path: "/repository/public/there.txt",
			status: 200, body: "here"},
		{name: "anonymous write with anonymousRead", method: "PUT", path: "/repository/public/new.txt",
			status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "anonymous delete with anonymousRead", method: "DELETE", path: "/repository/public/there.txt",
			status: 401, code: "UNAUTHORIZED", wwwAuthn: true},
		{name: "unsupported method", method: "PATCH", path: "/repository/public/there.txt", opts: []reqOption{asAdmin},
			status: 405, code: "UNSUPPORTED"},
		{name: "unsupported method, anonymous", method: "POST", path: "/repository/public/x",
			status: 405, code: "UNSUPPORTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(t, tt.method, tt.path, nil, tt.opts...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d (body %q)", tt.method, tt.path, resp.StatusCode, tt.status, resp.body)
			}
			if tt.code != "" {
				if code, _ := resp.jsonError(t); code != tt.code {
					t.Errorf("code = %q, want %q", code, tt.code)
				}
			} else if string(resp.body) != tt.body {
				t.Errorf("body = %q, want %q", resp.body, tt.body)
			}
			got := resp.Header.Get("WWW-Authenticate")
			if tt.wwwAuthn && got != `Basic realm="arca"` {
				t.Errorf("WWW-Authenticate = %q, want Basic realm=\"arca\"", got)
			}
			if !tt.wwwAuthn && got != "" {
				t.Errorf("WWW-Authenticate = %q on a %d", got, resp.StatusCode)
			}
			if tt.status == http.StatusMethodNotAllowed {
				if allow := resp.Header.Get("Allow"); allow != "GET, HEAD, PUT, DELETE" {
					t.Errorf("Allow = %q, want GET, HEAD, PUT, DELETE", allow)
				}
			}
		})
	}
}

func TestRepositoryRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string // "" means the test server's own URL
	}{
		{"request host", Options{}, ""},
		{"configured base URL", Options{BaseURL: "https://repo.example.com/"}, "https://repo.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, tt.opts)
			e.createRepo(t, `{"name":"files","format":"raw","type":"hosted"}`)
			base := tt.want
			if base == "" {
				base = e.ts.URL
			}
			resp := e.do(t, http.MethodGet, "/repository/files", nil)
			if resp.StatusCode != http.StatusMovedPermanently {
				t.Fatalf("status %d, want 301", resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != base+"/repository/files/" {
				t.Errorf("Location = %q, want %q", loc, base+"/repository/files/")
			}
		})
	}
}

func TestRepositoryAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{Version: "test"})
	e.createUser(t, "alice", "alicepw")
	const def = `{"name":"docs","format":"raw","type":"hosted","anonymousRead":true}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		opts   []reqOption
		status int
		code   string
		check  func(t *testing.T, r response)
	}{
		{name: "create anonymous", method: "POST", path: "/api/v1/repositories", body: def,
			status: 401, code: "UNAUTHORIZED"},
		{name: "create with a wrong password", method: "POST", path: "/api/v1/repositories", body: def,
			opts: []reqOption{basicAuth("admin", "wrong")}, status: 401, code: "UNAUTHORIZED"},
		{name: "create as a non-admin", method: "POST", path: "/api/v1/repositories", body: def,
			opts: []reqOption{basicAuth("alice", "alicepw")}, status: 403, code: "DENIED"},
		{name: "create bad JSON", method: "POST", path: "/api/v1/repositories", body: `{"name":`,
			opts: []reqOption{asAdmin}, status: 400, code: "INVALID"},
		{name: "create not an object", method: "POST", path: "/api/v1/repositories", body: `[1,2]`,
			opts: []reqOption{asAdmin}, status: 400, code: "INVALID"},
		{name: "create bad name", method: "POST", path: "/api/v1/repositories",
			body: `{"name":"Bad Name","format":"raw","type":"hosted"}`,
			opts: []reqOption{asAdmin}, status: 400, code: "INVALID"},
		{name: "create unknown format", method: "POST", path: "/api/v1/repositories",
			body: `{"name":"x","format":"cobol","type":"hosted"}`,
			opts: []reqOption{asAdmin}, status: 400, code: "INVALID"},
		{name: "create raw with raw settings", method: "POST", path: "/api/v1/repositories",
			body: `{"name":"x","format":"raw","type":"hosted","raw":{}}`,
			opts: []reqOption{asAdmin}, status: 400, code: "INVALID"},
		{name: "create too large", method: "POST", path: "/api/v1/repositories",
			body: `{"name":"` + strings.Repeat("a", maxAPIBody) + `"}`,
			opts: []reqOption{asAdmin}, status: 413, code: "TOO_LARGE"},
		{name: "create", method: "POST", path: "/api/v1/repositories", body: def,
			opts: []reqOption{asAdmin}, status: 201, check: func(t *testing.T, r response) {
				if !strings.HasSuffix(r.Header.Get("Location"), "/api/v1/repositories/docs") {
					t.Errorf("Location = %q", r.Header.Get("Location"))
				}
				wantRepo(t, r.body)
			}},
		{name: "create duplicate", method: "POST", path: "/api/v1/repositories", body: def,
			opts: []reqOption{asAdmin}, status: 409, code: "CONFLICT"},
		{name: "get anonymous, readable anonymously", method: "GET", path: "/api/v1/repositories/docs",
			status: 200},
		{name: "get", method: "GET", path: "/api/v1/repositories/docs",
			opts: []reqOption{asAdmin}, status: 200, check: func(t *testing.T, r response) { wantRepo(t, r.body) }},
		{name: "get unknown", method: "GET", path: "/api/v1/repositories/nope",
			opts: []reqOption{asAdmin}, status: 404, code: "NOT_FOUND"},
		{name: "list", method: "GET", path: "/api/v1/repositories",
			opts: []reqOption{asAdmin}, status: 200, check: func(t *testing.T, r response) {
				var l struct {
					Items []map[string]any `json:"items"`
					Next  string           `json:"next"`
				}
				if err := json.Unmarshal(r.body, &l); err != nil || len(l.Items) != 1 || l.Items[0]["name"] != "docs" {
					t.Errorf("list = %s (%v)", r.body, err)
				}
			}},
		{name: "served", method: "GET", path: "/repository/docs/", status: 200},
		{name: "update name differs", method: "PUT", path: "/api/v1/repositories/docs",
			body: `{"name":"other","format":"raw","type":"hosted"}`,
			opts: []reqOption{asAdmin}, status: 400, code: "INVALID"},
		{name: "update takes anonymous read away", method: "PUT", path: "/api/v1/repositories/docs",
			body: `{"name":"docs","format":"raw","type":"hosted"}`, opts: []reqOption{asAdmin}, status: 200},
		{name: "no longer anonymous", method: "GET", path: "/repository/docs/", status: 401, code: "UNAUTHORIZED"},
		{name: "definition no longer anonymous", method: "GET", path: "/api/v1/repositories/docs",
			status: 401, code: "UNAUTHORIZED"},
		{name: "delete", method: "DELETE", path: "/api/v1/repositories/docs", opts: []reqOption{asAdmin}, status: 204},
		{name: "gone", method: "GET", path: "/repository/docs/", opts: []reqOption{asAdmin}, status: 404, code: "NOT_FOUND"},
		{name: "status is public", method: "GET", path: "/api/v1/status", status: 200,
			check: func(t *testing.T, r response) {
				var st map[string]any
				if err := json.Unmarshal(r.body, &st); err != nil || st["database"] != "sqlite" ||
					st["blobStore"] != "filesystem" || st["version"] != "test" {
					t.Errorf("status = %s (%v)", r.body, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(t, tt.method, tt.path, strings.NewReader(tt.body), tt.opts...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status %d, want %d (body %q)", tt.method, tt.path, resp.StatusCode, tt.status, resp.body)
			}
			if tt.code != "" {
				if code, _ := resp.jsonError(t); code != tt.code {
					t.Errorf("code = %q, want %q", code, tt.code)
				}
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="arca"` {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}
}

// wantRepo checks the definition the API answered for "docs".
func wantRepo(t *testing.T, body []byte) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("definition %q: %v", body, err)
	}
	want := map[string]any{"name": "docs", "format": "raw", "type": "hosted", "online": true,
		"anonymousRead": true, "writePolicy": "allow-once"}
	if len(got) != len(want) {
		t.Errorf("definition = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("definition[%q] = %v, want %v", k, got[k], v)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	tests := []struct {
		path, status string
	}{
		{"/healthz", "ok"},
		{"/readyz", "ready"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := e.do(t, http.MethodGet, tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			var body map[string]string
			if err := json.Unmarshal(resp.body, &body); err != nil || body["status"] != tt.status {
				t.Errorf("body = %q (%v), want status %q", resp.body, err, tt.status)
			}
		})
	}
	t.Run("readyz fails without a database", func(t *testing.T) {
		e := newTestEnv(t, Options{})
		e.db.Close()
		if resp := e.do(t, http.MethodGet, "/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
	})
}

// TestServerError checks that an unexpected error answers 500 with the
// request id only, while the cause goes to the log at Error level.
func TestServerError(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	// A repository of a format this server does not serve.
	err := e.db.Queries().CreateRepository(context.Background(), &meta.Repository{
		Name: "mvn", Format: "maven", Type: "hosted",
		Settings: []byte(`{"name":"mvn","format":"maven","type":"hosted","online":true,"anonymousRead":true,"writePolicy":"allow-once"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := e.do(t, http.MethodGet, "/repository/mvn/x.jar", nil, header("X-Request-Id", "boom-1"))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 (%s)", resp.StatusCode, resp.body)
	}
	code, msg := resp.jsonError(t)
	if code != "INTERNAL" || !strings.Contains(msg, "boom-1") {
		t.Errorf("error = %s %q, want INTERNAL naming the request id", code, msg)
	}
	if strings.Contains(msg, "maven") {
		t.Errorf("message %q shows the cause", msg)
	}
	line := e.waitForLog(t, func(l map[string]any) bool { return l["request_id"] == "boom-1" })
	if line["level"] != "ERROR" || !strings.Contains(line["error"].(string), "maven") || line["status"] != 500.0 {
		t.Errorf("access line = %v, want an ERROR line with the cause", line)
	}
}

// TestAccessLogCountsServedBytes checks that a file served through the
// ReadFrom (sendfile) path is counted in the access line.
func TestAccessLogCountsServedBytes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	e.createRepo(t, `{"name":"files","format":"raw","type":"hosted","anonymousRead":true}`)
	content := strings.Repeat("0123456789", 10000)
	if r := e.do(t, http.MethodPut, "/repository/files/big.bin", strings.NewReader(content), asAdmin); r.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", r.StatusCode, r.body)
	}
	tests := []struct {
		name  string
		rng   string
		bytes float64
	}{
		{"whole file", "", float64(len(content))},
		{"range", "bytes=10-19", 10},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "bytes-" + string(rune('a'+i))
			opts := []reqOption{header("X-Request-Id", id)}
			if tt.rng != "" {
				opts = append(opts, header("Range", tt.rng))
			}
			resp := e.do(t, http.MethodGet, "/repository/files/big.bin", nil, opts...)
			if float64(len(resp.body)) != tt.bytes {
				t.Fatalf("body has %d bytes, want %v", len(resp.body), tt.bytes)
			}
			line := e.waitForLog(t, func(l map[string]any) bool { return l["request_id"] == id })
			if line["bytes"] != tt.bytes {
				t.Errorf("access line bytes = %v, want %v", line["bytes"], tt.bytes)
			}
			if line["route"] != "GET /repository/{name}/{path...}" || line["format"] != "raw" || line["repo"] != "files" {
				t.Errorf("access line = %v", line)
			}
		})
	}
}

func TestServeShutsDown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, l) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}
