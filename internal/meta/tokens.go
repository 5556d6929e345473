package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token is an API token's row. Only a hash of the secret is stored.
type Token struct {
	ID         string
	UserID     int64
	Name       string
	SecretHash string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time
}

const tokenColumns = `id, user_id, name, secret_hash, created_at, expires_at, last_used_at`

func scanToken(s interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var created, expires, used int64
	err := s.Scan(&t.ID, &t.UserID, &t.Name, &t.SecretHash, &created, &expires, &used)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
	return t, err
}

// CreateToken inserts a token.
func (q queries) CreateToken(ctx context.Context, t *Token) error {
	t.CreatedAt = time.Now().UTC()
	_, err := q.exec(ctx, `INSERT INTO tokens (id, user_id, name, secret_hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, t.ID, t.UserID, t.Name, t.SecretHash, nanos(t.CreatedAt), nanos(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

// TokenBySecretHash finds a token by the hash of its secret, or gives
// ErrNotFound.
func (q queries) TokenBySecretHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(q.row(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE secret_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

// UserByID returns a user by id, or ErrNotFound.
func (q queries) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(q.row(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("read user %d: %w", id, err)
	}
	return u, nil
}

// Tokens lists a user's tokens, newest first.
// TokenCursor is where a page of tokens starts: after the token created
// at CreatedAt with ID, in the order newest first, then by id. The zero
// cursor starts at the newest.
type TokenCursor struct {
	CreatedAt time.Time
	ID        string
}

func (q queries) Tokens(ctx context.Context, userID int64, after TokenCursor, limit int) ([]Token, error) {
	var rows *sql.Rows
	var err error
	if after.ID == "" {
		rows, err = q.query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE user_id = ?
			ORDER BY created_at DESC, id LIMIT ?`, userID, limit)
	} else {
		at := nanos(after.CreatedAt)
		rows, err = q.query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE user_id = ?
			AND (created_at < ? OR (created_at = ? AND id > ?))
			ORDER BY created_at DESC, id LIMIT ?`, userID, at, at, after.ID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("scan token: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken revokes one of a user's tokens, or gives ErrNotFound.
func (q queries) DeleteToken(ctx context.Context, userID int64, id string) error {
	res, err := q.exec(ctx, `DELETE FROM tokens WHERE user_id = ? AND id = ?`, userID, id)
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return nil
}

// TouchToken records a use of a token.
func (q queries) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := q.exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, nanos(at), id); err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return nil
}
