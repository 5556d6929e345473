// Package auth decides who a request comes from and what it may do.
//
// Passwords are stored as bcrypt hashes. Because bcrypt is deliberately
// slow and build tools send credentials with every request, a successful
// check is remembered for a short while, keyed by a SHA-256 of the
// credentials (never the credentials themselves).
package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	// ErrInvalid: a user or token definition is malformed (HTTP 400).
	ErrInvalid = errors.New("invalid")
	// ErrLastAdmin: the change would leave no admin (HTTP 409).
	ErrLastAdmin = errors.New("the last admin cannot be removed")
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
	ID    int64
	Name  string
	Admin bool
	// Fresh is set when the credentials were just checked against the
	// store rather than remembered: the edge audits such a check as a login.
	Fresh bool
	// Token is the id of the token the caller used, "" for a password.
	Token string
	// TokenExpires is when that token expires; zero for none.
	TokenExpires time.Time

	grants map[string]map[Permission]bool // repository -> actions
	// scope, when not nil, bounds what a registry token allows, whatever
	// the user's grants or admin flag: repository -> permissions.
	scope map[string]map[Permission]bool
}

// Can reports whether the principal holds perm on a repository, ignoring
// the admin flag.
func (p *Principal) Can(repository string, perm Permission) bool {
	return p.grants[repository][perm]
}

// Target is what a permission is asked on.
type Target struct {
	Repository    string
	AnonymousRead bool
	// Via is the repository the client addressed when it differs from
	// Repository: a group whose write member takes the write. A token's
	// scope is read for Via, the user's permissions for Repository.
	Via string
}

// Service authenticates requests and manages users and tokens.
type Service struct {
	db *meta.DB

	mu       sync.Mutex
	verified map[[sha256.Size]byte]verifiedEntry // remembered password checks
	touched  map[string]time.Time                // token id -> last recorded use

	registryKey []byte // signs registry tokens; see LoadRegistryKey
}

type verifiedEntry struct {
	userID  int64
	expires time.Time
}

// verifiedTTL bounds how long a remembered password check is trusted.
const verifiedTTL = time.Minute

// maxVerified bounds the memory the remembered checks take.
const maxVerified = 4096

// NewService returns an authentication service over db.
func NewService(db *meta.DB) *Service {
	return &Service{db: db, verified: map[[sha256.Size]byte]verifiedEntry{},
		touched: map[string]time.Time{}}
}

// TokenUser is the basic-auth user name that says "the password is a token",
// as pip, twine and other clients send it.
const TokenUser = "__token__"

// Authenticate returns the caller of r: nil for an anonymous request, or an
// error wrapping ErrUnauthenticated when credentials are present but wrong.
// It accepts basic auth with a password, basic auth with a token as the
// password (user TokenUser or the token's owner), and Bearer tokens.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, nil
	}
	if scheme, secret, ok := strings.Cut(header, " "); ok && strings.EqualFold(scheme, "Bearer") {
		secret = strings.TrimSpace(secret)
		if strings.HasPrefix(secret, TokenPrefix) {
			return s.CheckToken(ctx, secret, "")
		}
		return s.checkRegistryToken(ctx, secret)
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		return nil, fmt.Errorf("%w: unsupported authorization scheme", ErrUnauthenticated)
	}
	if user == TokenUser {
		return s.CheckToken(ctx, password, "")
	}
	if strings.HasPrefix(password, TokenPrefix) {
		if p, err := s.CheckToken(ctx, password, user); err == nil {
			return p, nil
		}
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
		u, err := s.db.Queries().UserByID(ctx, e.userID)
		if err == nil && u.Name == user {
			return s.principal(ctx, u, false)
		}
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
		return nil, fmt.Errorf("%w: wrong user name or password for %s", ErrUnauthenticated, user)
	}
	s.mu.Lock()
	if len(s.verified) >= maxVerified {
		clear(s.verified)
	}
	s.verified[key] = verifiedEntry{userID: u.ID, expires: now.Add(verifiedTTL)}
	s.mu.Unlock()
	return s.principal(ctx, u, true)
}

// principal loads a user's permissions.
func (s *Service) principal(ctx context.Context, u meta.User, fresh bool) (*Principal, error) {
	grants, err := s.db.Queries().Grants(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	p := &Principal{ID: u.ID, Name: u.Name, Admin: u.Admin, Fresh: fresh,
		grants: map[string]map[Permission]bool{}}
	for _, g := range grants {
		set := map[Permission]bool{}
		for _, a := range g.Actions {
			set[Permission(a)] = true
		}
		p.grants[g.Repository] = set
	}
	return p, nil
}

// forgetVerified drops every remembered password check, after a change of
// users, so that an old password stops working at once.
func (s *Service) forgetVerified() {
	s.mu.Lock()
	clear(s.verified)
	s.mu.Unlock()
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
	case p.scope != nil && !p.scope[cmp.Or(t.Via, t.Repository)][perm]:
		if !p.Admin && !p.Can(t.Repository, perm) {
			// No token could grant it: the user lacks the permission.
			return fmt.Errorf("%w: %s may not %s on %s", ErrDenied, p.Name, perm, t.Repository)
		}
		// The user holds it but this token was not asked for it: a
		// registry client answers 401 by fetching a token with that scope.
		return fmt.Errorf("%w: the token does not grant %s on %s", ErrUnauthenticated, perm, t.Repository)
	case p.Admin, p.Can(t.Repository, perm):
		return nil
	}
	return fmt.Errorf("%w: %s may not %s on %s", ErrDenied, p.Name, perm, t.Repository)
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
