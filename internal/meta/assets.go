package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"arca/internal/blob"
)

// PutBlob records a committed blob's digests; recording it again is no error.
func (q queries) PutBlob(ctx context.Context, b blob.Info) error {
	_, err := q.exec(ctx, `INSERT INTO blobs (sha256, sha512, sha1, md5, size, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING`,
		b.SHA256, b.SHA512, b.SHA1, b.MD5, b.Size, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("record blob %s: %w", b.SHA256, err)
	}
	return nil
}

// BlobByDigest finds a blob by any of its digests, or gives ErrNotFound.
func (q queries) BlobByDigest(ctx context.Context, alg blob.Algorithm, hex string) (blob.Info, error) {
	var column string
	switch alg {
	case blob.SHA256, blob.SHA512, blob.SHA1, blob.MD5:
		column = string(alg)
	default:
		return blob.Info{}, fmt.Errorf("blob by %s: %w", alg, ErrNotFound)
	}
	var b blob.Info
	err := q.row(ctx, `SELECT sha256, sha512, sha1, md5, size FROM blobs WHERE `+column+` = ?
		ORDER BY created_at LIMIT 1`, hex).Scan(&b.SHA256, &b.SHA512, &b.SHA1, &b.MD5, &b.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("blob %s:%s: %w", alg, hex, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read blob %s:%s: %w", alg, hex, err)
	}
	return b, nil
}

// BlobInUse reports whether any repository links to the blob, any asset
// points to it, or any OCI image holds it as a manifest, a manifest's
// reference or a link.
func (q queries) BlobInUse(ctx context.Context, sha256 string) (bool, error) {
	return q.blobInUseAt(ctx, sha256, time.Time{})
}

// blobInUseAt is BlobInUse where an OCI image's link to the blob counts
// only when made at or after staleLinks: an older link that no manifest
// needs is what an upload left behind, no longer a use. The zero time
// counts every link.
func (q queries) blobInUseAt(ctx context.Context, sha256 string, staleLinks time.Time) (bool, error) {
	var used bool
	err := q.row(ctx, `SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE sha256 = ?)
		OR EXISTS (SELECT 1 FROM assets WHERE sha256 = ?)
		OR EXISTS (SELECT 1 FROM oci_manifests WHERE sha256 = ?)
		OR EXISTS (SELECT 1 FROM oci_references WHERE target = ?)
		OR EXISTS (SELECT 1 FROM oci_blob_links WHERE sha256 = ? AND created_at >= ?)`,
		sha256, sha256, sha256, sha256, sha256, nanos(staleLinks)).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("check blob %s use: %w", sha256, err)
	}
	return used, nil
}

// DeleteBlob forgets a blob's record. Callers check BlobInUse in the same
// transaction first.
func (q queries) DeleteBlob(ctx context.Context, sha256 string) error {
	if _, err := q.exec(ctx, `DELETE FROM blobs WHERE sha256 = ?`, sha256); err != nil {
		return fmt.Errorf("forget blob %s: %w", sha256, err)
	}
	return nil
}

// LinkBlob records that a repository uses a blob.
func (q queries) LinkBlob(ctx context.Context, repositoryID int64, sha256 string) error {
	_, err := q.exec(ctx, `INSERT INTO repository_blobs (repository_id, sha256, created_at)
		VALUES (?, ?, ?) ON CONFLICT (repository_id, sha256) DO NOTHING`,
		repositoryID, sha256, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("link blob %s: %w", sha256, err)
	}
	return nil
}

// UnlinkBlobIfUnused removes a repository's link to a blob when no asset of
// that repository points to it any more.
func (q queries) UnlinkBlobIfUnused(ctx context.Context, repositoryID int64, sha256 string) error {
	_, err := q.exec(ctx, `DELETE FROM repository_blobs WHERE repository_id = ? AND sha256 = ?
		AND NOT EXISTS (SELECT 1 FROM assets WHERE repository_id = ? AND sha256 = ?)`,
		repositoryID, sha256, repositoryID, sha256)
	if err != nil {
		return fmt.Errorf("unlink blob %s: %w", sha256, err)
	}
	return nil
}

// BlobLinked reports whether a repository links to a blob.
func (q queries) BlobLinked(ctx context.Context, repositoryID int64, sha256 string) (bool, error) {
	var linked bool
	err := q.row(ctx, `SELECT EXISTS (SELECT 1 FROM repository_blobs
		WHERE repository_id = ? AND sha256 = ?)`, repositoryID, sha256).Scan(&linked)
	if err != nil {
		return false, fmt.Errorf("check blob %s link: %w", sha256, err)
	}
	return linked, nil
}

