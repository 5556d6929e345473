package proxy

import (
	"context"
	"sync"
	"time"
)

// Freshness collects, over the proxy reads made with a context, how long
// what they answered stays true: the earliest time a piece of cached
// metadata they served falls due for revalidation, or a remembered 404
// expires. A caller that keeps something made from those answers (a
// group's merged document) keeps it no longer than that. Content that
// cannot change sets no limit; an answer that was stale, or a read that
// failed, forbids keeping anything.
type Freshness struct {
	mu    sync.Mutex
	until time.Time // zero: no limit
	never bool
}

type freshnessKey struct{}

// WithFreshness returns a context whose proxy reads report to f.
func WithFreshness(ctx context.Context) (context.Context, *Freshness) {
	f := &Freshness{}
	return context.WithValue(ctx, freshnessKey{}, f), f
}

// Until returns the time until which the answers hold, zero when they set
// no limit; ok is false when nothing made from them may be kept.
func (f *Freshness) Until() (until time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.until, !f.never
}

// holdsUntil notes, for the context's collector if it has one, an answer
// that holds until t.
func holdsUntil(ctx context.Context, t time.Time) {
	if f, ok := ctx.Value(freshnessKey{}).(*Freshness); ok {
		f.mu.Lock()
		if f.until.IsZero() || t.Before(f.until) {
			f.until = t
		}
		f.mu.Unlock()
	}
}

// holdsNever notes an answer that must not be kept: stale metadata, or a
// failed read.
func holdsNever(ctx context.Context) {
	if f, ok := ctx.Value(freshnessKey{}).(*Freshness); ok {
		f.mu.Lock()
		f.never = true
		f.mu.Unlock()
	}
}
