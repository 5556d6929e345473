package meta

import (
	"context"
	"fmt"
)

// BlobTotals returns how many blobs are recorded and their total size.
func (db *DB) BlobTotals(ctx context.Context) (count, bytes int64, err error) {
	err = db.sql.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs`).
		Scan(&count, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("count blobs: %w", err)
	}
	return count, bytes, nil
}
