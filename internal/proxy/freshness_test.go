package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"arca/internal/repo"
)

func TestFreshness(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "files", `,"metadataMaxAge":"1h","negativeCacheTTL":"2m","retries":0`)
	up := true
	e.serve(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case !up:
			w.WriteHeader(http.StatusBadGateway)
		case req.URL.Path == "/missing":
			http.NotFound(w, req)
		default:
			io.WriteString(w, "content") //nolint:errcheck // the reader checks
		}
	})
	read := func(it Item) (time.Time, bool, error) {
		t.Helper()
		ctx, f := WithFreshness(context.Background())
		_, _, err := e.read(ctx, r, it)
		until, ok := f.Until()
		return until, ok, err
	}
	near := func(got, want time.Time) bool { return got.Sub(want).Abs() < 5*time.Second }

	// Metadata fetched now holds for metadataMaxAge, bounded by the
	// negative TTL on the fetch (a 404 would have held that long).
	start := time.Now()
	if until, ok, err := read(Item{Path: "index", Mutable: true, Whole: true}); err != nil || !ok || !near(until, start.Add(2*time.Minute)) {
		t.Errorf("a fetch of metadata holds until %v (ok %v, %v), want about %v", until, ok, err, start.Add(2*time.Minute))
	}
	// From the cache, it holds until it falls due.
	if until, ok, err := read(Item{Path: "index", Mutable: true, Whole: true}); err != nil || !ok || !near(until, start.Add(time.Hour)) {
		t.Errorf("cached metadata holds until %v (ok %v, %v), want about %v", until, ok, err, start.Add(time.Hour))
	}
	// Content that cannot change sets no limit once cached.
	read(Item{Path: "artifact", Whole: true}) //nolint:errcheck // checked on the second read
	if until, ok, err := read(Item{Path: "artifact", Whole: true}); err != nil || !ok || !until.IsZero() {
		t.Errorf("a cached artifact holds until %v (ok %v, %v), want no limit", until, ok, err)
	}
	// A 404 holds for the negative TTL, fetched or remembered.
	for range 2 {
		if until, ok, _ := read(Item{Path: "missing", Mutable: true}); !ok || !near(until, start.Add(2*time.Minute)) {
			t.Errorf("a 404 holds until %v (ok %v), want about %v", until, ok, start.Add(2*time.Minute))
		}
	}
	// A failed read and a stale answer may not be kept at all.
	up = false
	if _, ok, err := read(Item{Path: "never", Mutable: true}); ok || err == nil {
		t.Errorf("a failed read may be kept (%v)", err)
	}
	if err := e.repos.Revalidated(context.Background(), mustAsset(t, e, r, "index"), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := read(Item{Path: "index", Mutable: true, Whole: true}); ok || err != nil {
		t.Errorf("stale metadata may be kept (%v)", err)
	}
}

// mustAsset returns the cached asset at path.
func mustAsset(t *testing.T, e *env, r *repo.Repository, path string) repo.Asset {
	t.Helper()
	a, err := e.repos.Asset(context.Background(), r, path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
