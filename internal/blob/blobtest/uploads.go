package blobtest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"arca/internal/blob"
)

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
