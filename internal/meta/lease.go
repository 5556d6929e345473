package meta

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease takes or renews the lease called name for holder until ttl
// from now. It reports false when another holder has an unexpired lease.
// Background jobs run only while their node holds the job's lease, so that
// nodes sharing one database never run a job twice at once.
func (q queries) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	res, err := q.exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at < ?`,
		name, holder, nanos(now.Add(ttl)), nanos(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up holder's lease called name.
func (q queries) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := q.exec(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
