// Package auth decides who a request comes from and what it may do.
//
// Passwords are stored as bcrypt hashes. Because bcrypt is deliberately
// slow and build tools send credentials with every request, a successful
// check is remembered for a short while, keyed by a SHA-256 of the
// credentials (never the credentials themselves).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/meta"
)

// Errors of authentication and authorization.
var (
	// ErrUnauthenticated: credentials are missing or wrong (HTTP 401).
	ErrUnauthenticated = errors.New("authentication required")
	// ErrDenied: a known user lacks the permission (HTTP 403).
	ErrDenied = errors.New("permission denied")
)

// Permission is what an action on a repository needs.
type Permission string

// Permissions, per repository, for every format.
const (
	Read   Permission = "read"   // download, list, search, pull
	Write  Permission = "write"  // upload, publish, deploy, push, tag
	Delete Permission = "delete" // delete, unpublish, untag
	Admin  Permission = "admin"  // change the repository's settings
)

// Principal is an authenticated caller. A nil *Principal is anonymous.
type Principal struct {
	Name  string
	Admin bool
}

// Target is what a permission is asked on.
type Target struct {
	Repository    string
	AnonymousRead bool
}

// Service authenticates requests against the user table.
type Service struct {
	db *meta.DB

	mu       sync.Mutex
	verified map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	principal Principal
	expires   time.Time
}

// verifiedTTL bounds how long a remembered password check is trusted.
const verifiedTTL = time.Minute

// maxVerified bounds the memory the remembered checks take.
const maxVerified = 4096

// NewService returns an authentication service over db.
func NewService(db *meta.DB) *Service {
	return &Service{db: db, verified: map[[sha256.Size]byte]verifiedEntry{}}
}

// Authenticate returns the caller of r: nil for an anonymous request, or
// ErrUnauthenticated when credentials are present but wrong.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	user, password, ok := r.BasicAuth()
	if !ok {
		if r.Header.Get("Authorization") != "" {
			return nil, fmt.Errorf("%w: unsupported authorization scheme", ErrUnauthenticated)
		}
		return nil, nil
	}
	return s.CheckPassword(ctx, user, password)
}

// CheckPassword verifies a user's password.
func (s *Service) CheckPassword(ctx context.Context, user, password string) (*Principal, error) {
	key := sha256.Sum256([]byte(user + "\x00" + password))
	now := time.Now()
	s.mu.Lock()
	e, ok := s.verified[key]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		p := e.principal
		return &p, nil
	}
	u, err := s.db.Queries().User(ctx, user)
	if errors.Is(err, meta.ErrNotFound) {
		// Spend the same time as for a known user, so that timing does not
		// reveal which user names exist.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password)) //nolint:errcheck // timing only
		return nil, fmt.Errorf("%w: wrong user name or password", ErrUnauthenticated)
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, fmt.Errorf("%w: wrong user name or password", ErrUnauthenticated)
	}
	p := Principal{Name: u.Name, Admin: u.Admin}
	s.mu.Lock()
	if len(s.verified) >= maxVerified {
		clear(s.verified)
	}
	s.verified[key] = verifiedEntry{principal: p, expires: now.Add(verifiedTTL)}
	s.mu.Unlock()
	return &p, nil
}

// dummyHash is a hash to compare against when the user does not exist. It
// is made on first use, not at start, since bcrypt takes a while.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("arca-timing-equalizer"), bcrypt.DefaultCost)
	return h
})

// Authorize reports whether p may act with perm on t: nil, ErrUnauthenticated
// for an anonymous caller, or ErrDenied for a known one.
func Authorize(p *Principal, t Target, perm Permission) error {
	switch {
	case perm == Read && t.AnonymousRead:
		return nil
	case p == nil:
		return ErrUnauthenticated
	case p.Admin:
		return nil
	}
	// TODO: per-repository permissions for users who are not admins do not
	// exist yet, so such users may do nothing beyond anonymous reads.
	return fmt.Errorf("%w: %s on %s", ErrDenied, perm, t.Repository)
}

// AdminPasswordFile is the file, inside the data folder, where a generated
// admin password is written.
const AdminPasswordFile = "admin.password"

// Bootstrap creates the admin user on first start. With password empty a
// random one is generated and written to <dataDir>/admin.password (mode
// 0600). It returns where the password can be found, for the start log.
func (s *Service) Bootstrap(ctx context.Context, dataDir, password string) (string, error) {
	passwordFile := filepath.Join(dataDir, AdminPasswordFile)
	if _, err := s.db.Queries().User(ctx, "admin"); err == nil {
		if _, err := os.Stat(passwordFile); err == nil {
			return passwordFile, nil
		}
		return "set at first start", nil
	} else if !errors.Is(err, meta.ErrNotFound) {
		return "", err
	}
	where := "ARCA_ADMIN_PASSWORD"
	if password == "" {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b[:])
		if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write admin password: %w", err)
		}
		where = passwordFile
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash admin password: %w", err)
	}
	u := meta.User{Name: "admin", PasswordHash: string(hash), Admin: true}
	if err := s.db.Queries().CreateUser(ctx, &u); err != nil {
		return "", err
	}
	return where, nil
}
