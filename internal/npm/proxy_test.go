package npm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/npm"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// proxyEnv is an arca with a hosted npm repository "js" (no anonymous
// read), reached through a front that counts the requests it passes and
// can damage tarballs, and a second arca whose npm proxy repository
// "npmjs" has the front as its upstream.
type proxyEnv struct {
	upstream *formattest.Env
	front    *httptest.Server
	cache    *formattest.Env
	proxy    *repo.Repository

	mu   sync.Mutex
	hits map[string]int // by escaped path
	// tamper flips the last byte of every tarball the front passes.
	tamper atomic.Bool
}

func newProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	e := &proxyEnv{hits: map[string]int{}}
	newNpm := func(repos *repo.Service, authn *auth.Service, cache *proxy.Service) format.Format {
		return npm.New(repos, authn, cache)
	}
	e.upstream = formattest.Serve(t, newNpm)
	e.upstream.Create(t, `{"name":"js","format":"npm","type":"hosted"}`)
	target, err := url.Parse(e.upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !e.tamper.Load() || !strings.HasSuffix(resp.Request.URL.Path, ".tgz") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if len(b) > 0 {
			b[len(b)-1] ^= 0xff
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		// The upstream's own digests would give the damage away; drop
		// them so that only the packument's integrity can.
		for _, h := range []string{"X-Checksum-Sha256", "X-Checksum-Sha1", "X-Checksum-Md5", "X-Checksum-Sha512", "ETag"} {
			resp.Header.Del(h)
		}
		return nil
	}
	e.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.URL.EscapedPath()]++
		e.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(e.front.Close)
	e.cache = formattest.Serve(t, newNpm)
	e.proxy = e.cache.Create(t, fmt.Sprintf(`{"name":"npmjs","format":"npm","type":"proxy","anonymousRead":true,
		"proxy":{"url":%q,"username":"admin","password":%q,"metadataMaxAge":"30m","negativeCacheTTL":"1m"}}`,
		e.front.URL+"/repository/js/", formattest.AdminPassword))
	return e
}

// publish publishes a version to the upstream's hosted repository.
func (e *proxyEnv) publish(t *testing.T, name, version string) {
	t.Helper()
	resp, b := call(t, "PUT", e.upstream.URL+"/repository/js/"+strings.Replace(name, "/", "%2f", 1),
		publishBody(t, name, version, "latest"), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("publish %s@%s = %d %s", name, version, resp.StatusCode, b)
	}
}

// proxyURL is the proxy repository's URL.
func (e *proxyEnv) proxyURL() string { return e.cache.URL + "/repository/npmjs/" }

// upstreamHits is how many requests the upstream received for a path
// under its repository.
func (e *proxyEnv) upstreamHits(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits["/repository/js/"+path]
}

