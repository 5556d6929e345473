package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/meta"
)

// Grant is a user's set of actions on one repository.
type Grant = meta.Grant

// User is a user as the API shows it. Password is write-only: it is read
// from requests and never written out. PasswordHash is for declarative
// configuration, where plain passwords do not belong.
type User struct {
	Name         string    `json:"name"`
	Password     string    `json:"password,omitempty"`
	PasswordHash string    `json:"-"`
	Admin        bool      `json:"admin"`
	Permissions  []Grant   `json:"permissions"`
	CreatedAt    time.Time `json:"createdAt"`
}

var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// reservedUserNames stand for callers that are no user: a token without
// its owner's name, and unauthenticated callers in the audit log.
var reservedUserNames = map[string]bool{TokenUser: true, "anonymous": true, "configuration": true}

// minPasswordLength is the shortest password accepted.
const minPasswordLength = 8

// validActions are the permission names a grant may hold.
var validActions = map[string]bool{
	string(Read): true, string(Write): true, string(Delete): true, string(Admin): true,
}

// ValidUserName checks a user name.
func ValidUserName(name string) error {
	if reservedUserNames[name] {
		return fmt.Errorf("%w: user name %q is reserved", ErrInvalid, name)
	}
	if !userNamePattern.MatchString(name) {
		return fmt.Errorf("%w: user name %q must be 1-64 letters, digits, '.', '_', '@' or '-'",
			ErrInvalid, name)
	}
	return nil
}

// ValidPassword checks a new plain password: bcrypt reads at most 72 bytes.
func ValidPassword(password string) error {
	if len(password) < minPasswordLength || len(password) > 72 {
		return fmt.Errorf("%w: a password needs %d to 72 bytes", ErrInvalid, minPasswordLength)
	}
	return nil
}

// ValidPasswordHash checks a stored-form password: a bcrypt hash.
func ValidPasswordHash(hash string) error {
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("%w: password hash is not a bcrypt hash", ErrInvalid)
	}
	return nil
}

// ValidGrant checks that a grant lists known actions.
func ValidGrant(g Grant) error {
	if len(g.Actions) == 0 {
		return fmt.Errorf("%w: permission on %s lists no action", ErrInvalid, g.Repository)
	}
	for _, a := range g.Actions {
		if !validActions[a] {
			return fmt.Errorf("%w: unknown action %q (read, write, delete, admin)", ErrInvalid, a)
		}
	}
	return nil
}

// check validates a definition; a password is needed when create is set.
func (u *User) check(create bool) error {
	if err := ValidUserName(u.Name); err != nil {
		return err
	}
	switch {
	case u.PasswordHash != "":
		if err := ValidPasswordHash(u.PasswordHash); err != nil {
			return err
		}
	case u.Password != "":
		if err := ValidPassword(u.Password); err != nil {
			return err
		}
	case create:
		return fmt.Errorf("%w: user %s needs a password", ErrInvalid, u.Name)
	}
	for _, g := range u.Permissions {
		if err := ValidGrant(g); err != nil {
			return err
		}
	}
	return nil
}

// hash returns the stored form of the definition's password.
func (u *User) hash() (string, error) {
	if u.PasswordHash != "" {
		return u.PasswordHash, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CreateUser adds a user with its permissions.
func (s *Service) CreateUser(ctx context.Context, u *User) error {
	if err := u.check(true); err != nil {
		return err
	}
	hash, err := u.hash()
	if err != nil {
		return err
	}
	return s.db.WithTx(ctx, func(q meta.Queries) error {
		row := meta.User{Name: u.Name, PasswordHash: hash, Admin: u.Admin}
		if err := q.CreateUser(ctx, &row); err != nil {
			return err
		}
		u.CreatedAt = row.CreatedAt
		return setGrants(ctx, q, row.ID, u.Permissions)
	})
}

// UpdateUser replaces a user's admin flag and permissions, and its password
// when one is given.
func (s *Service) UpdateUser(ctx context.Context, u *User) error {
	if err := u.check(false); err != nil {
		return err
	}
	defer s.forgetVerified()
	return s.db.WithTx(ctx, func(q meta.Queries) error {
		row, err := q.User(ctx, u.Name)
		if err != nil {
			return err
		}
		if row.Admin && !u.Admin {
			if err := lastAdminCheck(ctx, q, row.Name); err != nil {
				return err
			}
		}
		if u.Password != "" || u.PasswordHash != "" {
			if row.PasswordHash, err = u.hash(); err != nil {
				return err
			}
		}
		row.Admin = u.Admin
		if err := q.UpdateUser(ctx, &row); err != nil {
			return err
		}
		u.CreatedAt = row.CreatedAt
		return setGrants(ctx, q, row.ID, u.Permissions)
	})
}

// DeleteUser removes a user with its tokens; the last admin stays.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	defer s.forgetVerified()
	return s.db.WithTx(ctx, func(q meta.Queries) error {
		row, err := q.User(ctx, name)
		if err != nil {
			return err
		}
		if row.Admin {
			if err := lastAdminCheck(ctx, q, name); err != nil {
				return err
			}
		}
		return q.DeleteUser(ctx, name)
	})
}

// lastAdminCheck refuses a change that takes the admin flag from the only
// admin left.
func lastAdminCheck(ctx context.Context, q meta.Queries, name string) error {
	users, err := q.ListUsers(ctx, "", 1<<30)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Admin && u.Name != name {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", name, ErrLastAdmin)
}

func setGrants(ctx context.Context, q meta.Queries, userID int64, grants []Grant) error {
	err := q.SetGrants(ctx, userID, grants)
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: permission on an unknown repository: %w", ErrInvalid, err)
	}
	return err
}

// User returns a user's definition, without its password.
func (s *Service) User(ctx context.Context, name string) (User, error) {
	row, err := s.db.Queries().User(ctx, name)
	if err != nil {
		return User{}, err
	}
	return s.view(ctx, row)
}

// Users lists up to limit users named after after.
func (s *Service) Users(ctx context.Context, after string, limit int) ([]User, error) {
	rows, err := s.db.Queries().ListUsers(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(rows))
	for i, row := range rows {
		ids[i] = row.ID
	}
	grants, err := s.db.Queries().GrantsOfUsers(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(rows))
	for _, row := range rows {
		g := grants[row.ID]
		if g == nil {
			g = []meta.Grant{}
		}
		out = append(out, User{Name: row.Name, Admin: row.Admin, Permissions: g, CreatedAt: row.CreatedAt})
	}
	return out, nil
}

func (s *Service) view(ctx context.Context, row meta.User) (User, error) {
	grants, err := s.db.Queries().Grants(ctx, row.ID)
	if err != nil {
		return User{}, err
	}
	return User{Name: row.Name, Admin: row.Admin, Permissions: grants, CreatedAt: row.CreatedAt}, nil
}
