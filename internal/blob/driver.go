package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned when a blob or upload session does not exist.
var ErrNotFound = errors.New("blob not found")

// Driver stores committed blobs and upload sessions. Keys are lower-case hex
// SHA-256 digests; upload ids are opaque strings chosen by the Store. A driver
// never has to hash anything: the Store does that while bytes pass through.
type Driver interface {
	Objects
	Uploads

	// Name identifies the driver in status output, e.g. "filesystem".
	Name() string
	// Ping reports whether the driver can currently read and write.
	Ping(ctx context.Context) error
	// RemoveTemp removes the temporary objects of cut-off plain uploads.
	// It is called once at start, before any upload begins.
	RemoveTemp(ctx context.Context) error
}

// Objects is the committed, content-addressed part of a Driver.
type Objects interface {
	// Create starts a temporary object. Nothing is visible under any key
	// until Commit succeeds.
	Create(ctx context.Context) (TempObject, error)
	// Open returns the blob for reading. A filesystem driver returns the
	// *os.File itself so that copying it to a socket can use sendfile.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
	// Stat returns the size of a committed blob and the time it was last
	// committed, or ErrNotFound.
	Stat(ctx context.Context, key string) (size int64, modified time.Time, err error)
	// Delete removes a committed blob; deleting a missing blob is no error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every committed blob, in no particular order, with
	// the same size and modification time Stat would report. Blobs deleted
	// or committed while the walk runs may or may not be reported.
	Walk(ctx context.Context, fn func(key string, size int64, modified time.Time) error) error
}

// TempObject receives the bytes of one plain upload.
type TempObject interface {
	io.Writer
	// Commit durably stores the written bytes under key. If a blob with that
	// key exists already, the temporary bytes are dropped and the existing
	// blob's modification time is set to now: garbage collection spares
	// blobs younger than its grace period, and a blob committed again is
	// about to be used again.
	Commit(ctx context.Context, key string) error
	// Abort discards the temporary bytes. It is safe after Commit.
	Abort() error
}

// Uploads is the resumable part of a Driver: sessions whose bytes arrive in
// several requests, possibly across restarts of the server.
type Uploads interface {
	// CreateUpload starts an empty session.
	CreateUpload(ctx context.Context, id string) error
	// AppendUpload adds r's bytes at the end of the session and returns the
	// session's new size. On error the session may hold part of r; callers
	// treat the size reported by StatUpload as the truth.
	AppendUpload(ctx context.Context, id string, r io.Reader) (int64, error)
	// OpenUpload reads a session's bytes from the start.
	OpenUpload(ctx context.Context, id string) (io.ReadCloser, error)
	// StatUpload returns the session's size and the time of its last change.
	StatUpload(ctx context.Context, id string) (size int64, modified time.Time, err error)
	// SaveUploadState stores an opaque state next to the session's bytes.
	SaveUploadState(ctx context.Context, id string, state []byte) error
	// UploadState returns what SaveUploadState stored, or nil.
	UploadState(ctx context.Context, id string) ([]byte, error)
	// CommitUpload durably stores the session's bytes as the blob key and
	// removes the session. Like TempObject.Commit, it sets the modification
	// time of an existing blob with that key to now.
	CommitUpload(ctx context.Context, id, key string) error
	// DeleteUpload removes a session; a missing session is no error.
	DeleteUpload(ctx context.Context, id string) error
	// WalkUploads calls fn for every session.
	WalkUploads(ctx context.Context, fn func(id string, modified time.Time) error) error
}
