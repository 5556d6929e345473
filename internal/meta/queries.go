package meta

import (
	"context"
	"time"

	"arca/internal/blob"
)

// Queries are the statements of the store. The same methods run directly on
// the database (DB.Queries) or inside a transaction (DB.WithTx).
type Queries interface {
	CreateRepository(ctx context.Context, r *Repository) error
	Repository(ctx context.Context, name string) (Repository, error)
	ListRepositories(ctx context.Context, after string, limit int) ([]Repository, error)
	UpdateRepository(ctx context.Context, r *Repository) error
	DeleteRepository(ctx context.Context, name string) error

	PutBlob(ctx context.Context, b blob.Info) error
	BlobByDigest(ctx context.Context, alg blob.Algorithm, hex string) (blob.Info, error)
	BlobInUse(ctx context.Context, sha256 string) (bool, error)
	DeleteBlob(ctx context.Context, sha256 string) error
	LinkBlob(ctx context.Context, repositoryID int64, sha256 string) error
	UnlinkBlobIfUnused(ctx context.Context, repositoryID int64, sha256 string) error
	BlobLinked(ctx context.Context, repositoryID int64, sha256 string) (bool, error)

	Component(ctx context.Context, repositoryID int64, name, version string) (int64, error)

	Asset(ctx context.Context, repositoryID int64, path string) (Asset, error)
	PutAsset(ctx context.Context, a *Asset) error
	DeleteAsset(ctx context.Context, repositoryID int64, path string) (Asset, error)
	AssetsUnder(ctx context.Context, repositoryID int64, prefix string, fn func(Asset) error) error
	// FolderEntries calls fn, in path order, for each entry directly under
	// folder: a file with its asset, or a sub-folder by name (asset nil),
	// reading past each sub-folder's content instead of through it.
	FolderEntries(ctx context.Context, repositoryID int64, folder string, fn func(dir string, a *Asset) error) error
	TouchAsset(ctx context.Context, id int64, at time.Time) error
	SetFetched(ctx context.Context, id int64, at time.Time) error
	LeastRecentlyUsed(ctx context.Context, repositoryID int64, limit int) ([]Asset, error)
	RepositoryUsage(ctx context.Context, repositoryID int64) (items, bytes int64, err error)

	CreateUser(ctx context.Context, u *User) error
	User(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	ListUsers(ctx context.Context, after string, limit int) ([]User, error)
	UpdateUser(ctx context.Context, u *User) error
	DeleteUser(ctx context.Context, name string) error
	SetGrants(ctx context.Context, userID int64, grants []Grant) error
	Grants(ctx context.Context, userID int64) ([]Grant, error)
	// GrantsOfUsers returns the grants of each of the users, by id, in one
	// query; a user without grants has none in the map.
	GrantsOfUsers(ctx context.Context, userIDs []int64) (map[int64][]Grant, error)

	CreateToken(ctx context.Context, t *Token) error
	TokenBySecretHash(ctx context.Context, hash string) (Token, error)
	Tokens(ctx context.Context, userID int64, after TokenCursor, limit int) ([]Token, error)
	DeleteToken(ctx context.Context, userID int64, id string) error
	TouchToken(ctx context.Context, id string, at time.Time) error

	AddAuditEvent(ctx context.Context, e *AuditEvent) error
	AuditEvents(ctx context.Context, before int64, limit int) ([]AuditEvent, error)

	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Repository is a repository's row. Settings is its JSON document as the
// repository service wrote it.
type Repository struct {
	ID        int64
	Name      string
	Format    string
	Type      string
	Settings  []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Asset is a path inside a repository that points to a blob. The Origin
// fields are filled by proxy repositories.
type Asset struct {
	ID                 int64
	RepositoryID       int64
	Path               string
	ComponentID        int64 // 0 when the asset belongs to no component
	Blob               blob.Info
	ContentType        string
	Uploader           string
	CreatedAt          time.Time
	UpdatedAt          time.Time
	OriginURL          string
	OriginETag         string
	OriginLastModified string
	FetchedAt          time.Time
	LastDownloadedAt   time.Time
}

// User is an account.
type User struct {
	ID           int64
	Name         string
	PasswordHash string
	Admin        bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// nanos stores a time as Unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
