package blob_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"arca/internal/blob"
)

// tmpEntries counts the files in root's tmp/ folder.
func tmpEntries(t *testing.T, root string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatalf("read tmp/: %v", err)
	}
	return len(es)
}

// ageBlob sets the modification time of a blob file.
func ageBlob(t *testing.T, root, sha string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(root, "blobs", sha[:2], sha), at, at); err != nil {
		t.Fatal(err)
	}
}

func TestStageThenCommit(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	data := []byte("staged bytes")
	want := digests(data)

	st, err := s.Stage(ctx, bytes.NewReader(data), blob.Expect(want))
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if st.Info() != want {
		t.Errorf("Info = %+v, want %+v", st.Info(), want)
	}
	// Staged bytes are invisible.
	if got := walkAll(t, s); len(got) != 0 {
		t.Errorf("Walk after Stage = %v, want nothing", got)
	}
	if _, err := s.Stat(ctx, want.SHA256); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat after Stage = %v, want ErrNotFound", err)
	}
	if n := tmpEntries(t, root); n != 1 {
		t.Errorf("tmp/ holds %d entries while staged, want 1", n)
	}

	before := time.Now().Add(-time.Second)
	if err := st.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := readBlob(t, s, want.SHA256); !bytes.Equal(got, data) {
		t.Errorf("committed %q, want %q", got, data)
	}
	size, modified, err := s.StatModified(ctx, want.SHA256)
	if err != nil || size != want.Size {
		t.Errorf("StatModified = %d, %v; want %d, nil", size, err, want.Size)
	}
	if modified.Before(before) || modified.After(time.Now().Add(time.Second)) {
		t.Errorf("StatModified modified = %v, want about now", modified)
	}
	// Commit again and Abort after Commit change nothing.
	if err := st.Commit(ctx); err != nil {
		t.Errorf("second Commit: %v", err)
	}
	if err := st.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if got := walkAll(t, s); len(got) != 1 || got[want.SHA256] != want.Size {
		t.Errorf("Walk = %v, want {%s: %d}", got, want.SHA256, want.Size)
	}
	if n := tmpEntries(t, root); n != 0 {
		t.Errorf("tmp/ holds %d entries after Commit, want none", n)
	}
}

func TestStageThenAbort(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	data := []byte("never committed")
	st, err := s.Stage(ctx, bytes.NewReader(data), blob.NoExpectation)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if err := st.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := st.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	wantNothingStored(t, s, root)
	if err := st.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	wantNothingStored(t, s, root)
}

func TestStageFailuresLeaveNothing(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	data := []byte("checked bytes")
	st, err := s.Stage(ctx, bytes.NewReader(data), blob.Expect{Size: 1})
	if !errors.Is(err, blob.ErrDigestMismatch) || st != nil {
		t.Errorf("Stage with a wrong size = %v, %v; want nil, a mismatch", st, err)
	}
	wantNothingStored(t, s, root)
	st, err = s.Stage(ctx, &failingReader{data: data, err: errClientGone}, blob.NoExpectation)
	if !errors.Is(err, errClientGone) || st != nil {
		t.Errorf("Stage with a failing reader = %v, %v; want nil, the reader's error", st, err)
	}
	wantNothingStored(t, s, root)
}

