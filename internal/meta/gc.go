package meta

import (
	"context"
	"fmt"
)

// ForgetBlobIfUnused is garbage collection's check of one blob: in one
// transaction it deletes the blob's record when no asset and no repository
// link refers to it, and reports whether the blob is unused. A blob without
// any record (its file committed, the transaction recording it never run,
// as after a crash between the two) is unused too.
//
// The delete carries its own condition, so that it stays right on a
// database whose transactions do not serialize writers (PostgreSQL at READ
// COMMITTED): a reference that appears concurrently either makes the delete
// match nothing or fails it on the foreign key, and the blob is reported
// used.
func (db *DB) ForgetBlobIfUnused(ctx context.Context, sha256 string) (unused bool, err error) {
	err = db.WithTx(ctx, func(q Queries) error {
		unused, err = q.(queries).forgetBlobIfUnused(ctx, sha256)
		return err
	})
	if err != nil {
		return false, err
	}
	return unused, nil
}

func (q queries) forgetBlobIfUnused(ctx context.Context, sha256 string) (bool, error) {
	res, err := q.exec(ctx, `DELETE FROM blobs WHERE sha256 = ?
		AND NOT EXISTS (SELECT 1 FROM assets WHERE sha256 = ?)
		AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE sha256 = ?)`,
		sha256, sha256, sha256)
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
