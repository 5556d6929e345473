package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const repositoryColumns = `id, name, format, type, settings, created_at, updated_at`

func scanRepository(s interface{ Scan(...any) error }) (Repository, error) {
	var r Repository
	var settings string
	var created, updated int64
	err := s.Scan(&r.ID, &r.Name, &r.Format, &r.Type, &settings, &created, &updated)
	r.Settings, r.CreatedAt, r.UpdatedAt = []byte(settings), fromNanos(created), fromNanos(updated)
	return r, err
}

// CreateRepository inserts r and sets its ID and times. A taken name gives
// ErrExists.
func (q queries) CreateRepository(ctx context.Context, r *Repository) error {
	now := time.Now().UTC()
	err := q.returning(ctx, `INSERT INTO repositories (name, format, type, settings, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		[]any{r.Name, r.Format, r.Type, string(r.Settings), nanos(now), nanos(now)}, &r.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("repository %s: %w", r.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("insert repository %s: %w", r.Name, err)
	}
	r.CreatedAt, r.UpdatedAt = now, now
	return nil
}

// Repository returns the repository called name, or ErrNotFound.
func (q queries) Repository(ctx context.Context, name string) (Repository, error) {
	r, err := scanRepository(q.row(ctx,
		`SELECT `+repositoryColumns+` FROM repositories WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("repository %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read repository %s: %w", name, err)
	}
	return r, nil
}

// ListRepositories returns up to limit repositories named after after, by
// name.
func (q queries) ListRepositories(ctx context.Context, after string, limit int) ([]Repository, error) {
	rows, err := q.query(ctx, `SELECT `+repositoryColumns+` FROM repositories
		WHERE name > ? ORDER BY name LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		r, err := scanRepository(rows)
		if err != nil {
			return nil, fmt.Errorf("scan repository: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRepository stores r's type and settings. The name and format of a
// repository never change.
func (q queries) UpdateRepository(ctx context.Context, r *Repository) error {
	now := time.Now().UTC()
	res, err := q.exec(ctx, `UPDATE repositories SET type = ?, settings = ?, updated_at = ?
		WHERE name = ?`, r.Type, string(r.Settings), nanos(now), r.Name)
	if err != nil {
		return fmt.Errorf("update repository %s: %w", r.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("repository %s: %w", r.Name, ErrNotFound)
	}
	r.UpdatedAt = now
	return nil
}

// DeleteRepository removes a repository with its assets, components and
// blob links. The blobs stay until garbage collection finds them unused.
func (q queries) DeleteRepository(ctx context.Context, name string) error {
	res, err := q.exec(ctx, `DELETE FROM repositories WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete repository %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("repository %s: %w", name, ErrNotFound)
	}
	return nil
}
