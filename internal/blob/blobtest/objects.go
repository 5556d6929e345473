package blobtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/blob"
)

func testNameAndPing(t *testing.T, d blob.Driver) {
	if d.Name() == "" {
		t.Error("Name() is empty")
	}
	if err := d.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	// Ping must not leave anything visible behind.
	if got := walk(t, d); len(got) != 0 {
		t.Errorf("Walk after Ping = %v, want nothing", got)
	}
	if got := walkUploads(t, d); len(got) != 0 {
		t.Errorf("WalkUploads after Ping = %v, want nothing", got)
	}
}

func testCommitThenRead(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("hello, blob\n")
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	// Several writes make one blob.
	for _, part := range [][]byte{data[:5], data[5:7], data[7:]} {
		if _, err := tmp.Write(part); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	k := key(data)
	wantNoBlob(t, d, k) // nothing visible before Commit
	if err := tmp.Commit(ctx, k); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantBlob(t, d, k, data)
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk = %v, want exactly %s", got, k)
	}

	// Open returns a working seeker.
	rc, err := d.Open(ctx, k)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	if pos, err := rc.Seek(7, io.SeekStart); err != nil || pos != 7 {
		t.Fatalf("Seek(7) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read after Seek: %v", err)
	}
	if !bytes.Equal(rest, data[7:]) {
		t.Errorf("bytes after Seek(7) = %q, want %q", rest, data[7:])
	}
	if end, err := rc.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Errorf("Seek(0, End) = %d, %v; want %d", end, err, len(data))
	}

	// A second blob is independent of the first.
	other := []byte("another blob")
	k2 := put(t, d, other)
	wantBlob(t, d, k2, other)
	wantBlob(t, d, k, data)
	if got := walk(t, d); len(got) != 2 {
		t.Errorf("Walk = %v, want 2 blobs", got)
	}
}

func testCommitEmptyBlob(t *testing.T, d blob.Driver) {
	k := put(t, d, nil)
	if k != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("key of empty blob = %s", k)
	}
	wantBlob(t, d, k, nil)
}

func testCommitLargeBlob(t *testing.T, d blob.Driver) {
	// Larger than the buffers and part sizes drivers typically use.
	data := pattern(9<<20 + 123)
	ctx := t.Context()
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := io.CopyBuffer(tmp, bytes.NewReader(data), make([]byte, 32<<10)); err != nil {
		t.Fatalf("write: %v", err)
	}
	k := key(data)
	if err := tmp.Commit(ctx, k); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantBlob(t, d, k, data)
}

func testCommitSameKeyTwice(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("same bytes")
	k := key(data)

	// Two objects in flight at once, committed one after the other.
	a, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	b, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, o := range []blob.TempObject{a, b} {
		if _, err := o.Write(data); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := a.Commit(ctx, k); err != nil {
		t.Fatalf("first Commit: %v", err)
	}
	if err := b.Commit(ctx, k); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	// And once more after both are done.
	if k2 := put(t, d, data); k2 != k {
		t.Fatalf("key changed: %s vs %s", k2, k)
	}
	for _, o := range []blob.TempObject{a, b} {
		if err := o.Abort(); err != nil {
			t.Errorf("Abort after Commit: %v", err)
		}
	}
	wantBlob(t, d, k, data)
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk = %v, want exactly one blob", got)
	}
}

// testRecommitRefreshesModified checks that committing bytes already stored,
// through Commit or CommitUpload, moves the blob's modification time
// forward: garbage collection spares blobs younger than a grace period, and
// a blob that is being stored again is about to be used again.
func testRecommitRefreshesModified(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("stored, then stored again")
	k := put(t, d, data)
	other := put(t, d, []byte("a bystander"))
	otherMod := modified(t, d, other)

	recommits := []struct {
		name   string
		commit func()
	}{
		{"Commit", func() { put(t, d, data) }},
		{"CommitUpload", func() {
			createUpload(t, d, uploadA, string(data))
			if err := d.CommitUpload(ctx, uploadA, k); err != nil {
				t.Fatalf("CommitUpload over an existing blob: %v", err)
			}
		}},
	}
	for _, rc := range recommits {
		before := modified(t, d, k)
		// Drivers keep times at different resolutions (object stores in
		// whole seconds): commit again until the time may have moved, and
		// give up when even a coarse clock would have ticked.
		deadline := time.Now().Add(5 * time.Second)
		for {
			time.Sleep(20 * time.Millisecond)
			start := time.Now()
			rc.commit()
			after := modified(t, d, k)
			if after.After(before) {
				if start.Sub(after) > 2*time.Second {
					t.Errorf("%s: modified moved from %v to %v, want about %v", rc.name, before, after, start)
				}
				break
			}
			if after.Before(before) {
				t.Fatalf("%s: modified moved back from %v to %v", rc.name, before, after)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s of a stored blob left its modified time at %v", rc.name, after)
			}
		}
		wantBlob(t, d, k, data)
	}
	// Other blobs keep their times.
	if m := modified(t, d, other); !m.Equal(otherMod) {
		t.Errorf("a bystander's modified time moved from %v to %v", otherMod, m)
	}
	if got := walk(t, d); len(got) != 2 {
		t.Errorf("Walk = %v, want 2 blobs", got)
	}
}

