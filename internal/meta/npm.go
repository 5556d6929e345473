package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// NpmQueries are the statements of npm packages, on top of the common ones.
// A package's metadata (its versions' manifests, dist-tags, times) is one
// JSON document that the npm format reads and writes whole; npm_versions
// remembers every version ever published, so that none is published twice,
// even after an unpublish.
type NpmQueries interface {
	Queries

	// NpmPackage returns a package, or ErrNotFound.
	NpmPackage(ctx context.Context, repositoryID int64, name string) (NpmPackage, error)
	// NpmPackageStamp returns a package's revision and last change, which
	// identify its document's content, or ErrNotFound.
	NpmPackageStamp(ctx context.Context, repositoryID int64, name string) (revision int64, updated time.Time, err error)
	// PutNpmPackage creates or replaces a package's document.
	PutNpmPackage(ctx context.Context, p *NpmPackage) error
	// DeleteNpmPackage removes a package's document; its versions stay
	// remembered.
	DeleteNpmPackage(ctx context.Context, repositoryID int64, name string) error
	// AddNpmVersion remembers a published version; ErrExists when it was
	// published before.
	AddNpmVersion(ctx context.Context, repositoryID int64, name, version string) error
	// NpmVersionKnown reports whether a version was ever published.
	NpmVersionKnown(ctx context.Context, repositoryID int64, name, version string) (bool, error)
	// SearchNpmPackages returns up to limit packages, by name, whose name,
	// description or keywords contain each of the words (case-insensitive),
	// skipping the first offset.
	SearchNpmPackages(ctx context.Context, repositoryID int64, words []string, offset, limit int) ([]NpmPackage, error)
}

// Npm returns the npm statements run outside any transaction.
func (db *DB) Npm() NpmQueries { return db.q }

// WithNpmTx is WithTx for npm statements.
func (db *DB) WithNpmTx(ctx context.Context, fn func(q NpmQueries) error) error {
	return db.WithTx(ctx, func(q Queries) error { return fn(q.(queries)) })
}

// NpmPackage is an npm package of a repository.
type NpmPackage struct {
	RepositoryID int64
	Name         string
	// Document is the package's metadata as the npm format keeps it.
	Document []byte
	// Description and Keywords (space-separated) are copied out of the
	// document for search.
	Description string
	Keywords    string
	// Revision counts the changes of the document.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

const npmColumns = `repository_id, name, document, description, keywords, revision, created_at, updated_at`

func scanNpmPackage(s interface{ Scan(...any) error }) (NpmPackage, error) {
	var p NpmPackage
	var doc string
	var created, updated int64
	err := s.Scan(&p.RepositoryID, &p.Name, &doc, &p.Description, &p.Keywords, &p.Revision, &created, &updated)
	p.Document, p.CreatedAt, p.UpdatedAt = []byte(doc), fromNanos(created), fromNanos(updated)
	return p, err
}

func (q queries) NpmPackage(ctx context.Context, repositoryID int64, name string) (NpmPackage, error) {
	p, err := scanNpmPackage(q.row(ctx, `SELECT `+npmColumns+` FROM npm_packages
		WHERE repository_id = ? AND name = ?`, repositoryID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("npm package %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("read npm package %s: %w", name, err)
	}
	return p, nil
}

func (q queries) NpmPackageStamp(ctx context.Context, repositoryID int64, name string) (int64, time.Time, error) {
	var rev, updated int64
	err := q.row(ctx, `SELECT revision, updated_at FROM npm_packages WHERE repository_id = ? AND name = ?`,
		repositoryID, name).Scan(&rev, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, fmt.Errorf("npm package %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read npm package %s: %w", name, err)
	}
	return rev, fromNanos(updated), nil
}

func (q queries) PutNpmPackage(ctx context.Context, p *NpmPackage) error {
	now := time.Now().UTC()
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	p.UpdatedAt = now
	_, err := q.exec(ctx, `INSERT INTO npm_packages (`+npmColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repository_id, name) DO UPDATE SET document = excluded.document,
			description = excluded.description, keywords = excluded.keywords,
			revision = excluded.revision, updated_at = excluded.updated_at`,
		p.RepositoryID, p.Name, string(p.Document), p.Description, p.Keywords, p.Revision,
		nanos(p.CreatedAt), nanos(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("write npm package %s: %w", p.Name, err)
	}
	return nil
}

func (q queries) DeleteNpmPackage(ctx context.Context, repositoryID int64, name string) error {
	res, err := q.exec(ctx, `DELETE FROM npm_packages WHERE repository_id = ? AND name = ?`,
		repositoryID, name)
	if err != nil {
		return fmt.Errorf("delete npm package %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("npm package %s: %w", name, ErrNotFound)
	}
	return nil
}

func (q queries) AddNpmVersion(ctx context.Context, repositoryID int64, name, version string) error {
	_, err := q.exec(ctx, `INSERT INTO npm_versions (repository_id, name, version, created_at)
		VALUES (?, ?, ?, ?)`, repositoryID, name, version, nanos(time.Now()))
	if isUniqueViolation(err) {
		return fmt.Errorf("npm package %s version %s: %w", name, version, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("record npm version %s@%s: %w", name, version, err)
	}
	return nil
}

func (q queries) NpmVersionKnown(ctx context.Context, repositoryID int64, name, version string) (bool, error) {
	var n int
	err := q.row(ctx, `SELECT COUNT(*) FROM npm_versions WHERE repository_id = ? AND name = ?
		AND version = ?`, repositoryID, name, version).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read npm version %s@%s: %w", name, version, err)
	}
	return n > 0, nil
}

func (q queries) SearchNpmPackages(ctx context.Context, repositoryID int64, words []string, offset, limit int) ([]NpmPackage, error) {
	query := `SELECT ` + npmColumns + ` FROM npm_packages WHERE repository_id = ?`
	args := []any{repositoryID}
	for _, w := range words {
		query += ` AND LOWER(name || ' ' || description || ' ' || keywords) LIKE ? ESCAPE '\'`
		args = append(args, "%"+escapeLike(strings.ToLower(w))+"%")
	}
	query += ` ORDER BY name LIMIT ? OFFSET ?`
	args = append(args, limit, offset)
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search npm packages: %w", err)
	}
	defer rows.Close()
	var out []NpmPackage
	for rows.Next() {
		p, err := scanNpmPackage(rows)
		if err != nil {
			return nil, fmt.Errorf("scan npm package: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// escapeLike escapes the wildcards of a LIKE pattern with a backslash.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
