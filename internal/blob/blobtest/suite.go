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
	"io"
	"strings"
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