func testCommitSameKeyConcurrently(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := pattern(256 << 10)
	k := key(data)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tmp, err := d.Create(ctx)
			if err != nil {
				errs[i] = fmt.Errorf("create: %w", err)
				return
			}
			defer tmp.Abort() //nolint:errcheck // checked elsewhere
			if _, err := tmp.Write(data); err != nil {
				errs[i] = fmt.Errorf("write: %w", err)
				return
			}
			if err := tmp.Commit(ctx, k); err != nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	wantBlob(t, d, k, data)
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk = %v, want exactly one blob", got)
	}
}

func testAbortLeavesNothing(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("never committed")
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := tmp.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := tmp.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if got := walk(t, d); len(got) != 0 {
		t.Errorf("Walk after Abort = %v, want nothing", got)
	}
	wantNoBlob(t, d, key(data))

	// An object aborted without any write leaves nothing either.
	empty, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := empty.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	wantNoBlob(t, d, key(nil))
	if got := walkUploads(t, d); len(got) != 0 {
		t.Errorf("WalkUploads after Abort = %v, want nothing", got)
	}
}

func testAbortAfterCommit(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("committed, then aborted")
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	k := key(data)
	if err := tmp.Commit(ctx, k); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := tmp.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	wantBlob(t, d, k, data)
}

func testMissingAndMalformedKeys(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("present")
	present := put(t, d, data)
	keys := []string{
		key([]byte("absent")),    // well-formed, not stored
		strings.ToUpper(present), // keys are lower case only
		present[:63],             // too short
		present + "0",            // too long
		present[:63] + "g",       // not hex
		"",                       // empty
		"../x",                   // path tricks
		"../../../../../etc/passwd",
		present[:2] + "/" + present[3:],
		"/" + present[1:],
		present[:62] + "/.",
		"..",
	}
	for _, k := range keys {
		wantNoBlob(t, d, k)
		if err := d.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", k, err)
		}
	}
	// None of that disturbed the one real blob.
	wantBlob(t, d, present, data)
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk = %v, want only %s", got, present)
	}
}

func testDelete(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	a, b := []byte("keep me"), []byte("delete me")
	ka, kb := put(t, d, a), put(t, d, b)
	if err := d.Delete(ctx, kb); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoBlob(t, d, kb)
	wantBlob(t, d, ka, a)
	if err := d.Delete(ctx, kb); err != nil {
		t.Errorf("Delete of a deleted blob = %v, want nil", err)
	}
	if err := d.Delete(ctx, key([]byte("never stored"))); err != nil {
		t.Errorf("Delete of a missing blob = %v, want nil", err)
	}
	// A deleted key can be stored again.
	put(t, d, b)
	wantBlob(t, d, kb, b)
}

func testWalkStopsOnError(t *testing.T, d blob.Driver) {
	for i := range 3 {
		put(t, d, fmt.Appendf(nil, "blob %d", i))
	}
	stop := errors.New("stop")
	calls := 0
	err := d.Walk(t.Context(), func(string, int64, time.Time) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("Walk error = %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("Walk called fn %d times after it failed, want 1", calls)
	}

	createUpload(t, d, uploadA)
	createUpload(t, d, uploadB)
	calls = 0
	err = d.WalkUploads(t.Context(), func(string, time.Time) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("WalkUploads error = %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("WalkUploads called fn %d times after it failed, want 1", calls)
	}
}
