package gc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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

// env is a repository service over a real SQLite store and filesystem blob
// store in a temporary folder.
type env struct {
	db    *meta.DB
	blobs *blob.Store
	svc   *repo.Service
	root  string // the blob store's folder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(dir, "blobs")
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatalf("filesystem.New: %v", err)
	}
	e := &env{db: db, blobs: blob.NewStore(d), root: root}
	e.svc = repo.NewService(db, e.blobs)
	e.svc.RegisterFormat("raw", nil)
	return e
}

func (e *env) repository(t *testing.T, name string) *repo.Repository {
	t.Helper()
	r := &repo.Repository{Name: name, Format: "raw", Type: repo.Hosted, Online: true, WritePolicy: repo.Allow}
	if err := e.svc.Create(context.Background(), r); err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	got, err := e.svc.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (e *env) put(t *testing.T, r *repo.Repository, path, body string) repo.Asset {
	t.Helper()
	a, err := e.svc.PutAsset(context.Background(), r, strings.NewReader(body),
		repo.PutOptions{Path: path, Expect: blob.NoExpectation, Immutable: true})
	if err != nil {
		t.Fatalf("PutAsset(%s/%s): %v", r.Name, path, err)
	}
	return a
}

func (e *env) del(t *testing.T, r *repo.Repository, path string) {
	t.Helper()
	if err := e.svc.DeleteAsset(context.Background(), r, path); err != nil {
		t.Fatalf("DeleteAsset(%s/%s): %v", r.Name, path, err)
	}
}

// read returns the bytes served at path.
func (e *env) read(t *testing.T, r *repo.Repository, path string) string {
	t.Helper()
	ctx := context.Background()
	a, err := e.svc.Asset(ctx, r, path)
	if err != nil {
		t.Fatalf("Asset(%s/%s): %v", r.Name, path, err)
	}
	f, err := e.svc.Open(ctx, a)
	if err != nil {
		t.Fatalf("Open(%s/%s): %v", r.Name, path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stored reports whether the blob file of sha exists.
func (e *env) stored(t *testing.T, sha string) bool {
	t.Helper()
	_, err := e.blobs.Stat(context.Background(), sha)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// recorded reports whether the metadata store has a row for the blob.
func (e *env) recorded(t *testing.T, sha string) bool {
	t.Helper()
	_, err := e.db.Queries().BlobByDigest(context.Background(), blob.SHA256, sha)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// age sets the modification time of a blob file.
func (e *env) age(t *testing.T, sha string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(e.root, "blobs", sha[:2], sha), at, at); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func run(t *testing.T, c *Collector, dryRun bool) Report {
	t.Helper()
	rep, err := c.Run(context.Background(), dryRun)
	if err != nil {
		t.Fatalf("Run(dryRun %v): %v", dryRun, err)
	}
	if rep.DryRun != dryRun {
		t.Errorf("Report.DryRun = %v, want %v", rep.DryRun, dryRun)
	}
	return rep
}

func wantReport(t *testing.T, rep Report, want map[string]int64) {
	t.Helper()
	var shas []string
	var bytes int64
	for sha, size := range want {
		shas = append(shas, sha)
		bytes += size
	}
	slices.Sort(shas)
	if !slices.Equal(rep.Blobs, shas) || rep.BlobsFreed != len(want) || rep.BytesFreed != bytes {
		t.Errorf("Report = %+v, want blobs %v, %d freed, %d bytes", rep, shas, len(want), bytes)
	}
	if rep.Blobs == nil {
		t.Error("Report.Blobs is nil, want an empty list at least")
	}
}

func TestCollectsOnlyUnusedBlobs(t *testing.T) {
	e := newEnv(t)
	logs := &syncBuffer{}
	c := New(e.db, e.blobs, 0, slog.New(slog.NewTextHandler(logs, nil)))
	ra, rb := e.repository(t, "ra"), e.repository(t, "rb")
	shared, kept := "bytes in two repositories", "bytes that stay"
	e.put(t, ra, "x.txt", shared)
	e.put(t, rb, "y.txt", shared)
	e.put(t, ra, "keep.txt", kept)

	// Nothing is unused yet.
	wantReport(t, run(t, c, true), nil)
	wantReport(t, run(t, c, false), nil)

	// Deleted in one repository, the blob is still used by the other.
	e.del(t, ra, "x.txt")
	wantReport(t, run(t, c, true), nil)
	if !e.stored(t, sum(shared)) {
		t.Fatal("a blob still used by another repository was freed")
	}

	// Deleted in the other too, it is unused: a dry run lists it and
	// frees nothing.
	e.del(t, rb, "y.txt")
	for range 2 {
		wantReport(t, run(t, c, true), map[string]int64{sum(shared): int64(len(shared))})
	}
	if !e.stored(t, sum(shared)) || !e.recorded(t, sum(shared)) {
		t.Fatal("a dry run freed a blob")
	}

	// A real run frees exactly that blob, file and record.
	wantReport(t, run(t, c, false), map[string]int64{sum(shared): int64(len(shared))})
	if e.stored(t, sum(shared)) || e.recorded(t, sum(shared)) {
		t.Errorf("freed blob: file %v, record %v; want both gone", e.stored(t, sum(shared)), e.recorded(t, sum(shared)))
	}
	if s := e.read(t, ra, "keep.txt"); s != kept {
		t.Errorf("keep.txt serves %q, want %q", s, kept)
	}
	wantReport(t, run(t, c, false), nil)

	// The same bytes can come back afterwards.
	e.put(t, rb, "again.txt", shared)
	if s := e.read(t, rb, "again.txt"); s != shared {
		t.Errorf("again.txt serves %q, want %q", s, shared)
	}
	wantReport(t, run(t, c, false), nil)

	out := logs.String()
	if !strings.Contains(out, `msg="garbage collection done"`) || !strings.Contains(out, "blobs_freed=1") ||
		!strings.Contains(out, fmt.Sprintf("bytes_freed=%d", len(shared))) {
		t.Errorf("log lacks the summary of the freeing run:\n%s", out)
	}
}

// TestFreesBlobsWithoutRecord checks the leftovers of a crash between the
// commit of a blob and the transaction recording it, and of a record no
// asset or link refers to.
func TestFreesBlobsWithoutRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, 0, quietLog())
	r := e.repository(t, "files")
	e.put(t, r, "used.txt", "used")

	crashed, err := e.blobs.Put(ctx, strings.NewReader("committed, never recorded"), blob.NoExpectation)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	lonely, err := e.blobs.Put(ctx, strings.NewReader("recorded, never used"), blob.NoExpectation)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := e.db.Queries().PutBlob(ctx, lonely); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{crashed.SHA256: crashed.Size, lonely.SHA256: lonely.Size}
	wantReport(t, run(t, c, true), want)
	wantReport(t, run(t, c, false), want)
	for _, sha := range []string{crashed.SHA256, lonely.SHA256} {
		if e.stored(t, sha) || e.recorded(t, sha) {
			t.Errorf("blob %s still stored or recorded", sha)
		}
	}
	if s := e.read(t, r, "used.txt"); s != "used" {
		t.Errorf("used.txt serves %q", s)
	}
}

func TestGraceSparesYoungBlobs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, time.Hour, quietLog())
	r := e.repository(t, "files")
	used := e.put(t, r, "used.txt", "used and old")
	young, err := e.blobs.Put(ctx, strings.NewReader("unused and young"), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	old, err := e.blobs.Put(ctx, strings.NewReader("unused and old"), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * time.Hour)
	e.age(t, old.SHA256, long)
	e.age(t, used.Blob.SHA256, long)

	wantReport(t, run(t, c, true), map[string]int64{old.SHA256: old.Size})
	wantReport(t, run(t, c, false), map[string]int64{old.SHA256: old.Size})
	if !e.stored(t, young.SHA256) {
		t.Error("a blob younger than the grace period was freed")
	}
	if s := e.read(t, r, "used.txt"); s != "used and old" {
		t.Errorf("used.txt serves %q", s)
	}

	// Stored again, an old unused blob is young again.
	e.age(t, young.SHA256, long)
	if _, err := e.blobs.Put(ctx, strings.NewReader("unused and young"), blob.NoExpectation); err != nil {
		t.Fatal(err)
	}
	wantReport(t, run(t, c, false), nil)
	// Once it is old, it goes.
	e.age(t, young.SHA256, long)
	wantReport(t, run(t, c, false), map[string]int64{young.SHA256: young.Size})
}

func TestLeaseHeldElsewhereIsBusy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, 0, quietLog())
	orphan, err := e.blobs.Put(ctx, strings.NewReader("orphan"), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	q := e.db.Queries()
	if ok, err := q.AcquireLease(ctx, leaseName, "another-node", time.Minute); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	for _, dryRun := range []bool{true, false} {
		rep, err := c.Run(ctx, dryRun)
		if !errors.Is(err, ErrBusy) {
			t.Errorf("Run(dryRun %v) while another node holds the lease = %v, want ErrBusy", dryRun, err)
		}
		if rep.BlobsFreed != 0 || len(rep.Blobs) != 0 {
			t.Errorf("refused run reports %+v", rep)
		}
	}
	if !e.stored(t, orphan.SHA256) {
		t.Fatal("a refused run freed a blob")
	}
	// Another holder's lease is left alone.
	if ok, err := q.AcquireLease(ctx, leaseName, "third-node", time.Minute); err != nil || ok {
		t.Errorf("third holder got the lease (%v, %v) after a refused run", ok, err)
	}

	if err := q.ReleaseLease(ctx, leaseName, "another-node"); err != nil {
		t.Fatal(err)
	}
	wantReport(t, run(t, c, false), map[string]int64{orphan.SHA256: orphan.Size})
	// The run released its lease.
	if ok, err := q.AcquireLease(ctx, leaseName, "another-node", time.Minute); err != nil || !ok {
		t.Errorf("AcquireLease after a run = %v, %v; want the lease free", ok, err)
	}
}

// TestRunsExcludeEachOther checks that while a run goes on, a second
// collector (another holder) and the same collector are both refused.
func TestRunsExcludeEachOther(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, 0, quietLog())
	other := New(e.db, e.blobs, 0, quietLog())
	if c.holder == other.holder {
		t.Fatalf("two collectors share the holder id %q", c.holder)
	}
	orphan, err := e.blobs.Put(ctx, strings.NewReader("orphan"), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	inRun, proceed := make(chan struct{}), make(chan struct{})
	c.testHookBlob = func(string) {
		close(inRun)
		<-proceed
	}
	done := make(chan Report, 1)
	go func() {
		rep, err := c.Run(ctx, false)
		if err != nil {
			t.Errorf("first Run: %v", err)
		}
		done <- rep
	}()
	<-inRun
	if _, err := other.Run(ctx, false); !errors.Is(err, ErrBusy) {
		t.Errorf("second collector's Run during a run = %v, want ErrBusy", err)
	}
	if _, err := c.Run(ctx, true); !errors.Is(err, ErrBusy) {
		t.Errorf("same collector's Run during a run = %v, want ErrBusy", err)
	}
	close(proceed)
	wantReport(t, <-done, map[string]int64{orphan.SHA256: orphan.Size})
	// Afterwards the other collector may run.
	wantReport(t, run(t, other, false), nil)
}

// TestLeaseRenewedDuringLongRun checks that a run longer than the lease's
// TTL keeps the lease, and gives it up at the end.
func TestLeaseRenewedDuringLongRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, 0, quietLog())
	c.leaseTTL = 300 * time.Millisecond
	want := map[string]int64{}
	for i := range 4 {
		info, err := e.blobs.Put(ctx, strings.NewReader(fmt.Sprintf("orphan %d", i)), blob.NoExpectation)
		if err != nil {
			t.Fatal(err)
		}
		want[info.SHA256] = info.Size
	}
	q := e.db.Queries()
	var stolen atomic.Int32
	c.testHookBlob = func(string) {
		// Each blob takes longer than the TTL; a lease never renewed
		// would be free for the taking by now.
		time.Sleep(400 * time.Millisecond)
		ok, err := q.AcquireLease(ctx, leaseName, "another-node", time.Minute)
		if err != nil {
			t.Errorf("AcquireLease: %v", err)
		}
		if ok {
			stolen.Add(1)
			q.ReleaseLease(ctx, leaseName, "another-node") //nolint:errcheck // the test fails anyway
		}
	}
	rep, err := c.Run(ctx, false)
	if n := stolen.Load(); n != 0 {
		t.Errorf("another holder took the lease %d times during a run", n)
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantReport(t, rep, want)
	if ok, err := q.AcquireLease(ctx, leaseName, "another-node", time.Minute); err != nil || !ok {
		t.Errorf("AcquireLease after the run = %v, %v; want the lease free", ok, err)
	}
}

// TestLostLeaseStopsRun checks that a run whose lease was taken over stops
// instead of going on beside the new holder.
func TestLostLeaseStopsRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, 0, quietLog())
	c.leaseTTL = 90 * time.Millisecond
	for i := range 5 {
		if _, err := e.blobs.Put(ctx, strings.NewReader(fmt.Sprintf("orphan %d", i)), blob.NoExpectation); err != nil {
			t.Fatal(err)
		}
	}
	q := e.db.Queries()
	var seen atomic.Int32
	c.testHookBlob = func(string) {
		if seen.Add(1) != 1 {
			return
		}
		// Another node takes the lease over, as after an expiry.
		if err := q.ReleaseLease(ctx, leaseName, c.holder); err != nil {
			t.Error(err)
		}
		if ok, err := q.AcquireLease(ctx, leaseName, "another-node", time.Minute); err != nil || !ok {
			t.Errorf("AcquireLease = %v, %v", ok, err)
		}
		time.Sleep(200 * time.Millisecond) // past the next renewal
	}
	rep, err := c.Run(ctx, false)
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("Run after losing its lease = %v, want errLeaseLost", err)
	}
	if rep.BlobsFreed > 1 || seen.Load() > 2 {
		t.Errorf("run went on after losing its lease: %d blobs seen, report %+v", seen.Load(), rep)
	}
	// The new holder's lease is not released by the stopped run.
	if ok, err := q.AcquireLease(ctx, leaseName, "third-node", time.Minute); err != nil || ok {
		t.Errorf("third holder got the lease (%v, %v): the stopped run released another's", ok, err)
	}
}

