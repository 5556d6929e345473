// Package blobtest holds the conformance suite that every blob.Driver must
// pass, whatever it stores its bytes in. A driver's own tests call
// RunDriverSuite with a constructor for fresh, empty storage and add tests
// for what only that driver can observe (file layout, object names, ...).
package blobtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/blob"
)

// RunDriverSuite runs the conformance subtests against drivers made by
// newDriver. Every call of newDriver must return a driver over fresh, empty
// storage that is cleaned up when t ends (t.TempDir, t.Cleanup).
//
// Upload ids used by the suite are 32 lower-case hex digits, like the ones
// blob.Store makes; keys are lower-case hex SHA-256 digests of the bytes.
func RunDriverSuite(t *testing.T, newDriver func(t *testing.T) blob.Driver) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, d blob.Driver)
	}{
		{"NameAndPing", testNameAndPing},
		{"CommitThenRead", testCommitThenRead},
		{"CommitEmptyBlob", testCommitEmptyBlob},
		{"CommitLargeBlob", testCommitLargeBlob},
		{"CommitSameKeyTwice", testCommitSameKeyTwice},
		{"CommitSameKeyConcurrently", testCommitSameKeyConcurrently},
		{"RecommitRefreshesModified", testRecommitRefreshesModified},
		{"AbortLeavesNothing", testAbortLeavesNothing},
		{"AbortAfterCommit", testAbortAfterCommit},
		{"MissingAndMalformedKeys", testMissingAndMalformedKeys},
		{"Delete", testDelete},
		{"WalkStopsOnError", testWalkStopsOnError},
		{"UploadAppendAndRead", testUploadAppendAndRead},
		{"UploadState", testUploadState},
		{"UploadAppendFailure", testUploadAppendFailure},
		{"CommitUpload", testCommitUpload},
		{"CommitUploadExistingBlob", testCommitUploadExistingBlob},
		{"DeleteUpload", testDeleteUpload},
		{"MissingUpload", testMissingUpload},
		{"WalkUploads", testWalkUploads},
		{"RemoveTemp", testRemoveTemp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			if d == nil {
				t.Fatal("newDriver returned nil")
			}
			tc.fn(t, d)
		})
	}
}

// Upload ids in the format blob.Store uses.
const (
	uploadA = "0123456789abcdef0123456789abcdef"
	uploadB = "fedcba9876543210fedcba9876543210"
	uploadC = "00000000000000000000000000000001"
)

func key(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// put stores b through Create, Write and Commit and returns its key.
func put(t *testing.T, d blob.Driver, b []byte) string {
	t.Helper()
	ctx := t.Context()
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if n, err := tmp.Write(b); err != nil || n != len(b) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(b))
	}
	k := key(b)
	if err := tmp.Commit(ctx, k); err != nil {
		t.Fatalf("Commit(%s): %v", k, err)
	}
	return k
}

// walk returns every committed blob with its size.
func walk(t *testing.T, d blob.Driver) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for k, e := range walkEntries(t, d) {
		got[k] = e.size
	}
	return got
}

// walked is what Walk reports of one blob.
type walked struct {
	size     int64
	modified time.Time
}

