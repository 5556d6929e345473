package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"

	"arca/internal/blob"
)

func TestHeldBytesAreNotFetchedAgain(t *testing.T) {
	e := newEnv(t)
	r := e.proxyRepo(t, "images", `,"retries":0`)
	layer := []byte("a layer two images share")
	e.serve(func(w http.ResponseWriter, _ *http.Request) { w.Write(layer) }) //nolint:errcheck // the reader checks
	want := blob.NoExpectation
	want.SHA256 = sha(layer)
	ctx := context.Background()
	for _, p := range []string{"one/blobs/x", "two/blobs/x"} {
		b, _, err := e.read(ctx, r, Item{Path: p, Expect: want, Whole: true})
		if err != nil || string(b) != string(layer) {
			t.Fatalf("%s: %q, %v", p, b, err)
		}
	}
	if n := e.count("/one/blobs/x") + e.count("/two/blobs/x"); n != 1 {
		t.Errorf("the shared bytes were fetched %d times, want once", n)
	}
	if _, err := e.repos.Asset(ctx, r, "two/blobs/x"); err != nil {
		t.Errorf("the second path is not cached: %v", err)
	}
	// Bytes held by another repository are not this one's to reuse, and
	// an item without a digest cannot be matched.
	other := e.proxyRepo(t, "others", `,"retries":0`)
	if _, _, err := e.read(ctx, other, Item{Path: "three/blobs/x", Expect: want, Whole: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.read(ctx, r, Item{Path: "four/blobs/x", Whole: true}); err != nil {
		t.Fatal(err)
	}
	if n := e.count("/three/blobs/x") + e.count("/four/blobs/x"); n != 2 {
		t.Errorf("%d fetches for a repository without the bytes and an item without a digest, want 2", n)
	}
	// A wrong size is not a match.
	sized := want
	sized.Size = int64(len(layer)) + 1
	e.serve(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "") }) //nolint:errcheck // an upstream that fails the size
	if _, _, err := e.read(ctx, r, Item{Path: "five/blobs/x", Expect: sized, Whole: true}); err == nil {
		t.Error("bytes of another size were taken for the item")
	}
	if n := e.count("/five/blobs/x"); n != 1 {
		t.Errorf("an item of another size was asked upstream %d times, want once", n)
	}
}
