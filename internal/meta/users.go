package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Grant is a user's set of actions on one repository.
type Grant struct {
	Repository string   `json:"repository"`
	Actions    []string `json:"actions"`
}

const userColumns = `id, name, password_hash, admin, created_at, updated_at`

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, updated int64
	err := s.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Admin, &created, &updated)
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	return u, err
}

// CreateUser inserts u and sets its ID; a taken name gives ErrExists.
func (q queries) CreateUser(ctx context.Context, u *User) error {
	u.CreatedAt = time.Now().UTC()
	u.UpdatedAt = u.CreatedAt
	err := q.returning(ctx, `INSERT INTO users (name, password_hash, admin, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		[]any{u.Name, u.PasswordHash, u.Admin, nanos(u.CreatedAt), nanos(u.UpdatedAt)}, &u.ID)
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
	u, err := scanUser(q.row(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("read user %s: %w", name, err)
	}
	return u, nil
}

// ListUsers returns up to limit users named after after, by name.
func (q queries) ListUsers(ctx context.Context, after string, limit int) ([]User, error) {
	rows, err := q.query(ctx, `SELECT `+userColumns+` FROM users WHERE name > ?
		ORDER BY name LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser stores u's password hash and admin flag.
func (q queries) UpdateUser(ctx context.Context, u *User) error {
	u.UpdatedAt = time.Now().UTC()
	res, err := q.exec(ctx, `UPDATE users SET password_hash = ?, admin = ?, updated_at = ?
		WHERE name = ?`, u.PasswordHash, u.Admin, nanos(u.UpdatedAt), u.Name)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", u.Name, ErrNotFound)
	}
	return nil
}

// DeleteUser removes a user with its permissions and tokens.
func (q queries) DeleteUser(ctx context.Context, name string) error {
	res, err := q.exec(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	return nil
}

// SetGrants replaces a user's permissions. Every repository must exist.
func (q queries) SetGrants(ctx context.Context, userID int64, grants []Grant) error {
	if _, err := q.exec(ctx, `DELETE FROM permissions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("clear permissions: %w", err)
	}
	for _, g := range grants {
		repo, err := q.Repository(ctx, g.Repository)
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, `INSERT INTO permissions (user_id, repository_id, actions)
			VALUES (?, ?, ?) ON CONFLICT (user_id, repository_id) DO UPDATE SET actions = excluded.actions`,
			userID, repo.ID, strings.Join(g.Actions, ","))
		if err != nil {
			return fmt.Errorf("grant on %s: %w", g.Repository, err)
		}
	}
	return nil
}

// Grants returns a user's permissions, by repository name.
func (q queries) GrantsOfUsers(ctx context.Context, userIDs []int64) (map[int64][]Grant, error) {
	out := map[int64][]Grant{}
	if len(userIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(userIDs))
	for i, id := range userIDs {
		args[i] = id
	}
	rows, err := q.query(ctx, `SELECT p.user_id, r.name, p.actions FROM permissions p
		JOIN repositories r ON r.id = p.repository_id
		WHERE p.user_id IN (?`+strings.Repeat(", ?", len(userIDs)-1)+`) ORDER BY p.user_id, r.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("read permissions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var g Grant
		var actions string
		if err := rows.Scan(&id, &g.Repository, &actions); err != nil {
			return nil, fmt.Errorf("scan permission: %w", err)
		}
		if actions != "" {
			g.Actions = strings.Split(actions, ",")
		}
		out[id] = append(out[id], g)
	}
	return out, rows.Err()
}

func (q queries) Grants(ctx context.Context, userID int64) ([]Grant, error) {
	rows, err := q.query(ctx, `SELECT r.name, p.actions FROM permissions p
		JOIN repositories r ON r.id = p.repository_id WHERE p.user_id = ? ORDER BY r.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("read permissions: %w", err)
	}
	defer rows.Close()
	out := []Grant{}
	for rows.Next() {
		var g Grant
		var actions string
		if err := rows.Scan(&g.Repository, &actions); err != nil {
			return nil, fmt.Errorf("scan permission: %w", err)
		}
		if actions != "" {
			g.Actions = strings.Split(actions, ",")
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