// Component returns the id of a component, creating it when missing.
func (q queries) Component(ctx context.Context, repositoryID int64, name, version string) (int64, error) {
	_, err := q.exec(ctx, `INSERT INTO components (repository_id, name, version, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (repository_id, name, version) DO NOTHING`,
		repositoryID, name, version, nanos(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("create component %s %s: %w", name, version, err)
	}
	var id int64
	err = q.row(ctx, `SELECT id FROM components WHERE repository_id = ? AND name = ?
		AND version = ?`, repositoryID, name, version).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("read component %s %s: %w", name, version, err)
	}
	return id, nil
}

const assetColumns = `a.id, a.repository_id, a.path, COALESCE(a.component_id, 0),
	b.sha256, b.sha512, b.sha1, b.md5, b.size, a.content_type, a.uploader,
	a.created_at, a.updated_at, a.origin_url, a.origin_etag, a.origin_last_modified,
	a.fetched_at, a.last_downloaded_at`

const assetFrom = ` FROM assets a JOIN blobs b ON b.sha256 = a.sha256 `

func scanAsset(s interface{ Scan(...any) error }) (Asset, error) {
	var a Asset
	var created, updated, fetched, downloaded int64
	err := s.Scan(&a.ID, &a.RepositoryID, &a.Path, &a.ComponentID,
		&a.Blob.SHA256, &a.Blob.SHA512, &a.Blob.SHA1, &a.Blob.MD5, &a.Blob.Size,
		&a.ContentType, &a.Uploader, &created, &updated,
		&a.OriginURL, &a.OriginETag, &a.OriginLastModified, &fetched, &downloaded)
	a.CreatedAt, a.UpdatedAt = fromNanos(created), fromNanos(updated)
	a.FetchedAt, a.LastDownloadedAt = fromNanos(fetched), fromNanos(downloaded)
	return a, err
}

// Asset returns the asset at path in a repository, or ErrNotFound.
func (q queries) Asset(ctx context.Context, repositoryID int64, path string) (Asset, error) {
	a, err := scanAsset(q.row(ctx, `SELECT `+assetColumns+assetFrom+
		`WHERE a.repository_id = ? AND a.path = ?`, repositoryID, path))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("asset %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("read asset %s: %w", path, err)
	}
	return a, nil
}

// PutAsset inserts the asset, or replaces the one at the same path keeping
// its id and creation time. The blob must be recorded already. It sets a's
// ID and times.
func (q queries) PutAsset(ctx context.Context, a *Asset) error {
	now := time.Now().UTC()
	var component any
	if a.ComponentID != 0 {
		component = a.ComponentID
	}
	var created int64
	err := q.returning(ctx, `INSERT INTO assets (repository_id, path, component_id, sha256, size,
		content_type, uploader, created_at, updated_at, origin_url, origin_etag,
		origin_last_modified, fetched_at, last_downloaded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repository_id, path) DO UPDATE SET component_id = excluded.component_id,
		sha256 = excluded.sha256, size = excluded.size, content_type = excluded.content_type,
		uploader = excluded.uploader, updated_at = excluded.updated_at,
		origin_url = excluded.origin_url, origin_etag = excluded.origin_etag,
		origin_last_modified = excluded.origin_last_modified, fetched_at = excluded.fetched_at
		RETURNING id, created_at`,
		[]any{a.RepositoryID, a.Path, component, a.Blob.SHA256, a.Blob.Size, a.ContentType,
			a.Uploader, nanos(now), nanos(now), a.OriginURL, a.OriginETag, a.OriginLastModified,
			nanos(a.FetchedAt), nanos(a.LastDownloadedAt)}, &a.ID, &created)
	if err != nil {
		return fmt.Errorf("write asset %s: %w", a.Path, err)
	}
	a.CreatedAt, a.UpdatedAt = fromNanos(created), now
	return nil
}

// DeleteAsset removes the asset at path and returns what it was, or gives
// ErrNotFound.
func (q queries) DeleteAsset(ctx context.Context, repositoryID int64, path string) (Asset, error) {
	a, err := q.Asset(ctx, repositoryID, path)
	if err != nil {
		return a, err
	}
	if _, err := q.exec(ctx, `DELETE FROM assets WHERE id = ?`, a.ID); err != nil {
		return a, fmt.Errorf("delete asset %s: %w", path, err)
	}
	return a, nil
}

