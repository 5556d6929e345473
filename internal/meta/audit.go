package meta

import (
	"context"
	"fmt"
	"time"
)

// AuditEvent records who did what, where, from which address, and how it
// ended.
type AuditEvent struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Repository string    `json:"repository,omitempty"`
	Path       string    `json:"path,omitempty"`
	Remote     string    `json:"remote"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail,omitempty"`
}

// AddAuditEvent appends an event.
func (q queries) AddAuditEvent(ctx context.Context, e *AuditEvent) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	err := q.returning(ctx, `INSERT INTO audit_events (at, actor, action, repository, path, remote,
		outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		[]any{nanos(e.At), e.Actor, e.Action, e.Repository, e.Path, e.Remote, e.Outcome, e.Detail}, &e.ID)
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// AuditEvents returns up to limit events older than the event before
// (all when before is 0), newest first.
func (q queries) AuditEvents(ctx context.Context, before int64, limit int) ([]AuditEvent, error) {
	query := `SELECT id, at, actor, action, repository, path, remote, outcome, detail
		FROM audit_events`
	args := []any{}
	if before > 0 {
		query += ` WHERE id < ?`
		args = append(args, before)
	}
	rows, err := q.query(ctx, query+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	out := []AuditEvent{}
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Repository, &e.Path, &e.Remote,
			&e.Outcome, &e.Detail); err != nil {
			return nil, fmt.Errorf("scan audit event: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