// TestCommitRefreshesModified checks that storing bytes already stored, by
// Put or by Stage and Commit, makes the blob young again.
func TestCommitRefreshesModified(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	data := []byte("reused")
	info, err := s.Put(ctx, bytes.NewReader(data), blob.NoExpectation)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	long := time.Now().Add(-48 * time.Hour)
	for _, tc := range []struct {
		name   string
		commit func() error
	}{
		{"Put", func() error {
			_, err := s.Put(ctx, bytes.NewReader(data), blob.NoExpectation)
			return err
		}},
		{"Stage+Commit", func() error {
			st, err := s.Stage(ctx, bytes.NewReader(data), blob.NoExpectation)
			if err != nil {
				return err
			}
			defer st.Abort() //nolint:errcheck // checked through tmp/
			release := s.Hold()
			defer release()
			return st.Commit(ctx)
		}},
	} {
		ageBlob(t, root, info.SHA256, long)
		if _, m, err := s.StatModified(ctx, info.SHA256); err != nil || m.After(long.Add(time.Second)) {
			t.Fatalf("StatModified after ageing = %v, %v", m, err)
		}
		if err := tc.commit(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, m, err := s.StatModified(ctx, info.SHA256)
		if err != nil {
			t.Fatalf("StatModified: %v", err)
		}
		if time.Since(m) > time.Minute {
			t.Errorf("after %s of stored bytes, modified = %v, want about now", tc.name, m)
		}
		var walked time.Time
		if err := s.Walk(ctx, func(_ string, _ int64, modified time.Time) error {
			walked = modified
			return nil
		}); err != nil {
			t.Fatalf("Walk: %v", err)
		}
		if !walked.Equal(m) {
			t.Errorf("Walk modified = %v, StatModified %v", walked, m)
		}
		if n := tmpEntries(t, root); n != 0 {
			t.Errorf("tmp/ holds %d entries after %s", n, tc.name)
		}
	}
}

func TestSweep(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	put := func(data string) blob.Info {
		t.Helper()
		info, err := s.Put(ctx, strings.NewReader(data), blob.NoExpectation)
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		return info
	}
	old := put("an old blob")
	young := put("a young blob")
	long := time.Now().Add(-2 * time.Hour)
	ageBlob(t, root, old.SHA256, long)
	olderThan := time.Now().Add(-time.Hour)

	var calls atomic.Int32
	answer := func(unused bool, err error) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) {
			calls.Add(1)
			return unused, err
		}
	}
	sweep := func(key string, unused func(context.Context) (bool, error)) (bool, int64, error) {
		t.Helper()
		calls.Store(0)
		return s.Sweep(ctx, key, olderThan, unused)
	}

	// A young blob is kept without asking.
	if freed, _, err := sweep(young.SHA256, answer(true, nil)); freed || err != nil || calls.Load() != 0 {
		t.Errorf("Sweep of a young blob = %v, %v with %d calls; want kept, nil, no call", freed, err, calls.Load())
	}
	// An old blob still in use is kept.
	if freed, _, err := sweep(old.SHA256, answer(false, nil)); freed || err != nil || calls.Load() != 1 {
		t.Errorf("Sweep of a used blob = %v, %v with %d calls; want kept, nil, one call", freed, err, calls.Load())
	}
	// An error of the check keeps it too.
	boom := errors.New("database down")
	if freed, _, err := sweep(old.SHA256, answer(true, boom)); freed || !errors.Is(err, boom) {
		t.Errorf("Sweep with a failing check = %v, %v; want kept, %v", freed, err, boom)
	}
	if got := walkAll(t, s); len(got) != 2 {
		t.Fatalf("Walk = %v, want both blobs still there", got)
	}
	// An old unused blob is freed, and only that one.
	freed, size, err := sweep(old.SHA256, answer(true, nil))
	if !freed || size != old.Size || err != nil || calls.Load() != 1 {
		t.Errorf("Sweep of an unused blob = %v, %d, %v with %d calls; want freed, %d, nil, one call",
			freed, size, err, calls.Load(), old.Size)
	}
	if _, err := s.Stat(ctx, old.SHA256); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat of the freed blob = %v, want ErrNotFound", err)
	}
	if got := walkAll(t, s); len(got) != 1 || got[young.SHA256] != young.Size {
		t.Errorf("Walk = %v, want only the young blob", got)
	}
	// Missing and malformed keys free nothing and ask nothing.
	for _, k := range []string{old.SHA256, digests([]byte("never stored")).SHA256, "../x", strings.ToUpper(young.SHA256)} {
		if freed, _, err := sweep(k, answer(true, nil)); freed || err != nil || calls.Load() != 0 {
			t.Errorf("Sweep(%q) = %v, %v with %d calls; want nothing", k, freed, err, calls.Load())
		}
	}
	// A blob stored again since the walk saw it old is young again, and
	// kept.
	again := put("stored again")
	ageBlob(t, root, again.SHA256, long)
	put("stored again")
	if freed, _, err := sweep(again.SHA256, answer(true, nil)); freed || err != nil || calls.Load() != 0 {
		t.Errorf("Sweep of a re-stored blob = %v, %v with %d calls; want kept, no call", freed, err, calls.Load())
	}
	// A cancelled context frees nothing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ageBlob(t, root, again.SHA256, long)
	if freed, _, err := s.Sweep(cancelled, again.SHA256, olderThan, answer(true, nil)); freed || !errors.Is(err, context.Canceled) {
		t.Errorf("Sweep with a cancelled context = %v, %v; want kept, context.Canceled", freed, err)
	}
	if got := readBlob(t, s, again.SHA256); string(got) != "stored again" {
		t.Errorf("blob = %q", got)
	}
}

// TestSweepExcludesHolders checks the sweep lock: Sweep waits for every
// Hold to be released before it looks at the blob, and Hold waits for a
// Sweep in progress.
func TestSweepExcludesHolders(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	ctx := t.Context()
	info, err := s.Put(ctx, strings.NewReader("contended"), blob.NoExpectation)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	ageBlob(t, root, info.SHA256, time.Now().Add(-time.Hour))

	// A writer holds the lock: the sweep must not check anything yet.
	release := s.Hold()
	checking := make(chan struct{})
	proceed := make(chan struct{})
	done := make(chan bool, 1)
	go func() {
		freed, _, err := s.Sweep(ctx, info.SHA256, time.Now(), func(context.Context) (bool, error) {
			close(checking)
			<-proceed
			return false, nil
		})
		if err != nil {
			t.Errorf("Sweep: %v", err)
		}
		done <- freed
	}()
	select {
	case <-checking:
		t.Fatal("Sweep checked the blob while a writer held the lock")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	release() // harmless a second time
	select {
	case <-checking:
	case <-time.After(10 * time.Second):
		t.Fatal("Sweep did not proceed after the writer released the lock")
	}

	// The sweep holds the lock: a new writer must wait for it.
	held := make(chan func(), 1)
	go func() { held <- s.Hold() }()
	select {
	case r := <-held:
		r()
		t.Fatal("Hold returned while a sweep was checking a blob")
	case <-time.After(100 * time.Millisecond):
	}
	close(proceed)
	if freed := <-done; freed {
		t.Error("Sweep freed a blob its check called used")
	}
	select {
	case r := <-held:
		r()
	case <-time.After(10 * time.Second):
		t.Fatal("Hold did not return after the sweep ended")
	}
	if got := readBlob(t, s, info.SHA256); string(got) != "contended" {
		t.Errorf("blob = %q", got)
	}
}