// AssetsUnder calls fn, in path order, for every asset of the repository
// whose path starts with prefix. The range comparison avoids LIKE, whose
// wildcards would need escaping.
func (q queries) AssetsUnder(ctx context.Context, repositoryID int64, prefix string, fn func(Asset) error) error {
	query := `SELECT ` + assetColumns + assetFrom + `WHERE a.repository_id = ? AND a.path >= ?`
	args := []any{repositoryID, prefix}
	if end, ok := prefixEnd(prefix); ok {
		query += ` AND a.path < ?`
		args = append(args, end)
	}
	rows, err := q.query(ctx, query+` ORDER BY a.path`, args...)
	if err != nil {
		return fmt.Errorf("list assets under %s: %w", prefix, err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return fmt.Errorf("scan asset: %w", err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// folderBatch is how many paths FolderEntries reads at a time.
const folderBatch = 256

// FolderEntries seeks through the folder rather than scanning it: after a
// sub-folder "dir/" it goes on from "dir0" ('0' follows '/'), the first
// path past everything under it in byte order, which is SQLite's order
// for TEXT (a PostgreSQL column would need COLLATE "C" for the same).
func (q queries) FolderEntries(ctx context.Context, repositoryID int64, folder string, fn func(dir string, a *Asset) error) error {
	end, bounded := prefixEnd(folder)
	from := folder
	for {
		query := `SELECT ` + assetColumns + assetFrom + `WHERE a.repository_id = ? AND a.path >= ?`
		args := []any{repositoryID, from}
		if bounded {
			query += ` AND a.path < ?`
			args = append(args, end)
		}
		batch, err := q.assets(ctx, query+` ORDER BY a.path LIMIT ?`, append(args, folderBatch)...)
		if err != nil {
			return fmt.Errorf("list folder %s: %w", folder, err)
		}
		if len(batch) == 0 {
			return nil
		}
		next, jumped := from, false
		for _, a := range batch {
			rest := strings.TrimPrefix(a.Path, folder)
			if dir, _, isDir := strings.Cut(rest, "/"); isDir {
				if err := fn(dir, nil); err != nil {
					return err
				}
				next, jumped = folder+dir+"0", true
				break
			}
			if err := fn("", &a); err != nil {
				return err
			}
			next = a.Path + "\x00"
		}
		if !jumped && len(batch) < folderBatch {
			return nil
		}
		if next <= from {
			return fmt.Errorf("list folder %s: no progress after %q", folder, from)
		}
		from = next
	}
}

// assets runs a query of asset rows.
func (q queries) assets(ctx context.Context, query string, args ...any) ([]Asset, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Asset
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, fmt.Errorf("scan asset: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// LeastRecentlyUsed returns up to limit assets of a repository, those
// downloaded longest ago first (never downloaded counts as longest ago;
// ties go to the one fetched or created first).
func (q queries) LeastRecentlyUsed(ctx context.Context, repositoryID int64, limit int) ([]Asset, error) {
	out, err := q.assets(ctx, `SELECT `+assetColumns+assetFrom+`WHERE a.repository_id = ?
		ORDER BY a.last_downloaded_at, a.fetched_at, a.id LIMIT ?`, repositoryID, limit)
	if err != nil {
		return nil, fmt.Errorf("list least recently used assets: %w", err)
	}
	return out, nil
}

// RepositoryUsage returns how many assets a repository has and the sum of
// their sizes (a blob used at two paths counts twice).
func (q queries) RepositoryUsage(ctx context.Context, repositoryID int64) (items, bytes int64, err error) {
	err = q.row(ctx, `SELECT COUNT(*), COALESCE(SUM(b.size), 0)`+assetFrom+`WHERE a.repository_id = ?`,
		repositoryID).Scan(&items, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("read repository usage: %w", err)
	}
	return items, bytes, nil
}

// prefixEnd returns the smallest string greater than every string that
// starts with prefix, or false when there is none (an empty prefix).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// SetFetched records when a proxy last confirmed the asset with its
// upstream.
func (q queries) SetFetched(ctx context.Context, id int64, at time.Time) error {
	if _, err := q.exec(ctx, `UPDATE assets SET fetched_at = ? WHERE id = ?`,
		nanos(at), id); err != nil {
		return fmt.Errorf("set fetched time of asset %d: %w", id, err)
	}
	return nil
}

// TouchAsset records a download of the asset.
func (q queries) TouchAsset(ctx context.Context, id int64, at time.Time) error {
	if _, err := q.exec(ctx, `UPDATE assets SET last_downloaded_at = ? WHERE id = ?`,
		nanos(at), id); err != nil {
		return fmt.Errorf("touch asset %d: %w", id, err)
	}
	return nil
}
