package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PyPIQueries are the statements of PyPI distribution files, on top of the
// common ones. Each uploaded file (a wheel or an sdist) is one row of
// pypi_files, keyed by its file name, next to the asset that holds its bytes.
type PyPIQueries interface {
	Queries

	// PyPIFile returns a file by name, or ErrNotFound.
	PyPIFile(ctx context.Context, repositoryID int64, filename string) (PyPIFile, error)
	// PutPyPIFile creates or replaces a file's row.
	PutPyPIFile(ctx context.Context, f *PyPIFile) error
	// PyPIFiles returns the files of a (normalized) project, oldest first.
	PyPIFiles(ctx context.Context, repositoryID int64, project string) ([]PyPIFile, error)
	// PyPIProjects returns the (normalized) names of the projects with
	// files, sorted.
	PyPIProjects(ctx context.Context, repositoryID int64) ([]string, error)
	// YankPyPIRelease sets the yanked flag and reason of every file of a
	// project's version and returns how many files it changed.
	YankPyPIRelease(ctx context.Context, repositoryID int64, project, version string, yanked bool, reason string) (int64, error)
	// DeletePyPIFile removes a file's row; a missing row is no error.
	DeletePyPIFile(ctx context.Context, repositoryID int64, filename string) error
}

// PyPI returns the PyPI statements run outside any transaction.
func (db *DB) PyPI() PyPIQueries { return db.q }

// WithPyPITx is WithTx for PyPI statements.
func (db *DB) WithPyPITx(ctx context.Context, fn func(q PyPIQueries) error) error {
	return db.WithTx(ctx, func(q Queries) error { return fn(q.(queries)) })
}

// PyPIFile is one distribution file of a PyPI repository.
type PyPIFile struct {
	RepositoryID int64
	// Filename is the name the file was uploaded under.
	Filename string
	// Project is the normalized (PEP 503) project name.
	Project string
	Version string
	// Path is the asset holding the bytes.
	Path           string
	SHA256         string
	Size           int64
	RequiresPython string
	// Metadata is the core metadata the PyPI format keeps, as JSON.
	Metadata   []byte
	Yanked     bool
	YankReason string
	Uploader   string
	CreatedAt  time.Time
}

const pypiColumns = `repository_id, filename, project, version, path, sha256, size, requires_python,
	metadata, yanked, yank_reason, uploader, created_at`

func scanPyPIFile(s interface{ Scan(...any) error }) (PyPIFile, error) {
	var f PyPIFile
	var md string
	var yanked, created int64
	err := s.Scan(&f.RepositoryID, &f.Filename, &f.Project, &f.Version, &f.Path, &f.SHA256, &f.Size,
		&f.RequiresPython, &md, &yanked, &f.YankReason, &f.Uploader, &created)
	f.Metadata, f.Yanked, f.CreatedAt = []byte(md), yanked != 0, fromNanos(created)
	return f, err
}

func (q queries) PyPIFile(ctx context.Context, repositoryID int64, filename string) (PyPIFile, error) {
	f, err := scanPyPIFile(q.row(ctx, `SELECT `+pypiColumns+` FROM pypi_files
		WHERE repository_id = ? AND filename = ?`, repositoryID, filename))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("pypi file %s: %w", filename, ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("read pypi file %s: %w", filename, err)
	}
	return f, nil
}

func (q queries) PutPyPIFile(ctx context.Context, f *PyPIFile) error {
	if f.CreatedAt.IsZero() {
		f.CreatedAt = time.Now().UTC()
	}
	yanked := int64(0)
	if f.Yanked {
		yanked = 1
	}
	md := string(f.Metadata)
	if md == "" {
		md = "{}"
	}
	_, err := q.exec(ctx, `INSERT INTO pypi_files (`+pypiColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repository_id, filename) DO UPDATE SET project = excluded.project,
			version = excluded.version, path = excluded.path, sha256 = excluded.sha256,
			size = excluded.size, requires_python = excluded.requires_python,
			metadata = excluded.metadata, yanked = excluded.yanked,
			yank_reason = excluded.yank_reason, uploader = excluded.uploader,
			created_at = excluded.created_at`,
		f.RepositoryID, f.Filename, f.Project, f.Version, f.Path, f.SHA256, f.Size, f.RequiresPython,
		md, yanked, f.YankReason, f.Uploader, nanos(f.CreatedAt))
	if err != nil {
		return fmt.Errorf("write pypi file %s: %w", f.Filename, err)
	}
	return nil
}

func (q queries) PyPIFiles(ctx context.Context, repositoryID int64, project string) ([]PyPIFile, error) {
	rows, err := q.query(ctx, `SELECT `+pypiColumns+` FROM pypi_files
		WHERE repository_id = ? AND project = ? ORDER BY created_at, filename`, repositoryID, project)
	if err != nil {
		return nil, fmt.Errorf("list pypi files of %s: %w", project, err)
	}
	defer rows.Close()
	var out []PyPIFile
	for rows.Next() {
		f, err := scanPyPIFile(rows)
		if err != nil {
			return nil, fmt.Errorf("list pypi files of %s: %w", project, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (q queries) PyPIProjects(ctx context.Context, repositoryID int64) ([]string, error) {
	rows, err := q.query(ctx, `SELECT DISTINCT project FROM pypi_files
		WHERE repository_id = ? ORDER BY project`, repositoryID)
	if err != nil {
		return nil, fmt.Errorf("list pypi projects: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("list pypi projects: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (q queries) YankPyPIRelease(ctx context.Context, repositoryID int64, project, version string, yanked bool, reason string) (int64, error) {
	y := int64(0)
	if yanked {
		y = 1
	} else {
		reason = ""
	}
	res, err := q.exec(ctx, `UPDATE pypi_files SET yanked = ?, yank_reason = ?
		WHERE repository_id = ? AND project = ? AND version = ?`, y, reason, repositoryID, project, version)
	if err != nil {
		return 0, fmt.Errorf("yank %s %s: %w", project, version, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("yank %s %s: %w", project, version, err)
	}
	return n, nil
}

func (q queries) DeletePyPIFile(ctx context.Context, repositoryID int64, filename string) error {
	if _, err := q.exec(ctx, `DELETE FROM pypi_files WHERE repository_id = ? AND filename = ?`,
		repositoryID, filename); err != nil {
		return fmt.Errorf("delete pypi file %s: %w", filename, err)
	}
	return nil
}