func TestRunScheduled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := New(e.db, e.blobs, 0, quietLog())
	orphan, err := e.blobs.Put(ctx, strings.NewReader("orphan"), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}

	// Off: it returns at once and frees nothing.
	for _, every := range []time.Duration{0, -time.Second} {
		returned := make(chan struct{})
		go func() {
			c.RunScheduled(ctx, every)
			close(returned)
		}()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatalf("RunScheduled(%v) did not return", every)
		}
	}
	if !e.stored(t, orphan.SHA256) {
		t.Fatal("RunScheduled(0) freed a blob")
	}

	returned := make(chan struct{})
	go func() {
		c.RunScheduled(ctx, 20*time.Millisecond)
		close(returned)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.stored(t, orphan.SHA256) {
		if time.Now().After(deadline) {
			t.Fatal("scheduled collection never freed the unused blob")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// It keeps running: a new orphan goes too.
	second, err := e.blobs.Put(ctx, strings.NewReader("second orphan"), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	for e.stored(t, second.SHA256) {
		if time.Now().After(deadline) {
			t.Fatal("scheduled collection stopped after one run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("RunScheduled did not return after its context ended")
	}
}

// TestConcurrentUploadsLoseNothing uploads the same and different bytes
// from several goroutines, deleting and rewriting paths all the time, while
// collections with no grace period run back to back. Every asset must stay
// readable with its bytes the whole time and at the end.
func TestConcurrentUploadsLoseNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := New(e.db, e.blobs, 0, quietLog())
	repos := []*repo.Repository{e.repository(t, "one"), e.repository(t, "two")}
	const writers, rounds, paths = 6, 60, 4
	iterations := rounds
	if testing.Short() {
		iterations = 15
	}

	stop := make(chan struct{})
	var runs, freed atomic.Int64
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			rep, err := c.Run(ctx, false)
			if err != nil {
				t.Errorf("Run: %v", err)
				return
			}
			runs.Add(1)
			freed.Add(int64(rep.BlobsFreed))
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range iterations {
				r := repos[(w+i)%len(repos)]
				path := fmt.Sprintf("w%d/p%d", w, i%paths)
				// Half the uploads share their bytes with other writers,
				// so a blob freed for one is wanted again by another.
				body := fmt.Sprintf("shared %d", i%3)
				if i%2 == 1 {
					body = fmt.Sprintf("writer %d round %d", w, i)
				}
				a, err := e.svc.PutAsset(ctx, r, strings.NewReader(body),
					repo.PutOptions{Path: path, Expect: blob.NoExpectation, Immutable: true})
				if err != nil {
					t.Errorf("PutAsset(%s/%s): %v", r.Name, path, err)
					return
				}
				if a.Blob.SHA256 != sum(body) {
					t.Errorf("PutAsset(%s/%s) recorded blob %s, want %s", r.Name, path, a.Blob.SHA256, sum(body))
				}
				// Only this writer touches its paths: the asset must be
				// there with its bytes until it deletes it.
				if err := checkAsset(ctx, e.svc, r, path, body); err != nil {
					t.Errorf("right after PutAsset: %v", err)
				}
				if i%3 == 2 {
					if err := e.svc.DeleteAsset(ctx, r, path); err != nil {
						t.Errorf("DeleteAsset(%s/%s): %v", r.Name, path, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-gcDone
	t.Logf("%d collections freed %d blobs during the uploads", runs.Load(), freed.Load())
	if runs.Load() == 0 {
		t.Error("no collection ran during the uploads")
	}

	checkAll := func(when string) int {
		t.Helper()
		n := 0
		for _, r := range repos {
			err := e.svc.AssetsUnder(ctx, r, "", func(a repo.Asset) error {
				n++
				f, err := e.svc.Open(ctx, a)
				if err != nil {
					t.Errorf("%s: Open(%s/%s): %v", when, r.Name, a.Path, err)
					return nil
				}
				defer f.Close()
				h := sha256.New()
				size, err := io.Copy(h, f)
				if err != nil {
					t.Errorf("%s: read %s/%s: %v", when, r.Name, a.Path, err)
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != a.Blob.SHA256 || size != a.Blob.Size {
					t.Errorf("%s: %s/%s holds %d bytes with sha256 %s, want %d with %s",
						when, r.Name, a.Path, size, got, a.Blob.Size, a.Blob.SHA256)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	if n := checkAll("after the uploads"); n == 0 {
		t.Fatal("no asset left to check")
	}

	// A last collection leaves exactly the used blobs.
	run(t, c, false)
	checkAll("after a final collection")
	err := e.blobs.Walk(ctx, func(sha string, _ int64, _ time.Time) error {
		used, err := e.db.Queries().BlobInUse(ctx, sha)
		if err != nil {
			return err
		}
		if !used {
			t.Errorf("blob %s is unused after a final collection with no grace", sha)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkAsset reads the asset at path and compares its bytes with want.
func checkAsset(ctx context.Context, svc *repo.Service, r *repo.Repository, path, want string) error {
	a, err := svc.Asset(ctx, r, path)
	if err != nil {
		return fmt.Errorf("Asset(%s/%s): %w", r.Name, path, err)
	}
	f, err := svc.Open(ctx, a)
	if err != nil {
		return fmt.Errorf("Open(%s/%s): %w", r.Name, path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read %s/%s: %w", r.Name, path, err)
	}
	if string(b) != want {
		return fmt.Errorf("%s/%s holds %q, want %q", r.Name, path, b, want)
	}
	return nil
}