// get GETs a path of the proxy anonymously.
func (e *proxyEnv) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := e.tryGet(path, header...)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// tryGet GETs a path of the proxy anonymously and reports a broken
// transfer as an error.
func (e *proxyEnv) tryGet(path string, header ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest("GET", e.proxyURL()+path, nil)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// packumentOf GETs a packument through the proxy and decodes it.
func (e *proxyEnv) packumentOf(t *testing.T, path string, header ...string) (map[string]any, *http.Response) {
	t.Helper()
	resp, b := e.get(t, path, header...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return doc, resp
}

// dist returns a version's dist object in a packument.
func dist(t *testing.T, doc map[string]any, version string) map[string]any {
	t.Helper()
	versions, _ := doc["versions"].(map[string]any)
	m, ok := versions[version].(map[string]any)
	if !ok {
		t.Fatalf("no version %s in %v", version, doc["versions"])
	}
	d, _ := m["dist"].(map[string]any)
	return d
}

// upstreamTarball GETs a tarball straight from the upstream.
func (e *proxyEnv) upstreamTarball(t *testing.T, path string) []byte {
	t.Helper()
	resp, b := call(t, "GET", e.upstream.URL+"/repository/js/"+path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upstream GET %s = %d", path, resp.StatusCode)
	}
	return b
}

func TestProxyPackumentRewrite(t *testing.T) {
	e := newProxyEnv(t)
	e.publish(t, "left", "1.0.0")
	e.publish(t, "left", "1.1.0")
	e.publish(t, "@acme/util", "2.0.0")

	for _, tc := range []struct{ path, name, file string }{
		{"left", "left", "left/-/left-1.1.0.tgz"},
		{"@acme%2futil", "@acme/util", "@acme/util/-/util-2.0.0.tgz"},
		{"@acme/util", "@acme/util", "@acme/util/-/util-2.0.0.tgz"},
	} {
		doc, resp := e.packumentOf(t, tc.path)
		if doc["name"] != tc.name || doc["description"] != "the "+tc.name+" package" {
			t.Errorf("%s: name %v, description %v", tc.path, doc["name"], doc["description"])
		}
		latest := doc["dist-tags"].(map[string]any)["latest"].(string)
		d := dist(t, doc, latest)
		if want := e.proxyURL() + tc.file; d["tarball"] != want {
			t.Errorf("%s: tarball %v, want %s", tc.path, d["tarball"], want)
		}
		if s, _ := d["integrity"].(string); !strings.HasPrefix(s, "sha512-") {
			t.Errorf("%s: integrity %v", tc.path, d["integrity"])
		}
		if resp.Header.Get("ETag") == "" {
			t.Errorf("%s: no ETag", tc.path)
		}
		again, _ := e.get(t, tc.path, "If-None-Match", resp.Header.Get("ETag"))
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag = %d, want 304", tc.path, again.StatusCode)
		}

		small, resp := e.packumentOf(t, tc.path, "Accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8")
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.npm.install-v1+json" {
			t.Errorf("%s abbreviated: Content-Type %q", tc.path, ct)
		}
		if _, ok := small["description"]; ok {
			t.Errorf("%s abbreviated has a description", tc.path)
		}
		if d := dist(t, small, latest); d["tarball"] != e.proxyURL()+tc.file {
			t.Errorf("%s abbreviated: tarball %v", tc.path, d["tarball"])
		}
		v := small["versions"].(map[string]any)[latest].(map[string]any)
		if v["hasInstallScript"] != true || v["scripts"] != nil {
			t.Errorf("%s abbreviated version: %v", tc.path, v)
		}
		if resp.Header.Get("ETag") == "" {
			t.Errorf("%s abbreviated: no ETag", tc.path)
		}

		want := e.upstreamTarball(t, tc.file)
		for range 2 {
			got, body := e.get(t, tc.file)
			if got.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
				t.Fatalf("GET %s = %d, same bytes as upstream %t", tc.file, got.StatusCode, bytes.Equal(body, want))
			}
		}
	}
	// Every document was fetched once in each spelling's first request,
	// and every tarball once, however often clients asked.
	if n := e.upstreamHits("left"); n != 1 {
		t.Errorf("upstream packument requests for left: %d, want 1", n)
	}
	if n := e.upstreamHits("@acme%2Futil"); n != 1 {
		t.Errorf("upstream packument requests for @acme/util: %d, want 1 (hits %v)", n, e.hits)
	}
	if n := e.upstreamHits("left/-/left-1.1.0.tgz"); n != 1 {
		t.Errorf("upstream requests for left-1.1.0.tgz: %d, want 1", n)
	}
	if n := e.upstreamHits("@acme/util/-/util-2.0.0.tgz"); n != 1 {
		t.Errorf("upstream requests for util-2.0.0.tgz: %d, want 1", n)
	}
	a, err := e.cache.Repos.Asset(context.Background(), e.proxy, "@acme/util/-/util-2.0.0.tgz")
	if err != nil || a.Blob.Size == 0 {
		t.Errorf("cached tarball: %v %+v", err, a)
	}

	// The version document and the dist-tags come from the same packument.
	resp, b := e.get(t, "left/1.0.0")
	var m map[string]any
	json.Unmarshal(b, &m)
	if resp.StatusCode != http.StatusOK || m["version"] != "1.0.0" ||
		m["dist"].(map[string]any)["tarball"] != e.proxyURL()+"left/-/left-1.0.0.tgz" {
		t.Errorf("GET left/1.0.0 = %d %s", resp.StatusCode, b)
	}
	resp, b = e.get(t, "@acme%2futil/latest")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"version":"2.0.0"`) {
		t.Errorf("GET @acme%%2futil/latest = %d %s", resp.StatusCode, b)
	}
	resp, b = e.get(t, "-/package/left/dist-tags")
	if resp.StatusCode != http.StatusOK || string(b) != `{"latest":"1.1.0"}` {
		t.Errorf("dist-tags = %d %s", resp.StatusCode, b)
	}
	if n := e.upstreamHits("left"); n != 1 {
		t.Errorf("upstream packument requests for left after reads: %d, want 1", n)
	}

	// What the upstream does not have is npm's 404, in npm's form.
	resp, b = e.get(t, "nothing-here")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"error"`) {
		t.Errorf("GET nothing-here = %d %s", resp.StatusCode, b)
	}
	resp, b = e.get(t, "left/9.9.9")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"error"`) {
		t.Errorf("GET left/9.9.9 = %d %s", resp.StatusCode, b)
	}
	// Search goes to the upstream, and is then answered from the cache.
	for range 2 {
		resp, b = e.get(t, "-/v1/search?text=left&size=5")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"name":"left"`) {
			t.Errorf("search = %d %s", resp.StatusCode, b)
		}
	}
	if n := e.upstreamHits("-/v1/search"); n != 1 {
		t.Errorf("upstream search requests: %d, want 1", n)
	}
	if resp, _ := call(t, "POST", e.proxyURL()+"-/npm/v1/security/advisories/bulk", []byte(`{}`)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("audit through the proxy = %d, want 404", resp.StatusCode)
	}
	resp, _ = e.get(t, "-/ping")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ping = %d", resp.StatusCode)
	}
	// Writes never reach a proxy.
	if resp, _ := call(t, "PUT", e.proxyURL()+"left", publishBody(t, "left", "3.0.0")); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("publish to the proxy = %d, want 405", resp.StatusCode)
	}
}

