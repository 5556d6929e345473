package oci_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/oci"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// fakeRegistry is an upstream registry that, like Docker Hub, answers
// anonymous requests with a Bearer challenge and serves images only to
// holders of a token from its realm. It counts the requests it gets.
type fakeRegistry struct {
	t  *testing.T
	ts *httptest.Server

	// username and password, when set, are what the token endpoint
	// demands as basic auth.
	username, password string

	mu        sync.Mutex
	blobs     map[string][]byte // by digest
	corrupt   map[string][]byte // bytes served instead, by digest
	manifests map[string][]byte // by digest
	tags      map[string]string // "name:tag" -> digest
	requests  map[string]int    // "METHOD path" -> count
	scopes    []string          // scopes tokens were asked for
	tokenAuth []string          // Authorization headers of token requests
	headAuth  []string          // Authorization headers of manifest HEADs
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	g := &fakeRegistry{t: t, blobs: map[string][]byte{}, corrupt: map[string][]byte{},
		manifests: map[string][]byte{}, tags: map[string]string{}, requests: map[string]int{}}
	g.ts = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.ts.Close)
	return g
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// push adds an image with one layer under name:tag and returns the
// manifest, its digest and the layer's digest.
func (g *fakeRegistry) push(name, tag, layer string) (manifest []byte, digest, layerDigest string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	g.blobs[digestOf(config)] = config
	g.blobs[digestOf([]byte(layer))] = []byte(layer)
	manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digestOf(config), len(config), digestOf([]byte(layer)), len(layer)))
	g.manifests[digestOf(manifest)] = manifest
	g.tags[name+":"+tag] = digestOf(manifest)
	return manifest, digestOf(manifest), digestOf([]byte(layer))
}

func (g *fakeRegistry) count(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[key]
}