// walkEntries returns every committed blob with its size and modification
// time.
func walkEntries(t *testing.T, d blob.Driver) map[string]walked {
	t.Helper()
	got := map[string]walked{}
	err := d.Walk(t.Context(), func(k string, size int64, modified time.Time) error {
		if _, dup := got[k]; dup {
			t.Errorf("Walk reported %s twice", k)
		}
		got[k] = walked{size, modified}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

// modified returns the modification time Stat reports for k and checks that
// Walk reports the same one.
func modified(t *testing.T, d blob.Driver, k string) time.Time {
	t.Helper()
	_, m, err := d.Stat(t.Context(), k)
	if err != nil {
		t.Fatalf("Stat(%s): %v", k, err)
	}
	if e, ok := walkEntries(t, d)[k]; !ok {
		t.Errorf("Walk does not report %s", k)
	} else if !e.modified.Equal(m) {
		t.Errorf("Walk reports %s modified %v, Stat %v", k, e.modified, m)
	}
	return m
}

// walkUploads returns every session with its modification time.
func walkUploads(t *testing.T, d blob.Driver) map[string]time.Time {
	t.Helper()
	got := map[string]time.Time{}
	err := d.WalkUploads(t.Context(), func(id string, modified time.Time) error {
		if _, dup := got[id]; dup {
			t.Errorf("WalkUploads reported %s twice", id)
		}
		got[id] = modified
		return nil
	})
	if err != nil {
		t.Fatalf("WalkUploads: %v", err)
	}
	return got
}

// wantBlob checks that key is committed with exactly the bytes want, through
// Stat, Open and Walk.
func wantBlob(t *testing.T, d blob.Driver, k string, want []byte) {
	t.Helper()
	ctx := t.Context()
	size, mod, err := d.Stat(ctx, k)
	if err != nil {
		t.Fatalf("Stat(%s): %v", k, err)
	}
	if size != int64(len(want)) {
		t.Errorf("Stat(%s) = %d, want %d", k, size, len(want))
	}
	// Every blob of the suite was committed moments ago.
	if mod.IsZero() || time.Since(mod) > time.Hour || time.Until(mod) > time.Minute {
		t.Errorf("Stat(%s) modified = %v, want about now", k, mod)
	}
	rc, err := d.Open(ctx, k)
	if err != nil {
		t.Fatalf("Open(%s): %v", k, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", k, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("blob %s holds %d bytes %q..., want %d bytes %q...", k, len(got), head(got), len(want), head(want))
	}
	if e, ok := walkEntries(t, d)[k]; !ok {
		t.Errorf("Walk does not report %s", k)
	} else {
		if e.size != int64(len(want)) {
			t.Errorf("Walk reports %s with size %d, want %d", k, e.size, len(want))
		}
		if !e.modified.Equal(mod) {
			t.Errorf("Walk reports %s modified %v, Stat %v", k, e.modified, mod)
		}
	}
}

// wantNoBlob checks that key is not committed.
func wantNoBlob(t *testing.T, d blob.Driver, k string) {
	t.Helper()
	ctx := t.Context()
	if size, _, err := d.Stat(ctx, k); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(%q) = %d, %v; want ErrNotFound", k, size, err)
	}
	rc, err := d.Open(ctx, k)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open(%q) error = %v, want ErrNotFound", k, err)
	}
	if _, ok := walk(t, d)[k]; ok {
		t.Errorf("Walk reports %q", k)
	}
}

// wantUpload checks a session's size and bytes.
func wantUpload(t *testing.T, d blob.Driver, id string, want []byte) {
	t.Helper()
	ctx := t.Context()
	size, modified, err := d.StatUpload(ctx, id)
	if err != nil {
		t.Fatalf("StatUpload(%s): %v", id, err)
	}
	if size != int64(len(want)) {
		t.Errorf("StatUpload(%s) size = %d, want %d", id, size, len(want))
	}
	if modified.IsZero() {
		t.Errorf("StatUpload(%s) modified is zero", id)
	}
	rc, err := d.OpenUpload(ctx, id)
	if err != nil {
		t.Fatalf("OpenUpload(%s): %v", id, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read upload %s: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("upload %s holds %q..., want %q...", id, head(got), head(want))
	}
}

// wantNoUpload checks that a session does not exist.
func wantNoUpload(t *testing.T, d blob.Driver, id string) {
	t.Helper()
	ctx := t.Context()
	if size, _, err := d.StatUpload(ctx, id); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("StatUpload(%s) = %d, %v; want ErrNotFound", id, size, err)
	}
	rc, err := d.OpenUpload(ctx, id)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("OpenUpload(%s) error = %v, want ErrNotFound", id, err)
	}
	if _, ok := walkUploads(t, d)[id]; ok {
		t.Errorf("WalkUploads reports %s", id)
	}
}

func createUpload(t *testing.T, d blob.Driver, id string, parts ...string) {
	t.Helper()
	ctx := t.Context()
	if err := d.CreateUpload(ctx, id); err != nil {
		t.Fatalf("CreateUpload(%s): %v", id, err)
	}
	var total int64
	for _, p := range parts {
		total += int64(len(p))
		size, err := d.AppendUpload(ctx, id, strings.NewReader(p))
		if err != nil {
			t.Fatalf("AppendUpload(%s, %q): %v", id, p, err)
		}
		if size != total {
			t.Fatalf("AppendUpload(%s, %q) = %d, want %d", id, p, size, total)
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

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

func testUploadAppendAndRead(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	if err := d.CreateUpload(ctx, uploadA); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	wantUpload(t, d, uploadA, nil)

	size, err := d.AppendUpload(ctx, uploadA, strings.NewReader("hello "))
	if err != nil || size != 6 {
		t.Fatalf("first AppendUpload = %d, %v; want 6, nil", size, err)
	}
	size, err = d.AppendUpload(ctx, uploadA, strings.NewReader("world\n"))
	if err != nil || size != 12 {
		t.Fatalf("second AppendUpload = %d, %v; want 12, nil", size, err)
	}
	// An empty append changes nothing.
	size, err = d.AppendUpload(ctx, uploadA, strings.NewReader(""))
	if err != nil || size != 12 {
		t.Fatalf("empty AppendUpload = %d, %v; want 12, nil", size, err)
	}
	wantUpload(t, d, uploadA, []byte("hello world\n"))

	_, modified, err := d.StatUpload(ctx, uploadA)
	if err != nil {
		t.Fatalf("StatUpload: %v", err)
	}
	if modified.Before(before) || modified.After(time.Now().Add(time.Minute)) {
		t.Errorf("StatUpload modified = %v, want about now", modified)
	}

	// A big append in one go.
	big := pattern(3<<20 + 7)
	size, err = d.AppendUpload(ctx, uploadA, bytes.NewReader(big))
	if err != nil || size != 12+int64(len(big)) {
		t.Fatalf("big AppendUpload = %d, %v; want %d, nil", size, err, 12+len(big))
	}
	wantUpload(t, d, uploadA, append([]byte("hello world\n"), big...))

	// Sessions are independent, and no blob appears before CommitUpload.
	createUpload(t, d, uploadB, "other")
	wantUpload(t, d, uploadB, []byte("other"))
	if got := walk(t, d); len(got) != 0 {
		t.Errorf("Walk = %v, want no blobs before CommitUpload", got)
	}
}

func testUploadState(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	createUpload(t, d, uploadA, "data")
	if st, err := d.UploadState(ctx, uploadA); err != nil || len(st) != 0 {
		t.Fatalf("UploadState of a new session = %q, %v; want nil, nil", st, err)
	}
	first := []byte{0, 1, 2, 3, 0xff, 'x'}
	if err := d.SaveUploadState(ctx, uploadA, first); err != nil {
		t.Fatalf("SaveUploadState: %v", err)
	}
	if st, err := d.UploadState(ctx, uploadA); err != nil || !bytes.Equal(st, first) {
		t.Fatalf("UploadState = %q, %v; want %q", st, err, first)
	}
	second := bytes.Repeat([]byte("state"), 100)
	if err := d.SaveUploadState(ctx, uploadA, second); err != nil {
		t.Fatalf("SaveUploadState (replace): %v", err)
	}
	if st, err := d.UploadState(ctx, uploadA); err != nil || !bytes.Equal(st, second) {
		t.Fatalf("UploadState after replace = %q..., %v; want %q...", head(st), err, head(second))
	}
	// A shorter state replaces a longer one entirely.
	if err := d.SaveUploadState(ctx, uploadA, first); err != nil {
		t.Fatalf("SaveUploadState (shorter): %v", err)
	}
	if st, err := d.UploadState(ctx, uploadA); err != nil || !bytes.Equal(st, first) {
		t.Fatalf("UploadState after shorter save = %q, %v; want %q", st, err, first)
	}

	// States belong to their session.
	createUpload(t, d, uploadB)
	if st, err := d.UploadState(ctx, uploadB); err != nil || len(st) != 0 {
		t.Errorf("UploadState of another session = %q, %v; want nil, nil", st, err)
	}

	// The state does not leak into the session's bytes.
	wantUpload(t, d, uploadA, []byte("data"))

	if err := d.SaveUploadState(ctx, uploadA, nil); err != nil {
		t.Fatalf("SaveUploadState(nil): %v", err)
	}
	if st, err := d.UploadState(ctx, uploadA); err != nil || st != nil {
		t.Fatalf("UploadState after removal = %q, %v; want nil, nil", st, err)
	}
	if err := d.SaveUploadState(ctx, uploadA, nil); err != nil {
		t.Errorf("SaveUploadState(nil) without a state = %v, want nil", err)
	}
	wantUpload(t, d, uploadA, []byte("data"))
}

// failingReader yields its bytes and then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func testUploadAppendFailure(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	createUpload(t, d, uploadA, "start:")
	boom := errors.New("client went away")
	partial := []byte("partial chunk")
	_, err := d.AppendUpload(ctx, uploadA, &failingReader{data: partial, err: boom})
	if err == nil {
		t.Fatal("AppendUpload with a failing reader succeeded")
	}
	// The driver may keep any prefix of the chunk; StatUpload and
	// OpenUpload must agree on it.
	size, _, err := d.StatUpload(ctx, uploadA)
	if err != nil {
		t.Fatalf("StatUpload: %v", err)
	}
	full := append([]byte("start:"), partial...)
	if size < 6 || size > int64(len(full)) {
		t.Fatalf("size after failed append = %d, want between 6 and %d", size, len(full))
	}
	wantUpload(t, d, uploadA, full[:size])

	// The session goes on from there.
	size2, err := d.AppendUpload(ctx, uploadA, strings.NewReader("!"))
	if err != nil || size2 != size+1 {
		t.Fatalf("AppendUpload after failure = %d, %v; want %d, nil", size2, err, size+1)
	}
	wantUpload(t, d, uploadA, append(full[:size:size], '!'))
}

func testCommitUpload(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("hello world\n")
	createUpload(t, d, uploadA, "hello ", "world\n")
	if err := d.SaveUploadState(ctx, uploadA, []byte("some state")); err != nil {
		t.Fatalf("SaveUploadState: %v", err)
	}
	createUpload(t, d, uploadB, "untouched")
	k := key(data)
	if err := d.CommitUpload(ctx, uploadA, k); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantBlob(t, d, k, data)
	wantNoUpload(t, d, uploadA)
	if st, err := d.UploadState(ctx, uploadA); (err != nil && !errors.Is(err, blob.ErrNotFound)) || len(st) != 0 {
		t.Errorf("UploadState after CommitUpload = %q, %v; want nothing", st, err)
	}
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk = %v, want exactly %s", got, k)
	}
	// Other sessions are unaffected.
	wantUpload(t, d, uploadB, []byte("untouched"))
	if got := walkUploads(t, d); len(got) != 1 {
		t.Errorf("WalkUploads = %v, want only %s", got, uploadB)
	}

	// A session id may be reused after its commit.
	createUpload(t, d, uploadA, "again")
	wantUpload(t, d, uploadA, []byte("again"))
}

func testCommitUploadExistingBlob(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	data := []byte("stored twice")
	k := put(t, d, data)
	createUpload(t, d, uploadA, "stored ", "twice")
	if err := d.CommitUpload(ctx, uploadA, k); err != nil {
		t.Fatalf("CommitUpload over an existing blob: %v", err)
	}
	wantBlob(t, d, k, data)
	wantNoUpload(t, d, uploadA)
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk = %v, want exactly one blob", got)
	}

	// An empty session commits the empty blob.
	createUpload(t, d, uploadB)
	if err := d.CommitUpload(ctx, uploadB, key(nil)); err != nil {
		t.Fatalf("CommitUpload of an empty session: %v", err)
	}
	wantBlob(t, d, key(nil), nil)
	wantNoUpload(t, d, uploadB)
}

func testDeleteUpload(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	createUpload(t, d, uploadA, "to be deleted")
	if err := d.SaveUploadState(ctx, uploadA, []byte("state")); err != nil {
		t.Fatalf("SaveUploadState: %v", err)
	}
	createUpload(t, d, uploadB, "kept")
	if err := d.DeleteUpload(ctx, uploadA); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	wantNoUpload(t, d, uploadA)
	wantUpload(t, d, uploadB, []byte("kept"))
	if err := d.DeleteUpload(ctx, uploadA); err != nil {
		t.Errorf("DeleteUpload of a deleted session = %v, want nil", err)
	}
	if err := d.DeleteUpload(ctx, uploadC); err != nil {
		t.Errorf("DeleteUpload of a missing session = %v, want nil", err)
	}
	// Deleting sessions never creates blobs.
	if got := walk(t, d); len(got) != 0 {
		t.Errorf("Walk = %v, want nothing", got)
	}
	// The id can be used again and starts empty.
	createUpload(t, d, uploadA)
	wantUpload(t, d, uploadA, nil)
	if st, err := d.UploadState(ctx, uploadA); err != nil || len(st) != 0 {
		t.Errorf("UploadState of a recreated session = %q, %v; want nil", st, err)
	}
}

func testMissingUpload(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	wantNoUpload(t, d, uploadC)
	if _, err := d.AppendUpload(ctx, uploadC, strings.NewReader("x")); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("AppendUpload to a missing session = %v, want ErrNotFound", err)
	}
	if err := d.SaveUploadState(ctx, uploadC, []byte("x")); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("SaveUploadState of a missing session = %v, want ErrNotFound", err)
	}
	k := key([]byte("x"))
	if err := d.CommitUpload(ctx, uploadC, k); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("CommitUpload of a missing session = %v, want ErrNotFound", err)
	}
	// Also when the blob happens to exist already.
	put(t, d, []byte("x"))
	if err := d.CommitUpload(ctx, uploadC, k); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("CommitUpload of a missing session over an existing blob = %v, want ErrNotFound", err)
	}
	wantBlob(t, d, k, []byte("x"))
	// None of that created the session.
	wantNoUpload(t, d, uploadC)
	if got := walkUploads(t, d); len(got) != 0 {
		t.Errorf("WalkUploads = %v, want nothing", got)
	}
}

