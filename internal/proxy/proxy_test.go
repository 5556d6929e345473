package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/meta"
	"arca/internal/repo"
)

// env is a cache over fresh stores and one upstream test server, whose
// handler the test sets and whose requests are counted by path.
type env struct {
	cache    *Service
	repos    *repo.Service
	upstream *httptest.Server

	mu      sync.Mutex
	handler http.HandlerFunc
	counts  map[string]int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := filesystem.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{counts: map[string]int{}}
	e.repos = repo.NewService(db, blob.NewStore(d))
	e.repos.RegisterFormat("raw", nil)
	if err := e.repos.SetSecretKey(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	e.cache, err = New(e.repos, filepath.Join(dir, "spool"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.counts[r.URL.Path]++
		h := e.handler
		e.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(e.upstream.Close)
	return e
}

func (e *env) serve(h http.HandlerFunc) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

// flying reports whether a flight is in progress.
func (e *env) flying() bool {
	e.cache.mu.Lock()
	defer e.cache.mu.Unlock()
	return len(e.cache.flights) > 0
}

func (e *env) count(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[path]
}

// proxyRepo creates a raw proxy of the upstream with extra proxy settings.
func (e *env) proxyRepo(t *testing.T, name, extra string) *repo.Repository {
	t.Helper()
	def := `{"name":"` + name + `","format":"raw","type":"proxy","proxy":{"url":"` + e.upstream.URL + `/"` + extra + `}}`
	r := &repo.Repository{}
	if err := json.Unmarshal([]byte(def), r); err != nil {
		t.Fatal(err)
	}
	if err := e.repos.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// read gets an item and reads it whole, from the cache or the stream.
func (e *env) read(ctx context.Context, r *repo.Repository, it Item) ([]byte, Response, error) {
	resp, err := e.cache.Get(ctx, r, it)
	if err != nil {
		return nil, resp, err
	}
	body := resp.Body
	if resp.Asset != nil {
		if body, err = e.repos.Open(ctx, *resp.Asset); err != nil {
			return nil, resp, err
		}
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return b, resp, err
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestConcurrentMissesMakeOneRequest(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", "")
	content := bytes.Repeat([]byte("arca proxy "), 100_000) // 1.1 MB
	e.serve(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Header().Set("X-Checksum-Sha256", sha(content))
		for off := 0; off < len(content); off += 128 << 10 {
			w.Write(content[off:min(off+128<<10, len(content))]) //nolint:errcheck // the test checks what arrives
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	var streamed atomic.Int32
	for range 50 {
		wg.Go(func() {
			b, resp, err := e.read(ctx, r, Item{Path: "big.bin"})
			if err != nil {
				t.Error(err)
				return
			}
			if resp.Body != nil {
				streamed.Add(1)
			}
			if !bytes.Equal(b, content) {
				t.Errorf("a client got %d bytes, not the %d sent", len(b), len(content))
			}
		})
	}
	wg.Wait()
	if n := e.count("/big.bin"); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
	if streamed.Load() == 0 {
		t.Error("no client followed the download")
	}
	b, resp, err := e.read(ctx, r, Item{Path: "big.bin"})
	if err != nil || resp.Asset == nil || !bytes.Equal(b, content) || e.count("/big.bin") != 1 {
		t.Errorf("after the miss: cached=%v err=%v, upstream asked %d times", resp.Asset != nil, err, e.count("/big.bin"))
	}
	st, err := e.cache.Status(ctx, r)
	if err != nil || st.Items != 1 || st.CacheBytes != int64(len(content)) || st.Misses != 1 || st.Hits < 1 {
		t.Errorf("status %+v, %v", st, err)
	}
}

func TestBrokenDownloadsAreNotCached(t *testing.T) {
	content := bytes.Repeat([]byte("x"), 100_000)
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"connection cut", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:len(content)/2]) //nolint:errcheck // cut on purpose
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
		{"digest mismatch", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Checksum-Sha256", sha([]byte("something else")))
			w.Write(content) //nolint:errcheck // the client judges
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.proxyRepo(t, "files", `,"retries":0`)
			e.serve(tt.handler)
			ctx := context.Background()
			b, _, err := e.read(ctx, r, Item{Path: "f.bin"})
			if err == nil {
				t.Fatalf("a broken download read as complete (%d bytes)", len(b))
			}
			if len(b) >= len(content) {
				t.Errorf("the reader got all %d bytes of a broken download", len(b))
			}
			// Wait for the flight to end, then check nothing stayed.
			for i := 0; i < 100 && e.flying(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := e.repos.Asset(ctx, r, "f.bin"); !errors.Is(err, repo.ErrNotFound) {
				t.Errorf("broken download cached: %v", err)
			}
			// The next request asks again.
			e.serve(func(w http.ResponseWriter, _ *http.Request) { w.Write(content) }) //nolint:errcheck // checked below
			if b, _, err := e.read(ctx, r, Item{Path: "f.bin"}); err != nil || !bytes.Equal(b, content) {
				t.Errorf("retry after a broken download: %d bytes, %v", len(b), err)
			}
			if n := e.count("/f.bin"); n != 2 {
				t.Errorf("upstream asked %d times, want 2", n)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", "")
	e.serve(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ctx := context.Background()
	for i := range 3 {
		_, _, err := e.read(ctx, r, Item{Path: "a.txt"})
		var ue *UpstreamError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUpstream) {
			t.Fatalf("request %d: %v, want an UpstreamError", i, err)
		}
		if _, err := e.repos.Asset(ctx, r, "a.txt"); !errors.Is(err, repo.ErrNotFound) {
			t.Fatal("a 429 left something cached")
		}
	}
	if n := e.count("/a.txt"); n != 1 {
		t.Errorf("upstream asked %d times within Retry-After, want 1", n)
	}
	time.Sleep(2100 * time.Millisecond)
	e.serve(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }) //nolint:errcheck // checked below
	if b, _, err := e.read(ctx, r, Item{Path: "a.txt"}); err != nil || string(b) != "ok" {
		t.Errorf("after Retry-After: %q, %v", b, err)
	}
}

func TestNotFoundIsRemembered(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", `,"negativeCacheTTL":"1h"`)
	e.serve(http.NotFound)
	ctx := context.Background()
	for range 3 {
		if _, _, err := e.read(ctx, r, Item{Path: "missing"}); !errors.Is(err, repo.ErrNotFound) {
			t.Fatalf("missing item = %v, want ErrNotFound", err)
		}
	}
	if n := e.count("/missing"); n != 1 {
		t.Errorf("upstream asked %d times for a remembered 404, want 1", n)
	}
}

func TestMetadataRevalidationAndStaleness(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", `,"metadataMaxAge":"50ms","retries":0`)
	version := "v1"
	var conditional atomic.Int32
	e.serve(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("ETag", `"`+version+`"`)
		if req.Header.Get("If-None-Match") == `"`+version+`"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, version) //nolint:errcheck // checked below
	})
	ctx := context.Background()
	meta := Item{Path: "index.json", Mutable: true, Whole: true}
	get := func() (string, Response) {
		t.Helper()
		b, resp, err := e.read(ctx, r, meta)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), resp
	}
	if b, _ := get(); b != "v1" {
		t.Fatalf("first read %q", b)
	}
	get() // fresh: from the cache
	if n := e.count("/index.json"); n != 1 {
		t.Errorf("fresh metadata asked upstream again: %d requests", n)
	}
	time.Sleep(60 * time.Millisecond)
	if b, _ := get(); b != "v1" || conditional.Load() != 1 {
		t.Errorf("revalidation: %q, %d conditional requests", b, conditional.Load())
	}
	// A forced revalidation sees a change at once.
	version = "v2"
	meta.Revalidate = true
	if b, _ := get(); b != "v2" {
		t.Errorf("forced revalidation read %q", b)
	}
	// With the upstream failing, the stale copy is served.
	meta.Revalidate = false
	time.Sleep(60 * time.Millisecond)
	e.serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	if b, resp := get(); b != "v2" || !resp.Stale {
		t.Errorf("upstream down: %q stale=%v", b, resp.Stale)
	}
	// Never-fetched items name the upstream problem.
	_, _, err := e.read(ctx, r, Item{Path: "other.json", Mutable: true})
	if !errors.Is(err, ErrUpstream) {
		t.Errorf("never fetched with the upstream down: %v", err)
	}
	st, _ := e.cache.Status(ctx, r)
	if st.UpstreamErrors < 2 || st.LastError == "" || st.LastErrorAt == nil {
		t.Errorf("status after errors %+v", st)
	}
}

func TestOfflineProxyServesOnlyTheCache(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", "")
	e.serve(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "cached") }) //nolint:errcheck // checked below
	ctx := context.Background()
	if _, _, err := e.read(ctx, r, Item{Path: "a"}); err != nil {
		t.Fatal(err)
	}
	off := *r
	off.Online = false
	if b, _, err := e.read(ctx, &off, Item{Path: "a"}); err != nil || string(b) != "cached" {
		t.Errorf("offline cached item: %q, %v", b, err)
	}
	if _, _, err := e.read(ctx, &off, Item{Path: "b"}); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("offline uncached item: %v", err)
	}
	if n := e.count("/b"); n != 0 {
		t.Errorf("an offline proxy asked upstream %d times", n)
	}
}

func TestMaxConnections(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", `,"maxConnections":2`)
	var inFlight, peak atomic.Int32
	e.serve(func(w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		inFlight.Add(-1)
		io.WriteString(w, "x") //nolint:errcheck // checked below
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, _, err := e.read(ctx, r, Item{Path: "f" + strconv.Itoa(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p == 0 {
		t.Errorf("peak of %d requests in flight, want at most 2", p)
	}
}

func TestEviction(t *testing.T) {
	e := newEnv(t)
	e.serve(func(w http.ResponseWriter, _ *http.Request) { w.Write(bytes.Repeat([]byte("x"), 100)) }) //nolint:errcheck // checked below
	ctx := context.Background()
	sized := e.proxyRepo(t, "sized", `,"cacheMaxSize":250`)
	for _, p := range []string{"a", "b", "c"} {
		if _, _, err := e.read(ctx, sized, Item{Path: p}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	aged := e.proxyRepo(t, "aged", `,"cacheMaxAge":"50ms"`)
	if _, _, err := e.read(ctx, aged, Item{Path: "old"}); err != nil {
		t.Fatal(err)
	}
	unbounded := e.proxyRepo(t, "unbounded", "")
	if _, _, err := e.read(ctx, unbounded, Item{Path: "kept"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	n, err := e.cache.Evict(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Evict = %d, %v; want 2 (the oldest of sized, and old)", n, err)
	}
	for _, c := range []struct {
		r    *repo.Repository
		path string
		kept bool
	}{{sized, "a", false}, {sized, "b", true}, {sized, "c", true}, {aged, "old", false}, {unbounded, "kept", true}} {
		_, err := e.repos.Asset(ctx, c.r, c.path)
		if kept := err == nil; kept != c.kept {
			t.Errorf("%s/%s kept=%v, want %v", c.r.Name, c.path, kept, c.kept)
		}
	}
}

func TestCredentialsStayWithTheUpstream(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t) // another host: a CDN the upstream's pages link to
	var upAuth, cdnAuth atomic.Value
	e.serve(func(w http.ResponseWriter, r *http.Request) {
		upAuth.Store(r.Header.Get("Authorization"))
		io.WriteString(w, "up") //nolint:errcheck // checked below
	})
	other.serve(func(w http.ResponseWriter, r *http.Request) {
		cdnAuth.Store(r.Header.Get("Authorization"))
		io.WriteString(w, "cdn") //nolint:errcheck // checked below
	})
	r := e.proxyRepo(t, "files", `,"username":"u","password":"secret"`)
	ctx := context.Background()
	if _, _, err := e.read(ctx, r, Item{Path: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.read(ctx, r, Item{Path: "b", URL: other.upstream.URL + "/b"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := upAuth.Load().(string); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("the upstream got Authorization %q", got)
	}
	if got, _ := cdnAuth.Load().(string); got != "" {
		t.Errorf("another host got the upstream's credentials: %q", got)
	}
}

func TestForgetExpired(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	e.cache.notFound[key{1, "gone"}] = now.Add(-time.Second)
	e.cache.notFound[key{1, "kept"}] = now.Add(time.Hour)
	e.cache.revalidated[key{1, "old"}] = now.Add(-revalidationMemory - time.Second)
	e.cache.revalidated[key{1, "recent"}] = now
	e.cache.forgetExpired(now)
	if len(e.cache.notFound) != 1 || len(e.cache.revalidated) != 1 {
		t.Errorf("after forgetting: %v %v", e.cache.notFound, e.cache.revalidated)
	}
}

func TestHead(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", `,"retries":0`)
	e.serve(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Docker-Content-Digest", "sha256:abc")
		if req.Method != http.MethodHead {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	ctx := context.Background()
	resp, err := e.cache.Head(ctx, r, e.upstream.URL+"/x", nil)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != "sha256:abc" {
		t.Fatalf("Head = %v, %v", resp, err)
	}
	e.upstream.Close()
	if _, err := e.cache.Head(ctx, r, e.upstream.URL+"/x", nil); !errors.Is(err, ErrUpstream) {
		t.Errorf("Head of a stopped upstream = %v", err)
	}
	if st, _ := e.cache.Status(ctx, r); st.UpstreamErrors != 1 || st.LastError == "" {
		t.Errorf("status after a failed HEAD: %+v", st)
	}
}
