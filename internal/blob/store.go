package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// ErrOffset is returned when an upload chunk does not start where the
// session's bytes end.
var ErrOffset = errors.New("upload chunk does not continue the session")

// Store is the content-addressed blob store used by every format. It is safe
// for concurrent use.
//
// # Writers and garbage collection
//
// Committing bytes and recording them in the metadata store are two steps;
// garbage collection must never free a blob between them. The Store keeps a
// sweep lock for that: writers take it shared with Hold around the commit
// (Staged.Commit, CommitUpload) and the metadata transaction that follows,
// and Sweep takes it exclusively while it checks and frees one blob. Put
// takes the shared lock for its commit only.
//
// The lock lives in this process. Several nodes sharing one metadata
// database and one blob storage do not see each other's locks; what
// protects them from each other is the grace period: a commit, even of
// bytes already stored, sets the blob's modification time to now, and
// Sweep only frees blobs modified before the time it is given. The grace
// period must therefore be longer than any node takes from a commit to the
// end of its metadata transaction.
type Store struct {
	driver Driver
	// sweep is shared by writers between commit and metadata, exclusive
	// while a blob is swept.
	sweep sync.RWMutex
}

// NewStore returns a Store over d.
func NewStore(d Driver) *Store { return &Store{driver: d} }

// DriverName names the underlying driver, e.g. "filesystem".
func (s *Store) DriverName() string { return s.driver.Name() }

// Ping reports whether the driver is usable.
func (s *Store) Ping(ctx context.Context) error { return s.driver.Ping(ctx) }

// RemoveTemp removes leftovers of cut-off plain uploads; call it at start.
func (s *Store) RemoveTemp(ctx context.Context) error { return s.driver.RemoveTemp(ctx) }

// Staged is a plain upload whose bytes are stored and verified but not yet
// committed: nothing is visible under its SHA-256 until Commit. Abort it
// when it is not committed; Abort after Commit is a no-op, so
// `defer staged.Abort()` is the usual form.
type Staged struct {
	tmp  TempObject
	info Info

	mu        sync.Mutex
	committed bool
	aborted   bool
}

// Stage streams r into a temporary object of the driver, computing every
// digest on the way, and checks the result against want. It takes no lock,
// so the slow part of an upload never holds up garbage collection. On any
// error nothing is left behind.
func (s *Store) Stage(ctx context.Context, r io.Reader, want Expect) (*Staged, error) {
	tmp, err := s.driver.Create(ctx)
	if err != nil {
		return nil, fmt.Errorf("create temporary blob: %w", err)
	}
	h := newHasher()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Abort() //nolint:errcheck // the write error is the one to report.
		return nil, fmt.Errorf("write blob: %w", err)
	}
	info := h.info()
	if err := want.check(info); err != nil {
		tmp.Abort() //nolint:errcheck // the mismatch is the one to report.
		return nil, err
	}
	return &Staged{tmp: tmp, info: info}, nil
}

// Info describes the staged bytes.
func (st *Staged) Info() Info { return st.info }

// Commit makes the staged bytes the blob st.Info().SHA256; when that blob
// exists already, its modification time is set to now instead. It does not
// take the sweep lock: a caller that records the blob in the metadata store
// afterwards holds Store.Hold from before Commit until that transaction has
// ended, so that garbage collection cannot free the blob in between.
func (st *Staged) Commit(ctx context.Context) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.aborted:
		return fmt.Errorf("commit blob %s: already aborted", st.info.SHA256)
	case st.committed:
		return nil
	}
	if err := st.tmp.Commit(ctx, st.info.SHA256); err != nil {
		return fmt.Errorf("commit blob %s: %w", st.info.SHA256, err)
	}
	st.committed = true
	return nil
}

// Abort discards the staged bytes unless they were committed.
func (st *Staged) Abort() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.committed || st.aborted {
		return nil
	}
	st.aborted = true
	return st.tmp.Abort()
}