func (g *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests[r.Method+" "+r.URL.Path]++
	if r.URL.Path == "/token" {
		g.tokenAuth = append(g.tokenAuth, r.Header.Get("Authorization"))
		if g.username != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != g.username || p != g.password {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return
			}
		}
		scope := r.URL.Query().Get("scope")
		g.scopes = append(g.scopes, scope)
		if r.URL.Query().Get("service") != "fake-registry" {
			http.Error(w, "wrong service", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": "tok:" + scope, "expires_in": 300}) //nolint:errcheck // test server
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	name, scopeOK := "", false
	for _, ep := range []string{"/manifests/", "/blobs/", "/tags/list", "/referrers/"} {
		if i := strings.LastIndex(rest, ep); i > 0 {
			name = rest[:i]
			break
		}
	}
	authz := r.Header.Get("Authorization")
	if r.Method == http.MethodHead && strings.Contains(rest, "/manifests/") {
		g.headAuth = append(g.headAuth, authz)
	}
	if authz == "Bearer tok:repository:"+name+":pull" {
		scopeOK = true
	}
	if !scopeOK || rest == "" {
		c := `Bearer realm="` + g.ts.URL + `/token",service="fake-registry"`
		if name != "" {
			c += `,scope="repository:` + name + `:pull"`
		}
		w.Header().Set("WWW-Authenticate", c)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return
	}
	switch {
	case strings.HasSuffix(rest, "/tags/list"):
		var tags []string
		for k := range g.tags {
			if n, tag, _ := strings.Cut(k, ":"); n == name {
				tags = append(tags, tag)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"name": name, "tags": tags}) //nolint:errcheck // test server
	case strings.Contains(rest, "/manifests/"):
		ref := rest[strings.LastIndex(rest, "/")+1:]
		d := ref
		if !strings.Contains(ref, ":") {
			d = g.tags[name+":"+ref]
		}
		m, ok := g.manifests[d]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", d)
		w.Header().Set("Content-Length", fmt.Sprint(len(m)))
		if r.Method == http.MethodGet {
			w.Write(m) //nolint:errcheck // test server
		}
	case strings.Contains(rest, "/blobs/"):
		d := rest[strings.LastIndex(rest, "/")+1:]
		b, ok := g.blobs[d]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if c, bad := g.corrupt[d]; bad {
			b = c
		}
		w.Header().Set("Docker-Content-Digest", d)
		w.Write(b) //nolint:errcheck // test server
	default:
		http.NotFound(w, r)
	}
}

// proxyEnv is an arca with an oci proxy repository "hub" of an upstream.
type proxyEnv struct {
	t   *testing.T
	env *formattest.Env
	f   *oci.Format
}

func newProxyEnv(t *testing.T, proxySection string) *proxyEnv {
	t.Helper()
	p := &proxyEnv{t: t}
	p.env = formattest.Serve(t, func(repos *repo.Service, authn *auth.Service, cache *proxy.Service) format.Format {
		p.f = oci.New(repos, authn, cache)
		return p.f
	})
	p.env.Create(t, `{"name":"hub","format":"oci","type":"proxy","online":true,"proxy":`+proxySection+`}`)
	return p
}

// get sends a request as admin and returns the status, headers and body.
func (p *proxyEnv) get(method, path string, header ...string) (int, http.Header, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.env.URL+path, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.SetBasicAuth("admin", formattest.AdminPassword)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// pull fetches a manifest by reference and every blob it names, as a
// client pulls, and returns the manifest's digest.
func (p *proxyEnv) pull(prefix, ref string) string {
	p.t.Helper()
	status, h, body := p.get("GET", prefix+"/manifests/"+ref,
		"Accept", "application/vnd.oci.image.manifest.v1+json")
	if status != http.StatusOK {
		p.t.Fatalf("GET manifest %s: %d %s", ref, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/vnd.oci.image.manifest.v1+json" {
		p.t.Errorf("manifest Content-Type = %q", ct)
	}
	if got, want := h.Get("Docker-Content-Digest"), digestOf(body); got != want {
		p.t.Errorf("Docker-Content-Digest = %q, the body's is %q", got, want)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(body, &m); err != nil {
		p.t.Fatal(err)
	}
	for _, d := range append([]string{m.Config.Digest}, m.Layers[0].Digest) {
		status, h, blob := p.get("GET", prefix+"/blobs/"+d)
		if status != http.StatusOK || digestOf(blob) != d || h.Get("Docker-Content-Digest") != d {
			p.t.Fatalf("GET blob %s: %d, digest %s, header %q", d, status, digestOf(blob), h.Get("Docker-Content-Digest"))
		}
	}
	return digestOf(body)
}

// TestProxyPullByTagAndDigest pulls an image through the proxy from an
// upstream that wants anonymous Bearer tokens, under a namespace: blobs
// are fetched once, and the manifest by tag once, by digest.
func TestProxyPullByTagAndDigest(t *testing.T) {
	up := newFakeRegistry(t)
	_, want, layer := up.push("library/app", "1.0", "layer one")
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"namespace":"library","retries":0}`, up.ts.URL))

	if got := p.pull("/v2/hub/app", "1.0"); got != want {
		t.Fatalf("pulled digest %s, want %s", got, want)
	}
	if got := p.pull("/v2/hub/app", "1.0"); got != want {
		t.Fatalf("second pull: digest %s, want %s", got, want)
	}
	if got := p.pull("/v2/hub/app", want); got != want {
		t.Fatalf("pull by digest: %s, want %s", got, want)
	}
	if n := up.count("GET /v2/library/app/blobs/" + layer); n != 1 {
		t.Errorf("upstream layer GETs = %d, want 1", n)
	}
	if n := up.count("GET /v2/library/app/manifests/" + want); n != 1 {
		t.Errorf("upstream manifest GETs by digest = %d, want 1", n)
	}
	if n := up.count("GET /v2/library/app/manifests/1.0"); n != 0 {
		t.Errorf("upstream manifest GETs by tag = %d, want 0: the tag is resolved by HEAD", n)
	}
	// Within metadataMaxAge the tag is not even asked about.
	if n := up.count("HEAD /v2/library/app/manifests/1.0"); n != 1 {
		t.Errorf("upstream HEADs of the tag = %d, want 1", n)
	}
	up.mu.Lock()
	scopes := up.scopes
	up.mu.Unlock()
	if len(scopes) != 1 || scopes[0] != "repository:library/app:pull" {
		t.Errorf("token scopes asked = %q, want one for the namespaced image", scopes)
	}

	// HEAD answers the manifest's headers; tags come from the upstream
	// under the client's name.
	status, h, _ := p.get("HEAD", "/v2/hub/app/manifests/1.0")
	if status != http.StatusOK || h.Get("Docker-Content-Digest") != want {
		t.Errorf("HEAD manifest: %d %q", status, h.Get("Docker-Content-Digest"))
	}
	status, _, body := p.get("GET", "/v2/hub/app/tags/list")
	if status != http.StatusOK || string(body) != `{"name":"hub/app","tags":["1.0"]}` {
		t.Errorf("tags list: %d %s", status, body)
	}
	// An upstream without the referrers API has no referrers to give.
	status, _, body = p.get("GET", "/v2/hub/app/referrers/"+want)
	if status != http.StatusOK || !strings.Contains(string(body), `"manifests":[]`) {
		t.Errorf("referrers: %d %s", status, body)
	}
	status, _, body = p.get("GET", "/v2/hub/app/manifests/2.0")
	if status != http.StatusNotFound || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Errorf("unknown tag: %d %s", status, body)
	}
	status, _, body = p.get("GET", "/v2/hub/app/blobs/"+digestOf([]byte("nothing")))
	if status != http.StatusNotFound || !strings.Contains(string(body), "BLOB_UNKNOWN") {
		t.Errorf("unknown blob: %d %s", status, body)
	}
	// A proxy takes no pushes, and says so in the registry's form.
	status, _, body = p.get("POST", "/v2/hub/app/blobs/uploads/")
	if status != http.StatusMethodNotAllowed || !strings.Contains(string(body), "UNSUPPORTED") {
		t.Errorf("push to a proxy: %d %s", status, body)
	}
}

// TestProxyBlobDigestMismatch checks that bytes that do not match their
// digest are refused and not cached: once the upstream serves the right
// bytes, they are fetched again.
func TestProxyBlobDigestMismatch(t *testing.T) {
	up := newFakeRegistry(t)
	_, _, layer := up.push("app", "1.0", "the real layer")
	up.mu.Lock()
	up.corrupt[layer] = []byte("tampered bytes")
	up.mu.Unlock()
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"retries":0}`, up.ts.URL))

	// The client sees a 502, or a transfer cut short if it joined the
	// download while it streamed; never the whole tampered body.
	req, err := http.NewRequest("GET", p.env.URL+"/v2/hub/app/blobs/"+layer, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", formattest.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("tampered blob: %d %q, want 502 or a broken transfer", resp.StatusCode, body)
		}
	}
	if _, err := p.env.Repos.Asset(context.Background(), mustRepo(t, p.env), "app/blobs/"+layer); err == nil {
		t.Fatal("the tampered blob was cached")
	}
	up.mu.Lock()
	delete(up.corrupt, layer)
	up.mu.Unlock()
	status, _, body := p.get("GET", "/v2/hub/app/blobs/"+layer)
	if status != http.StatusOK || string(body) != "the real layer" {
		t.Fatalf("after the upstream was fixed: %d %q", status, body)
	}
	if n := up.count("GET /v2/app/blobs/" + layer); n != 2 {
		t.Errorf("upstream blob GETs = %d, want 2", n)
	}
}

func mustRepo(t *testing.T, env *formattest.Env) *repo.Repository {
	t.Helper()
	r, err := env.Repos.Get(context.Background(), "hub")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestProxyTagRevalidation checks that a stale tag is revalidated with a
// HEAD, and that its manifest is fetched again only when it moved.
func TestProxyTagRevalidation(t *testing.T) {
	up := newFakeRegistry(t)
	_, first, _ := up.push("app", "latest", "layer one")
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"retries":0,"metadataMaxAge":"1ms"}`, up.ts.URL))

	for i := 0; i < 3; i++ {
		if got := p.pull("/v2/hub/app", "latest"); got != first {
			t.Fatalf("pull %d: %s, want %s", i, got, first)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := up.count("HEAD /v2/app/manifests/latest"); n != 3 {
		t.Errorf("HEADs of the tag = %d, want 3 (one per stale pull)", n)
	}
	if n := up.count("GET /v2/app/manifests/" + first); n != 1 {
		t.Errorf("manifest GETs = %d, want 1", n)
	}

	_, second, _ := up.push("app", "latest", "layer two")
	if got := p.pull("/v2/hub/app", "latest"); got != second {
		t.Fatalf("after the tag moved: %s, want %s", got, second)
	}
	if n := up.count("GET /v2/app/manifests/" + second); n != 1 {
		t.Errorf("GETs of the new manifest = %d, want 1", n)
	}
	// The old manifest stays available by digest, from the cache.
	if got := p.pull("/v2/hub/app", first); got != first {
		t.Errorf("old manifest by digest: %s", got)
	}
	if n := up.count("GET /v2/app/manifests/" + first); n != 1 {
		t.Errorf("GETs of the old manifest = %d, want still 1", n)
	}

	// An upstream that cannot be reached leaves the cached tag served.
	up.ts.Close()
	time.Sleep(5 * time.Millisecond)
	if got := p.pull("/v2/hub/app", "latest"); got != second {
		t.Errorf("stale tag while the upstream is down: %s, want %s", got, second)
	}
}

// TestProxyTokenWithCredentials checks the token flow with the proxy's
// username and password: the token endpoint gets them as basic auth, and
// every registry request (the cache's GETs too) carries the token it gave,
// since the registry, like Docker Hub, takes nothing else.
func TestProxyTokenWithCredentials(t *testing.T) {
	up := newFakeRegistry(t)
	up.username, up.password = "puller", "s3cret"
	_, want, _ := up.push("team/app", "1.0", "layer")
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"namespace":"team","username":"puller","password":"s3cret","retries":0}`, up.ts.URL))
	if got := p.pull("/v2/hub/app", "1.0"); got != want {
		t.Fatalf("pulled %s, want %s", got, want)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.tokenAuth) != 1 || up.tokenAuth[0] != "Basic cHVsbGVyOnMzY3JldA==" {
		t.Errorf("token requests' Authorization = %q, want the proxy's credentials once", up.tokenAuth)
	}
	if len(up.headAuth) != 1 || up.headAuth[0] != "Bearer tok:repository:team/app:pull" {
		t.Errorf("HEADs' Authorization = %q, want the token", up.headAuth)
	}
}

