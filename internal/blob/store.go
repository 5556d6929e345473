package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// ErrOffset is returned when an upload chunk does not start where the
// session's bytes end.
var ErrOffset = errors.New("upload chunk does not continue the session")

// Store is the content-addressed blob store used by every format. It is safe
// for concurrent use.
type Store struct {
	driver Driver
}

// NewStore returns a Store over d.
func NewStore(d Driver) *Store { return &Store{driver: d} }

// DriverName names the underlying driver, e.g. "filesystem".
func (s *Store) DriverName() string { return s.driver.Name() }

// Ping reports whether the driver is usable.
func (s *Store) Ping(ctx context.Context) error { return s.driver.Ping(ctx) }

// RemoveTemp removes leftovers of cut-off plain uploads; call it at start.
func (s *Store) RemoveTemp(ctx context.Context) error { return s.driver.RemoveTemp(ctx) }

// Put streams r into the store, checks it against want and commits it under
// its SHA-256. On any error nothing is committed. A blob with the same bytes
// may already exist: then Put just returns its Info.
func (s *Store) Put(ctx context.Context, r io.Reader, want Expect) (Info, error) {
	tmp, err := s.driver.Create(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("create temporary blob: %w", err)
	}
	defer tmp.Abort() //nolint:errcheck // Abort after Commit is a no-op; earlier errors win.

	h := newHasher()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		return Info{}, fmt.Errorf("write blob: %w", err)
	}
	info := h.info()
	if err := want.check(info); err != nil {
		return Info{}, err
	}
	if err := tmp.Commit(ctx, info.SHA256); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", info.SHA256, err)
	}
	return info, nil
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
	if !ValidHex(SHA256, sha256) {
		return 0, fmt.Errorf("stat blob %q: %w", sha256, ErrNotFound)
	}
	return s.driver.Stat(ctx, sha256)
}

// Delete removes a blob. Callers must make sure no metadata refers to it.
func (s *Store) Delete(ctx context.Context, sha256 string) error {
	if !ValidHex(SHA256, sha256) {
		return nil
	}
	return s.driver.Delete(ctx, sha256)
}

// Walk calls fn for every stored blob.
func (s *Store) Walk(ctx context.Context, fn func(sha256 string, size int64) error) error {
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
// cancel it.
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