// Put streams r into the store, checks it against want and commits it under
// its SHA-256: Stage, then Commit under the shared sweep lock. On any error
// nothing is committed. A blob with the same bytes may already exist: then
// Put just refreshes its modification time and returns its Info.
//
// Put releases the sweep lock when it returns, so only the grace period
// protects the blob until the caller records it. A caller that records it
// should Stage, Hold and Commit itself. Do not call Put while holding Hold:
// the lock is not reentrant.
func (s *Store) Put(ctx context.Context, r io.Reader, want Expect) (Info, error) {
	st, err := s.Stage(ctx, r, want)
	if err != nil {
		return Info{}, err
	}
	defer st.Abort() //nolint:errcheck // Abort after Commit is a no-op; earlier errors win.
	release := s.Hold()
	defer release()
	if err := st.Commit(ctx); err != nil {
		return Info{}, err
	}
	return st.Info(), nil
}

// Hold takes the sweep lock shared and returns the function that releases
// it; calling that function more than once is harmless. Writers hold it
// from before committing a blob until the metadata transaction that records
// the blob has ended. Hold is not reentrant: while holding it, do not call
// Hold, Put or Sweep again in the same goroutine, since a waiting Sweep
// would deadlock with it.
func (s *Store) Hold() (release func()) {
	s.sweep.RLock()
	var once sync.Once
	return func() { once.Do(s.sweep.RUnlock) }
}

// Sweep frees the blob key if it is still unused. Under the exclusive sweep
// lock, so that no writer of this process is between a commit and its
// metadata transaction, it checks that the blob exists and was modified
// before olderThan, then calls unused. unused must check, in one metadata
// transaction, that nothing refers to the blob and forget its record, and
// report whether it did; only when it reports true is the blob deleted.
//
// freed reports whether the blob was deleted, and size its size then (0
// when not freed). A missing blob or malformed key is not an error: nothing
// is freed and unused is not called; nor is it for a blob modified at or
// after olderThan. If deleting fails
// after unused returned true, the blob stays without a record, which a later
// sweep frees. See Store for what the lock does and does not cover.
func (s *Store) Sweep(ctx context.Context, key string, olderThan time.Time,
	unused func(ctx context.Context) (bool, error)) (freed bool, size int64, err error) {
	if !ValidHex(SHA256, key) {
		return false, 0, nil
	}
	s.sweep.Lock()
	defer s.sweep.Unlock()
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	size, modified, err := s.driver.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if !modified.Before(olderThan) {
		return false, 0, nil
	}
	ok, err := unused(ctx)
	if err != nil || !ok {
		return false, 0, err
	}
	if err := s.driver.Delete(ctx, key); err != nil {
		return false, 0, fmt.Errorf("free blob %s: %w", key, err)
	}
	return true, size, nil
}

// Open returns the blob with the given SHA-256 for reading.
func (s *Store) Open(ctx context.Context, sha256 string) (io.ReadSeekCloser, error) {
	if !ValidHex(SHA256, sha256) {
		return nil, fmt.Errorf("open blob %q: %w", sha256, ErrNotFound)
	}
	return s.driver.Open(ctx, sha256)
}

// Stat returns the size of a blob, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, sha256 string) (int64, error) {
	size, _, err := s.StatModified(ctx, sha256)
	return size, err
}

// StatModified returns the size of a blob and the time it was last
// committed, or ErrNotFound.
func (s *Store) StatModified(ctx context.Context, sha256 string) (int64, time.Time, error) {
	if !ValidHex(SHA256, sha256) {
		return 0, time.Time{}, fmt.Errorf("stat blob %q: %w", sha256, ErrNotFound)
	}
	return s.driver.Stat(ctx, sha256)
}

// Delete removes a blob without any check or lock. Callers must make sure
// no metadata refers to it; garbage collection uses Sweep instead.
func (s *Store) Delete(ctx context.Context, sha256 string) error {
	if !ValidHex(SHA256, sha256) {
		return nil
	}
	return s.driver.Delete(ctx, sha256)
}

// Walk calls fn for every stored blob with its size and the time it was
// last committed.
func (s *Store) Walk(ctx context.Context, fn func(sha256 string, size int64, modified time.Time) error) error {
	return s.driver.Walk(ctx, fn)
}