// TestProxyTokenRefused checks that wrong credentials give a 502 naming
// the upstream, not a 404.
func TestProxyTokenRefused(t *testing.T) {
	up := newFakeRegistry(t)
	up.username, up.password = "puller", "s3cret"
	up.push("app", "1.0", "layer")
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"username":"puller","password":"wrong","retries":0}`, up.ts.URL))
	status, _, body := p.get("GET", "/v2/hub/app/manifests/1.0")
	if status != http.StatusBadGateway {
		t.Errorf("with refused credentials: %d %s, want 502", status, body)
	}
}

// TestProxyMirror checks the registry-mirror mode: a /v2/ path whose
// first segment names no repository goes to the proxy that the ns
// parameter, or the default, picks.
func TestProxyMirror(t *testing.T) {
	up := newFakeRegistry(t)
	_, want, _ := up.push("library/alpine", "3.20", "alpine layer")
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"retries":0}`, up.ts.URL))
	status, _, _ := p.get("GET", "/v2/library/alpine/manifests/3.20?ns=registry.example")
	if status != http.StatusNotFound {
		t.Errorf("before mirroring is set: %d, want 404", status)
	}
	p.f.SetMirror(oci.MirrorSettings{Namespaces: map[string]string{"registry.example": "hub"}})
	status, h, _ := p.get("GET", "/v2/library/alpine/manifests/3.20?ns=registry.example")
	if status != http.StatusOK || h.Get("Docker-Content-Digest") != want {
		t.Errorf("mirrored by ns: %d %q, want %s", status, h.Get("Docker-Content-Digest"), want)
	}
	status, _, _ = p.get("GET", "/v2/library/alpine/manifests/3.20?ns=other.example")
	if status != http.StatusNotFound {
		t.Errorf("ns of no mirror and no default: %d, want 404", status)
	}
	p.f.SetMirror(oci.MirrorSettings{DefaultRepository: "hub"})
	if got := p.pull("/v2/library/alpine", "3.20"); got != want {
		t.Errorf("mirrored by default: %s, want %s", got, want)
	}
	status, _, body := p.get("GET", "/v2/library/alpine/tags/list")
	if status != http.StatusOK || string(body) != `{"name":"library/alpine","tags":["3.20"]}` {
		t.Errorf("mirrored tags list: %d %s", status, body)
	}
}

// TestProxyConcurrentPulls checks that clients pulling the same image at
// once cause one HEAD of the tag and one GET of each blob upstream.
func TestProxyConcurrentPulls(t *testing.T) {
	up := newFakeRegistry(t)
	_, want, layer := up.push("app", "1.0", strings.Repeat("a big layer ", 10000))
	p := newProxyEnv(t, fmt.Sprintf(`{"url":%q,"retries":0}`, up.ts.URL))
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = p.pull("/v2/hub/app", "1.0")
		}()
	}
	wg.Wait()
	for i, g := range got {
		if g != want {
			t.Errorf("client %d pulled %s, want %s", i, g, want)
		}
	}
	for key, want := range map[string]int{
		"HEAD /v2/app/manifests/1.0":    1,
		"GET /v2/app/manifests/" + want: 1,
		"GET /v2/app/blobs/" + layer:    1,
	} {
		if n := up.count(key); n != want {
			t.Errorf("%s: %d upstream requests, want %d", key, n, want)
		}
	}
}
