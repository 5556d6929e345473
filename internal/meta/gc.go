package meta

import (
	"context"
	"fmt"
	"time"
)

// ForgetBlobIfUnused is garbage collection's check of one blob: in one
// transaction it deletes the blob's record when nothing refers to it (see
// BlobInUse), and reports whether the blob is unused. A blob without any
// record (its file committed, the transaction recording it never run, as
// after a crash between the two) is unused too.
//
// The delete carries its own condition, so that it stays right on a
// database whose transactions do not serialize writers (PostgreSQL at READ
// COMMITTED): a reference that appears concurrently either makes the delete
// match nothing or fails it on the foreign key, and the blob is reported
// used.
func (db *DB) ForgetBlobIfUnused(ctx context.Context, sha256 string) (unused bool, err error) {
	return db.ForgetBlobIfUnusedAt(ctx, sha256, time.Time{})
}

// ForgetBlobIfUnusedAt is ForgetBlobIfUnused where the links of OCI images
// made before staleLinks do not count as uses (see BlobInUseAt): when
// nothing else uses the blob, they are deleted with its record.
func (db *DB) ForgetBlobIfUnusedAt(ctx context.Context, sha256 string, staleLinks time.Time) (unused bool, err error) {
	err = db.WithTx(ctx, func(q Queries) error {
		unused, err = q.(queries).forgetBlobIfUnused(ctx, sha256, staleLinks)
		return err
	})
	if err != nil {
		return false, err
	}
	return unused, nil
}

// BlobInUseAt is BlobInUse where the links of OCI images made before
// staleLinks do not count: such a link is what an upload left behind, and
// no manifest needs the blob. The zero time counts every link.
func (db *DB) BlobInUseAt(ctx context.Context, sha256 string, staleLinks time.Time) (bool, error) {
	return db.q.blobInUseAt(ctx, sha256, staleLinks)
}

func (q queries) forgetBlobIfUnused(ctx context.Context, sha256 string, staleLinks time.Time) (bool, error) {
	if !staleLinks.IsZero() {
		used, err := q.blobInUseAt(ctx, sha256, staleLinks)
		if err != nil || used {
			return false, err
		}
		if _, err := q.exec(ctx, `DELETE FROM oci_blob_links WHERE sha256 = ? AND created_at < ?`,
			sha256, nanos(staleLinks)); err != nil {
			return false, fmt.Errorf("forget stale links of blob %s: %w", sha256, err)
		}
	}
	res, err := q.exec(ctx, `DELETE FROM blobs WHERE sha256 = ?
		AND NOT EXISTS (SELECT 1 FROM assets WHERE sha256 = ?)
		AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE sha256 = ?)
		AND NOT EXISTS (SELECT 1 FROM oci_manifests WHERE sha256 = ?)
		AND NOT EXISTS (SELECT 1 FROM oci_references WHERE target = ?)
		AND NOT EXISTS (SELECT 1 FROM oci_blob_links WHERE sha256 = ?)`,
		sha256, sha256, sha256, sha256, sha256, sha256)
	if err != nil {
		return false, fmt.Errorf("forget blob %s: %w", sha256, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("forget blob %s: %w", sha256, err)
	}
	if n > 0 {
		return true, nil
	}
	// Nothing deleted: either the blob is used or it has no record.
	used, err := q.BlobInUse(ctx, sha256)
	if err != nil {
		return false, err
	}
	return !used, nil
}
