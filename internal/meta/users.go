package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateUser inserts u and sets its ID; a taken name gives ErrExists.
func (q queries) CreateUser(ctx context.Context, u *User) error {
	u.CreatedAt = time.Now().UTC()
	err := q.row(ctx, `INSERT INTO users (name, password_hash, admin, created_at)
		VALUES (?, ?, ?, ?) RETURNING id`,
		u.Name, u.PasswordHash, u.Admin, nanos(u.CreatedAt)).Scan(&u.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("user %s: %w", u.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Name, err)
	}
	return nil
}

// User returns the user called name, or ErrNotFound.
func (q queries) User(ctx context.Context, name string) (User, error) {
	var u User
	var created int64
	err := q.row(ctx, `SELECT id, name, password_hash, admin, created_at FROM users
		WHERE name = ?`, name).Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Admin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("read user %s: %w", name, err)
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}
