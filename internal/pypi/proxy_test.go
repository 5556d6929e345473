package pypi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/proxy"
	"arca/internal/pypi"
	"arca/internal/repo"
)

// counter counts the requests an upstream receives, by path.
type counter struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *counter) add(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paths == nil {
		c.paths = map[string]int{}
	}
	c.paths[p]++
}

func (c *counter) get(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[p]
}

// serve starts arca with the PyPI format.
func serve(t *testing.T) *formattest.Env {
	return formattest.Serve(t, func(repos *repo.Service, _ *auth.Service, cache *proxy.Service) format.Format {
		return pypi.New(repos, cache)
	})
}

// proxyTo starts arca with a proxy repository "pp" of upstream, an index
// base URL, and returns the environment, the repository and its URL.
func proxyTo(t *testing.T, upstream string) (*formattest.Env, *repo.Repository, string) {
	t.Helper()
	env := serve(t)
	r := env.Create(t, fmt.Sprintf(`{"name":"pp","format":"pypi","type":"proxy","online":true,"anonymousRead":true,
		"proxy":{"url":%q,"retries":0}}`, upstream))
	return env, r, env.URL + "/repository/pp/"
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func get(t *testing.T, u string, header ...string) (int, string) {
	t.Helper()
	resp, body := do(t, "GET", u, "", nil, header...)
	return resp.StatusCode, body
}

// TestProxyOfArca proxies another arca's hosted repository, which answers
// PEP 691 JSON: rewritten pages in both forms, downloads fetched once,
// PEP 658 metadata, and a release published upstream later that a
// download finds at once.
func TestProxyOfArca(t *testing.T) {
	up := serve(t)
	up.Create(t, `{"name":"up","format":"pypi","type":"hosted","online":true,"anonymousRead":true}`)
	upBase := up.URL + "/repository/up/"
	wheel := wheelBytes(t, "demo", "1.0")
	sd := sdist(t, "demo", "1.0")
	for name, content := range map[string][]byte{"demo-1.0-py3-none-any.whl": wheel, "demo-1.0.tar.gz": sd} {
		if code, body := upload(t, upBase, name, content, nil); code != 200 {
			t.Fatalf("upload %s: %d %s", name, code, body)
		}
	}
	// A counting front of the upstream, which notes what it was asked for.
	var seen counter
	var accept string
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.URL.Path)
		if strings.Contains(r.URL.Path, "/simple/") {
			accept = r.Header.Get("Accept")
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	_, _, base := proxyTo(t, front.URL+"/repository/up/")

	// JSON, as PEP 691 and 700 shape it, with links back to the proxy.
	code, js := get(t, base+"simple/demo/", "Accept", "application/vnd.pypi.simple.v1+json")
	if code != 200 {
		t.Fatalf("JSON page: %d %s", code, js)
	}
	if !strings.Contains(accept, "application/vnd.pypi.simple.v1+json") {
		t.Errorf("upstream was asked with Accept %q", accept)
	}
	var page struct {
		Meta     map[string]string `json:"meta"`
		Versions []string          `json:"versions"`
		Files    []struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python"`
			Yanked         any               `json:"yanked"`
			Size           int64             `json:"size"`
			UploadTime     string            `json:"upload-time"`
			CoreMetadata   any               `json:"core-metadata"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(js), &page); err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	if page.Meta["api-version"] != "1.1" || strings.Join(page.Versions, ",") != "1.0" || len(page.Files) != 2 {
		t.Fatalf("JSON page: %s", js)
	}
	urls := map[string]string{}
	for _, f := range page.Files {
		content := map[string][]byte{"demo-1.0-py3-none-any.whl": wheel, "demo-1.0.tar.gz": sd}[f.Filename]
		if f.URL != base+"packages/demo/1.0/"+f.Filename || f.Hashes["sha256"] != sha256Hex(content) ||
			f.RequiresPython != ">=3.8" || f.Yanked != false || f.Size != int64(len(content)) || f.UploadTime == "" {
			t.Fatalf("JSON file %+v\n%s", f, js)
		}
		if (f.CoreMetadata != nil) != strings.HasSuffix(f.Filename, ".whl") {
			t.Errorf("core-metadata of %s: %v", f.Filename, f.CoreMetadata)
		}
		urls[f.Filename] = f.URL
	}
	if strings.Contains(js, "dist-info-metadata") || strings.Contains(js, up.URL) || strings.Contains(js, front.URL) {
		t.Errorf("JSON page names the upstream or dist-info-metadata: %s", js)
	}

	// HTML from the same cached page.
	code, page503 := get(t, base+"simple/demo/")
	want := `<a href="` + base + `packages/demo/1.0/demo-1.0-py3-none-any.whl#sha256=` + sha256Hex(wheel) +
		`" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=`
	if code != 200 || !strings.Contains(page503, want) || !strings.Contains(page503, "data-core-metadata=") {
		t.Fatalf("HTML page: %d\n%s\nwant %s", code, page503, want)
	}
	if n := seen.get("/repository/up/simple/demo/"); n != 1 {
		t.Errorf("upstream page fetched %d times", n)
	}
	if code, _ := get(t, base+"simple/Demo/"); code != http.StatusMovedPermanently {
		t.Errorf("non-normalized name: %d", code)
	}

	// Downloads: the bytes as uploaded, fetched once.
	for i := 0; i < 2; i++ {
		for name, content := range map[string][]byte{"demo-1.0-py3-none-any.whl": wheel, "demo-1.0.tar.gz": sd} {
			if code, body := get(t, urls[name]); code != 200 || body != string(content) {
				t.Fatalf("download %s: %d %q", name, code, body)
			}
		}
	}
	for _, name := range []string{"demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"} {
		if n := seen.get("/repository/up/packages/demo/1.0/" + name); n != 1 {
			t.Errorf("%s fetched %d times from the upstream", name, n)
		}
	}
	if code, md := get(t, urls["demo-1.0-py3-none-any.whl"]+".metadata"); code != 200 || !strings.Contains(md, "Name: demo") {
		t.Errorf("metadata file: %d %q", code, md)
	}
	if code, md := get(t, urls["demo-1.0.tar.gz"]+".metadata"); code != 404 {
		t.Errorf("metadata of an sdist: %d %q", code, md)
	}

	// A release published upstream after the page was cached: asking for
	// its file revalidates the page.
	wheel2 := wheelBytes(t, "demo", "2.0")
	if code, body := upload(t, upBase, "demo-2.0-py3-none-any.whl", wheel2, map[string]string{"version": "2.0"}); code != 200 {
		t.Fatalf("upload 2.0: %d %s", code, body)
	}
	if code, body := get(t, base+"packages/demo/2.0/demo-2.0-py3-none-any.whl"); code != 200 || body != string(wheel2) {
		t.Fatalf("new release: %d %q", code, body)
	}
	if n := seen.get("/repository/up/simple/demo/"); n != 2 {
		t.Errorf("upstream page fetched %d times, want 2", n)
	}
	if code, js := get(t, base+"simple/demo/", "Accept", "application/vnd.pypi.simple.v1+json"); code != 200 ||
		!strings.Contains(js, `"versions":["1.0","2.0"]`) {
		t.Errorf("page after refetch: %d %s", code, js)
	}
	// A file the upstream does not have: 404 in plain text.
	if code, body := get(t, base+"packages/demo/3.0/demo-3.0.tar.gz"); code != 404 || !strings.Contains(body, "not listed") {
		t.Errorf("unknown file: %d %q", code, body)
	}
	if code, body := get(t, base+"simple/nothing-here/"); code != 404 || !strings.Contains(body, "nothing-here") {
		t.Errorf("unknown project: %d %q", code, body)
	}

	// The index lists the projects cached; the JSON API is proxied (see
	// proxy_jsonapi_test.go), with links back to the proxy.
	if code, body := get(t, base+"simple/", "Accept", "application/vnd.pypi.simple.v1+json"); code != 200 ||
		!strings.Contains(body, `{"name":"demo"}`) {
		t.Errorf("index: %d %s", code, body)
	}
	if code, body := get(t, base+"pypi/demo/json"); code != 200 || !strings.Contains(body, `"url":"`+base+"packages/demo/2.0/demo-2.0-py3-none-any.whl\"") {
		t.Errorf("JSON API: %d %q", code, body)
	}
	// Uploads to a proxy are refused by the edge.
	if code, _ := upload(t, base, "demo-9.0.tar.gz", []byte("x"), map[string]string{"version": "9.0"}); code != http.StatusMethodNotAllowed {
		t.Errorf("upload to the proxy: %d", code)
	}
}

// TestProxyOfHTMLIndex proxies an index that serves PEP 503 HTML only,
// with relative links to files kept elsewhere: links resolved and
// rewritten, yanked and requires-python kept, a file whose bytes do not
// match the page's hash refused and not cached, and a page refetched when
// a file it lacks is asked for.
func TestProxyOfHTMLIndex(t *testing.T) {
	good := []byte("the good sdist")
	bad := []byte("not what the page promises")
	var seen counter
	var mu sync.Mutex
	listed := []string{
		`<a href="../../files/demo-1.0.tar.gz#sha256=` + sha256Hex(good) + `" data-requires-python="&gt;=3.6" data-yanked="broken build">demo-1.0.tar.gz</a>`,
		`<a href="/files/Demo-1.1.tar.gz#sha256=` + sha256Hex([]byte("something else")) + `">Demo-1.1.tar.gz</a>`,
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.URL.Path)
		switch r.URL.Path {
		case "/simple/demo/":
			mu.Lock()
			body := "<!DOCTYPE html><html><body>\n" + strings.Join(listed, "<br>\n") + "\n</body></html>\n"
			mu.Unlock()
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, body) //nolint:errcheck // a test server
		case "/files/demo-1.0.tar.gz", "/files/demo-1.2.tar.gz":
			w.Write(good) //nolint:errcheck // a test server
		case "/files/Demo-1.1.tar.gz":
			w.Write(bad) //nolint:errcheck // a test server
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(up.Close)
	env, pp, base := proxyTo(t, up.URL+"/")

	code, js := get(t, base+"simple/demo/", "Accept", "application/vnd.pypi.simple.v1+json")
	if code != 200 {
		t.Fatalf("JSON page: %d %s", code, js)
	}
	// No sizes upstream: the page claims API 1.0, without PEP 700 fields.
	if !strings.Contains(js, `"api-version":"1.0"`) || strings.Contains(js, `"size"`) || strings.Contains(js, `"versions"`) ||
		!strings.Contains(js, `"url":"`+base+`packages/demo/1.0/demo-1.0.tar.gz"`) ||
		!strings.Contains(js, `"yanked":"broken build"`) || !strings.Contains(js, `"requires-python":"\u003e=3.6"`) ||
		!strings.Contains(js, `"url":"`+base+`packages/demo/1.1/Demo-1.1.tar.gz"`) {
		t.Fatalf("JSON page from HTML: %s", js)
	}
	code, page := get(t, base+"simple/demo/", "Accept", "text/html")
	if code != 200 || !strings.Contains(page, `<a href="`+base+`packages/demo/1.0/demo-1.0.tar.gz#sha256=`+sha256Hex(good)+
		`" data-requires-python="&gt;=3.6" data-yanked="broken build">demo-1.0.tar.gz</a>`) {
		t.Fatalf("HTML page: %d\n%s", code, page)
	}

	if code, body := get(t, base+"packages/demo/1.0/demo-1.0.tar.gz"); code != 200 || body != string(good) {
		t.Fatalf("good file: %d %q", code, body)
	}
	if n := seen.get("/files/demo-1.0.tar.gz"); n != 1 {
		t.Errorf("good file fetched %d times", n)
	}
	// The mismatching file fails, each time, and is never cached.
	for i := 1; i <= 2; i++ {
		// Without keep-alive, so that the client does not send the
		// request again when the proxy breaks the connection.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(base + "packages/demo/1.1/Demo-1.1.tar.gz")
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil {
				t.Fatalf("mismatching file served: %q", b)
			}
		}
		if _, err := env.Repos.Asset(context.Background(), pp, "packages/demo/1.1/Demo-1.1.tar.gz"); !errors.Is(err, repo.ErrNotFound) {
			t.Fatalf("mismatching file cached: %v", err)
		}
		if n := seen.get("/files/Demo-1.1.tar.gz"); n != i {
			t.Errorf("mismatching file fetched %d times, want %d", n, i)
		}
	}
	// A wrong version folder is not served.
	if code, _ := get(t, base+"packages/demo/9/demo-1.0.tar.gz"); code != 404 {
		t.Errorf("wrong folder: %d", code)
	}

	// Refetch on miss: a file the cached page lacks has the page asked
	// again at once, once.
	mu.Lock()
	listed = append(listed, `<a href="../../files/demo-1.2.tar.gz#sha256=`+sha256Hex(good)+`">demo-1.2.tar.gz</a>`)
	mu.Unlock()
	pages := seen.get("/simple/demo/")
	if code, body := get(t, base+"packages/demo/1.2/demo-1.2.tar.gz"); code != 200 || body != string(good) {
		t.Fatalf("file added upstream: %d %q", code, body)
	}
	if n := seen.get("/simple/demo/"); n != pages+1 {
		t.Errorf("page fetched %d times, want %d", n, pages+1)
	}
	if code, _ := get(t, base+"packages/demo/1.3/demo-1.3.tar.gz"); code != 404 {
		t.Errorf("unlisted file: %d", code)
	}
	// The revalidation just made is not repeated for every miss.
	if n := seen.get("/simple/demo/"); n != pages+1 {
		t.Errorf("page fetched %d times after a second miss, want %d", n, pages+1)
	}
}