func TestProxyTarballIntegrity(t *testing.T) {
	e := newProxyEnv(t)
	e.publish(t, "@acme/damaged", "1.0.0")
	const file = "@acme/damaged/-/damaged-1.0.0.tgz"
	want := e.upstreamTarball(t, file)

	e.tamper.Store(true)
	// The download is refused when its bytes are complete, so the client
	// sees a 502 or a broken transfer, never the damaged file whole.
	resp, _, err := e.tryGet(file)
	if err == nil && resp.StatusCode == http.StatusOK {
		t.Fatalf("a damaged tarball was served whole")
	}
	if err == nil && resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET of a damaged tarball = %d, want 502", resp.StatusCode)
	}
	if _, err := e.cache.Repos.Asset(context.Background(), e.proxy, file); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("a damaged tarball was cached: %v", err)
	}

	e.tamper.Store(false)
	resp, b := e.get(t, file)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
		t.Fatalf("GET after the upstream is mended = %d, same bytes %t", resp.StatusCode, bytes.Equal(b, want))
	}
	if n := e.upstreamHits(file); n != 2 {
		t.Errorf("upstream tarball requests: %d, want 2", n)
	}
}

func TestProxyRefetchOnMiss(t *testing.T) {
	e := newProxyEnv(t)
	e.publish(t, "grows", "1.0.0")
	e.publish(t, "@acme/grows", "1.0.0")
	e.packumentOf(t, "grows")
	e.packumentOf(t, "@acme%2fgrows")

	e.publish(t, "grows", "1.1.0")
	e.publish(t, "@acme/grows", "1.1.0")
	// Within metadataMaxAge the packument is the cached one...
	doc, _ := e.packumentOf(t, "grows")
	if _, ok := doc["versions"].(map[string]any)["1.1.0"]; ok {
		t.Fatalf("the cached packument was refetched without need")
	}
	// ...but a version it lacks makes the proxy ask at once.
	resp, b := e.get(t, "grows/1.1.0")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"version":"1.1.0"`) {
		t.Fatalf("GET grows/1.1.0 = %d %s", resp.StatusCode, b)
	}
	doc, _ = e.packumentOf(t, "grows")
	if d := dist(t, doc, "1.1.0"); d["tarball"] != e.proxyURL()+"grows/-/grows-1.1.0.tgz" {
		t.Errorf("tarball of 1.1.0: %v", d["tarball"])
	}
	// So does a tarball it does not list.
	const file = "@acme/grows/-/grows-1.1.0.tgz"
	resp, b = e.get(t, file)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, e.upstreamTarball(t, file)) {
		t.Fatalf("GET %s = %d", file, resp.StatusCode)
	}
	if n := e.upstreamHits("@acme%2Fgrows"); n != 2 {
		t.Errorf("upstream packument requests for @acme/grows: %d, want 2", n)
	}
	// A miss asks again at most once per negativeCacheTTL.
	before := e.upstreamHits("grows")
	for range 3 {
		if resp, _ := e.get(t, "grows/7.0.0"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET grows/7.0.0 = %d", resp.StatusCode)
		}
	}
	if n := e.upstreamHits("grows") - before; n != 0 {
		t.Errorf("unknown versions caused %d upstream requests within the throttle", n)
	}
}
