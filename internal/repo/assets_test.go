package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/blob"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// put writes body at path and fails the test on error.
func (e *testEnv) put(t *testing.T, r *Repository, path, body string, immutable bool) Asset {
	t.Helper()
	a, err := e.svc.PutAsset(context.Background(), r, strings.NewReader(body),
		PutOptions{Path: path, ContentType: "text/plain", Uploader: "alice", Expect: blob.NoExpectation, Immutable: immutable})
	if err != nil {
		t.Fatalf("PutAsset(%s): %v", path, err)
	}
	return a
}

// read returns the bytes served at path.
func (e *testEnv) read(t *testing.T, r *Repository, path string) string {
	t.Helper()
	ctx := context.Background()
	a, err := e.svc.Asset(ctx, r, path)
	if err != nil {
		t.Fatalf("Asset(%s): %v", path, err)
	}
	f, err := e.svc.Open(ctx, a)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *testEnv) blobCount(t *testing.T) int {
	t.Helper()
	n := 0
	if err := e.blobs.Walk(context.Background(), func(string, int64, time.Time) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *testEnv) linked(t *testing.T, r *Repository, sha string) bool {
	t.Helper()
	ok, err := e.db.Queries().BlobLinked(context.Background(), r.ID, sha)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (e *testEnv) absent(t *testing.T, r *Repository, path string) {
	t.Helper()
	if a, err := e.svc.Asset(context.Background(), r, path); !errors.Is(err, ErrNotFound) {
		t.Errorf("asset %s exists (%+v, %v), want none", path, a, err)
	}
}

func TestPutAssetStoresAndReads(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	a, err := e.svc.PutAsset(ctx, r, strings.NewReader("hello"), PutOptions{
		Path: "dir/hello.txt", ContentType: "text/plain", Uploader: "alice",
		Expect:    blob.Expect{Digests: blob.Digests{SHA256: strings.ToUpper(sum("hello"))}, Size: 5},
		Component: Component{Name: "greeting", Version: "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.RepositoryID != r.ID || a.Blob.SHA256 != sum("hello") || a.Blob.Size != 5 || a.ComponentID == 0 {
		t.Errorf("PutAsset returned %+v", a)
	}
	got, err := e.svc.Asset(ctx, r, "dir/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != a.ID || got.ContentType != "text/plain" || got.Uploader != "alice" ||
		got.Blob != a.Blob || got.ComponentID != a.ComponentID {
		t.Errorf("Asset = %+v, want %+v", got, a)
	}
	if s := e.read(t, r, "dir/hello.txt"); s != "hello" {
		t.Errorf("read %q", s)
	}
	if !e.linked(t, r, a.Blob.SHA256) {
		t.Error("blob not linked to the repository")
	}
	if info, err := e.db.Queries().BlobByDigest(ctx, blob.MD5, a.Blob.MD5); err != nil || info != a.Blob {
		t.Errorf("blob record: %+v, %v", info, err)
	}
	e.absent(t, r, "dir")
}

func TestOpenMissingBlobIsNotNotFound(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	a := e.put(t, r, "f", "bytes", true)
	if err := e.blobs.Delete(ctx, a.Blob.SHA256); err != nil {
		t.Fatal(err)
	}
	f, err := e.svc.Open(ctx, a)
	if err == nil {
		f.Close()
		t.Fatal("Open succeeded without the blob")
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("missing bytes reported as not found: %v", err)
	}
}

func TestSameBytesTwoRepositoriesOneBlob(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r1 := e.create(t, `{"name":"one","format":"raw","type":"hosted"}`)
	r2 := e.create(t, `{"name":"two","format":"raw","type":"hosted"}`)
	a1 := e.put(t, r1, "x/file", "same bytes", true)
	a2 := e.put(t, r2, "y/file", "same bytes", true)
	if a1.Blob.SHA256 != a2.Blob.SHA256 {
		t.Fatal("same bytes got different digests")
	}
	if n := e.blobCount(t); n != 1 {
		t.Errorf("blob store holds %d blobs, want 1", n)
	}

	if err := e.svc.DeleteAsset(ctx, r1, "x/file"); err != nil {
		t.Fatal(err)
	}
	e.absent(t, r1, "x/file")
	if s := e.read(t, r2, "y/file"); s != "same bytes" {
		t.Errorf("other repository reads %q", s)
	}
	if e.linked(t, r1, a1.Blob.SHA256) || !e.linked(t, r2, a2.Blob.SHA256) {
		t.Error("links after delete: want r1 unlinked, r2 linked")
	}
	if err := e.svc.DeleteAsset(ctx, r1, "x/file"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteAsset = %v, want ErrNotFound", err)
	}
}

func TestWritePolicies(t *testing.T) {
	ctx := context.Background()

	t.Run("allow-once", func(t *testing.T) {
		e := newEnv(t)
		r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
		e.put(t, r, "lib.jar", "original", true)
		_, err := e.svc.PutAsset(ctx, r, strings.NewReader("replacement"),
			PutOptions{Path: "lib.jar", Expect: blob.NoExpectation, Immutable: true})
		if !errors.Is(err, ErrExists) {
			t.Errorf("second immutable put = %v, want ErrExists", err)
		}
		if s := e.read(t, r, "lib.jar"); s != "original" {
			t.Errorf("serves %q, want original", s)
		}
		// Metadata is regenerated freely.
		e.put(t, r, "index", "v1", false)
		e.put(t, r, "index", "v2", false)
		if s := e.read(t, r, "index"); s != "v2" {
			t.Errorf("metadata reads %q, want v2", s)
		}
		// allow-once permits deleting.
		if err := e.svc.DeleteAsset(ctx, r, "lib.jar"); err != nil {
			t.Errorf("DeleteAsset = %v", err)
		}
		e.put(t, r, "lib.jar", "after delete", true)
	})

	t.Run("allow", func(t *testing.T) {
		e := newEnv(t)
		r := e.create(t, `{"name":"files","format":"raw","type":"hosted","writePolicy":"allow"}`)
		old := e.put(t, r, "lib.jar", "first", true)
		keep := e.put(t, r, "a.jar", "kept", true)
		e.put(t, r, "b.jar", "kept", true)

		nu := e.put(t, r, "lib.jar", "second", true)
		if nu.ID != old.ID {
			t.Errorf("overwrite changed the asset id %d -> %d", old.ID, nu.ID)
		}
		if s := e.read(t, r, "lib.jar"); s != "second" {
			t.Errorf("serves %q, want second", s)
		}
		if e.linked(t, r, old.Blob.SHA256) {
			t.Error("the replaced, unused blob is still linked")
		}
		if !e.linked(t, r, nu.Blob.SHA256) {
			t.Error("the new blob is not linked")
		}
		// A blob another asset still uses keeps its link.
		e.put(t, r, "a.jar", "replaced", true)
		if !e.linked(t, r, keep.Blob.SHA256) {
			t.Error("blob still used by b.jar was unlinked")
		}
	})

	t.Run("deny", func(t *testing.T) {
		e := newEnv(t)
		r := e.create(t, `{"name":"files","format":"raw","type":"hosted","writePolicy":"allow"}`)
		e.put(t, r, "lib.jar", "original", true)
		up := *r
		up.WritePolicy = Deny
		if err := e.svc.Update(ctx, &up); err != nil {
			t.Fatal(err)
		}
		r, err := e.svc.Get(ctx, "files")
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"lib.jar", "new.jar"} {
			_, err := e.svc.PutAsset(ctx, r, strings.NewReader("x"),
				PutOptions{Path: path, Expect: blob.NoExpectation, Immutable: true})
			if !errors.Is(err, ErrWriteDenied) {
				t.Errorf("put %s = %v, want ErrWriteDenied", path, err)
			}
		}
		e.absent(t, r, "new.jar")
		if err := e.svc.DeleteAsset(ctx, r, "lib.jar"); !errors.Is(err, ErrWriteDenied) {
			t.Errorf("delete = %v, want ErrWriteDenied", err)
		}
		if s := e.read(t, r, "lib.jar"); s != "original" {
			t.Errorf("serves %q after refused writes", s)
		}
		// A read-only repository refuses mutable writes too.
		_, err = e.svc.PutAsset(ctx, r, strings.NewReader("x"),
			PutOptions{Path: "metadata.xml", Expect: blob.NoExpectation})
		if !errors.Is(err, ErrWriteDenied) {
			t.Errorf("mutable put = %v, want ErrWriteDenied", err)
		}
		// Cleanup the repository's own settings ask for still runs.
		if err := e.svc.PruneAssets(ctx, r, []string{"lib.jar", "never-there"}); err != nil {
			t.Fatal(err)
		}
		e.absent(t, r, "lib.jar")
	})
}

func TestOffline(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	on := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	e.put(t, on, "f", "bytes", true)
	r := e.create(t, `{"name":"off","format":"raw","type":"hosted","online":false,"writePolicy":"allow"}`)
	for _, immutable := range []bool{true, false} {
		_, err := e.svc.PutAsset(ctx, r, strings.NewReader("x"),
			PutOptions{Path: "f", Expect: blob.NoExpectation, Immutable: immutable})
		if !errors.Is(err, ErrOffline) {
			t.Errorf("put (immutable %v) = %v, want ErrOffline", immutable, err)
		}
	}
	e.absent(t, r, "f")
	off := *on
	off.Online = false
	if err := e.svc.DeleteAsset(ctx, &off, "f"); !errors.Is(err, ErrOffline) {
		t.Errorf("delete = %v, want ErrOffline", err)
	}
	if s := e.read(t, on, "f"); s != "bytes" {
		t.Errorf("refused delete removed the asset: %q", s)
	}
}

func TestPutAssetFailuresLeaveNoAsset(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)

	_, err := e.svc.PutAsset(ctx, r, strings.NewReader("actual"), PutOptions{
		Path: "mismatch", Immutable: true,
		Expect: blob.Expect{Digests: blob.Digests{SHA256: sum("expected")}, Size: -1},
	})
	if !errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("digest mismatch = %v, want ErrDigestMismatch", err)
	}
	e.absent(t, r, "mismatch")
	if _, err := e.db.Queries().BlobByDigest(ctx, blob.SHA256, sum("actual")); !errors.Is(err, ErrNotFound) {
		t.Errorf("mismatched blob recorded: %v", err)
	}

	_, err = e.svc.PutAsset(ctx, r, strings.NewReader("actual"), PutOptions{
		Path: "size", Expect: blob.Expect{Size: 99},
	})
	if !errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("size mismatch = %v, want ErrDigestMismatch", err)
	}
	e.absent(t, r, "size")

	boom := errors.New("connection reset")
	body := io.MultiReader(strings.NewReader("first half"), &failingReader{err: boom})
	_, err = e.svc.PutAsset(ctx, r, body, PutOptions{Path: "cut", Expect: blob.NoExpectation, Immutable: true})
	if !errors.Is(err, boom) {
		t.Errorf("failing body = %v, want its error", err)
	}
	e.absent(t, r, "cut")
	if n := e.blobCount(t); n != 0 {
		t.Errorf("%d blobs committed by failed puts", n)
	}

	// A failed replacement leaves the old asset in place.
	e.put(t, r, "meta", "old", false)
	_, err = e.svc.PutAsset(ctx, r, io.MultiReader(strings.NewReader("ne"), &failingReader{err: boom}),
		PutOptions{Path: "meta", Expect: blob.NoExpectation})
	if !errors.Is(err, boom) {
		t.Errorf("failing replacement = %v", err)
	}
	if s := e.read(t, r, "meta"); s != "old" {
		t.Errorf("failed replacement left %q", s)
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestConcurrentImmutablePut(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = e.svc.PutAsset(ctx, r, strings.NewReader(fmt.Sprintf("content %d", i)),
				PutOptions{Path: "lib/1.0/lib.jar", Expect: blob.NoExpectation, Immutable: true})
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("puts %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, ErrExists):
			t.Errorf("put %d = %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no put succeeded")
	}
	if s := e.read(t, r, "lib/1.0/lib.jar"); s != fmt.Sprintf("content %d", winner) {
		t.Errorf("serves %q, want the winner's (%d) bytes", s, winner)
	}
	a, err := e.svc.Asset(ctx, r, "lib/1.0/lib.jar")
	if err != nil {
		t.Fatal(err)
	}
	if a.Blob.SHA256 != sum(fmt.Sprintf("content %d", winner)) {
		t.Error("asset record does not match the winner's bytes")
	}
	for i := range n {
		if want := i == winner; e.linked(t, r, sum(fmt.Sprintf("content %d", i))) != want {
			t.Errorf("blob of put %d linked = %v, want %v", i, !want, want)
		}
	}
}

func TestDownloadMarks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	a := e.put(t, r, "f", "bytes", true)
	other := e.put(t, r, "g", "other", true)

	if err := e.svc.FlushDownloads(ctx); err != nil {
		t.Errorf("flush with no marks = %v", err)
	}
	before := time.Now()
	e.svc.Downloaded(a)
	if got, _ := e.svc.Asset(ctx, r, "f"); !got.LastDownloadedAt.IsZero() {
		t.Error("Downloaded wrote to the database before a flush")
	}

	// A flush that fails keeps the marks for the next one.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.svc.FlushDownloads(cancelled); err == nil {
		t.Fatal("flush with a cancelled context succeeded")
	}
	if err := e.svc.FlushDownloads(ctx); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got, err := e.svc.Asset(ctx, r, "f")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastDownloadedAt.Before(before) || got.LastDownloadedAt.After(after) {
		t.Errorf("LastDownloadedAt = %v, want between %v and %v", got.LastDownloadedAt, before, after)
	}
	if g, _ := e.svc.Asset(ctx, r, "g"); !g.LastDownloadedAt.IsZero() {
		t.Error("an asset not downloaded got a download time")
	}

	// RunDownloadMarks flushes once more when its context ends.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		e.svc.RunDownloadMarks(runCtx, time.Hour, slog.New(slog.DiscardHandler))
		close(done)
	}()
	e.svc.Downloaded(other)
	stop()
	<-done
	if g, _ := e.svc.Asset(ctx, r, "g"); g.LastDownloadedAt.IsZero() {
		t.Error("RunDownloadMarks did not flush on stop")
	}
}

func TestAssetsUnderPassesThrough(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	other := e.create(t, `{"name":"other","format":"raw","type":"hosted"}`)
	for _, p := range []string{"b/1", "a/2", "a/1", "a-b/1", "c"} {
		e.put(t, r, p, p, true)
	}
	e.put(t, other, "a/3", "x", true)
	var got []string
	err := e.svc.AssetsUnder(ctx, r, "a/", func(a Asset) error {
		got = append(got, a.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a/1,a/2" {
		t.Errorf("AssetsUnder(a/) = %q", got)
	}
	stop := errors.New("stop")
	if err := e.svc.AssetsUnder(ctx, r, "", func(Asset) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn error not returned: %v", err)
	}
}