// NewUpload starts a resumable upload session and returns its id.
func (s *Store) NewUpload(ctx context.Context) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new upload id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if err := s.driver.CreateUpload(ctx, id); err != nil {
		return "", fmt.Errorf("create upload %s: %w", id, err)
	}
	return id, nil
}

// UploadSize returns how many bytes a session holds.
func (s *Store) UploadSize(ctx context.Context, id string) (int64, error) {
	size, _, err := s.driver.StatUpload(ctx, id)
	return size, err
}

// Append adds r's bytes to a session. offset is where the client believes
// its chunk starts; a negative offset means "at the end". It returns the
// session's new size.
func (s *Store) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	h, err := s.uploadHasher(ctx, id)
	if err != nil {
		return 0, err
	}
	if offset >= 0 && offset != h.size {
		return h.size, fmt.Errorf("%w: chunk starts at %d, session has %d bytes", ErrOffset, offset, h.size)
	}
	size, appendErr := s.driver.AppendUpload(ctx, id, io.TeeReader(r, h))
	if appendErr == nil && size == h.size {
		if err := s.saveHasher(ctx, id, h); err != nil {
			return size, err
		}
		return size, nil
	}
	// A failed or inconsistent append leaves a state that no longer matches
	// the bytes; drop it so the next use rehashes from the stored bytes.
	if err := s.driver.SaveUploadState(ctx, id, nil); err != nil {
		slog.WarnContext(ctx, "drop upload hash state", "upload", id, "error", err)
	}
	if appendErr != nil {
		return size, fmt.Errorf("append to upload %s: %w", id, appendErr)
	}
	return size, nil
}

// CommitUpload checks a session's bytes against want and commits them as a
// blob. On a mismatch the session is kept, so the client may still fix it or
// cancel it. Like Staged.Commit it takes no lock: a caller that records the
// blob afterwards holds Hold from before CommitUpload until its metadata
// transaction has ended.
func (s *Store) CommitUpload(ctx context.Context, id string, want Expect) (Info, error) {
	h, err := s.uploadHasher(ctx, id)
	if err != nil {
		return Info{}, err
	}
	info := h.info()
	if err := want.check(info); err != nil {
		return Info{}, err
	}
	if err := s.driver.CommitUpload(ctx, id, info.SHA256); err != nil {
		return Info{}, fmt.Errorf("commit upload %s: %w", id, err)
	}
	return info, nil
}

// CancelUpload removes a session and its bytes.
func (s *Store) CancelUpload(ctx context.Context, id string) error {
	return s.driver.DeleteUpload(ctx, id)
}

// ExpireUploads removes the sessions unchanged for longer than ttl and
// returns their ids.
func (s *Store) ExpireUploads(ctx context.Context, ttl time.Duration) ([]string, error) {
	cutoff := time.Now().Add(-ttl)
	var expired []string
	err := s.driver.WalkUploads(ctx, func(id string, modified time.Time) error {
		if modified.Before(cutoff) {
			expired = append(expired, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	for _, id := range expired {
		if err := s.driver.DeleteUpload(ctx, id); err != nil {
			return nil, fmt.Errorf("expire upload %s: %w", id, err)
		}
	}
	return expired, nil
}

// uploadHasher returns the hash state of a session's bytes: the saved one
// when it matches the stored size, otherwise one rebuilt by reading them.
func (s *Store) uploadHasher(ctx context.Context, id string) (*hasher, error) {
	size, _, err := s.driver.StatUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	if state, err := s.driver.UploadState(ctx, id); err == nil && len(state) > 0 {
		if h, err := unmarshalHasher(state); err == nil && h.size == size {
			return h, nil
		}
	}
	rc, err := s.driver.OpenUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := newHasher()
	if _, err := io.Copy(h, rc); err != nil {
		return nil, fmt.Errorf("rehash upload %s: %w", id, err)
	}
	return h, nil
}

func (s *Store) saveHasher(ctx context.Context, id string, h *hasher) error {
	state, err := h.marshal()
	if err != nil {
		return err
	}
	if err := s.driver.SaveUploadState(ctx, id, state); err != nil {
		return fmt.Errorf("save upload state %s: %w", id, err)
	}
	return nil
}
