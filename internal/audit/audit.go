// Package audit keeps the record of who wrote, deleted, logged in or changed
// settings, from where, and how it ended. Events go to the metadata store,
// and the REST API lists them.
package audit

import (
	"context"
	"log/slog"

	"arca/internal/meta"
)

// Event is one audited action; see meta.AuditEvent.
type Event = meta.AuditEvent

// Outcomes of an audited action.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Log records and lists audit events.
type Log struct {
	db  *meta.DB
	log *slog.Logger
}

// New returns an audit log over db; failures to record are logged to log.
func New(db *meta.DB, log *slog.Logger) *Log { return &Log{db: db, log: log} }

// Record stores e. An event that cannot be stored is written to the process
// log instead, so that the action it describes is not failed after the fact.
func (l *Log) Record(ctx context.Context, e Event) {
	if err := l.db.Queries().AddAuditEvent(context.WithoutCancel(ctx), &e); err != nil {
		l.log.ErrorContext(ctx, "audit event not stored", "error", err, "actor", e.Actor,
			"action", e.Action, "repository", e.Repository, "path", e.Path, "outcome", e.Outcome)
	}
}

// List returns up to limit events older than the event id before (all when
// 0), newest first.
func (l *Log) List(ctx context.Context, before int64, limit int) ([]Event, error) {
	return l.db.Queries().AuditEvents(ctx, before, limit)
}

// OutcomeOf names the outcome of an HTTP status.
func OutcomeOf(status int) string {
	switch {
	case status == 401 || status == 403:
		return Denied
	case status >= 400:
		return Failure
	}
	return Success
}