func testWalkUploads(t *testing.T, d blob.Driver) {
	if got := walkUploads(t, d); len(got) != 0 {
		t.Fatalf("WalkUploads on empty storage = %v", got)
	}
	before := time.Now().Add(-time.Minute)
	createUpload(t, d, uploadA, "a")
	createUpload(t, d, uploadB)
	createUpload(t, d, uploadC, "c", "c")
	put(t, d, []byte("a blob is not a session"))
	if err := d.DeleteUpload(t.Context(), uploadC); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	got := walkUploads(t, d)
	ids := make([]string, 0, len(got))
	for id, modified := range got {
		ids = append(ids, id)
		if modified.Before(before) || modified.After(time.Now().Add(time.Minute)) {
			t.Errorf("WalkUploads reports %s modified %v, want about now", id, modified)
		}
	}
	slices.Sort(ids)
	if want := []string{uploadA, uploadB}; !slices.Equal(ids, want) {
		t.Errorf("WalkUploads ids = %v, want %v", ids, want)
	}
}

func testRemoveTemp(t *testing.T, d blob.Driver) {
	ctx := t.Context()
	// On empty storage it is a no-op.
	if err := d.RemoveTemp(ctx); err != nil {
		t.Fatalf("RemoveTemp on empty storage: %v", err)
	}

	committed := []byte("committed blob")
	k := put(t, d, committed)
	createUpload(t, d, uploadA, "session ", "bytes")
	state := []byte("session state")
	if err := d.SaveUploadState(ctx, uploadA, state); err != nil {
		t.Fatalf("SaveUploadState: %v", err)
	}
	createUpload(t, d, uploadB)

	// A plain upload cut off mid-way: created and written, never committed.
	inFlight := pattern(64 << 10)
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := tmp.Write(inFlight); err != nil {
		t.Fatalf("Write: %v", err)
	}

	if err := d.RemoveTemp(ctx); err != nil {
		t.Fatalf("RemoveTemp: %v", err)
	}

	// Committed blobs and upload sessions survive.
	wantBlob(t, d, k, committed)
	if got := walk(t, d); len(got) != 1 {
		t.Errorf("Walk after RemoveTemp = %v, want only %s", got, k)
	}
	wantNoBlob(t, d, key(inFlight))
	wantUpload(t, d, uploadA, []byte("session bytes"))
	wantUpload(t, d, uploadB, nil)
	if st, err := d.UploadState(ctx, uploadA); err != nil || !bytes.Equal(st, state) {
		t.Errorf("UploadState after RemoveTemp = %q, %v; want %q", st, err, state)
	}
	if got := walkUploads(t, d); len(got) != 2 {
		t.Errorf("WalkUploads after RemoveTemp = %v, want 2 sessions", got)
	}

	// Where the temporary bytes live is the driver's business, so the
	// suite cannot see them gone; the driver's own tests must. What it can
	// check is that the removed object never turns into a damaged blob:
	// committing it either fails or stores exactly what was written.
	ik := key(inFlight)
	if err := tmp.Commit(ctx, ik); err != nil {
		wantNoBlob(t, d, ik)
	} else {
		wantBlob(t, d, ik, inFlight)
	}
	tmp.Abort() //nolint:errcheck // any result is fine; it must not disturb anything
	wantBlob(t, d, k, committed)
	wantUpload(t, d, uploadA, []byte("session bytes"))

	// Sessions keep working afterwards.
	if size, err := d.AppendUpload(ctx, uploadA, strings.NewReader("!")); err != nil || size != 14 {
		t.Errorf("AppendUpload after RemoveTemp = %d, %v; want 14, nil", size, err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("Ping after RemoveTemp: %v", err)
	}
}
