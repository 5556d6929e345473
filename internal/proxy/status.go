package proxy

import (
	"context"
	"time"

	"arca/internal/repo"
)

// counters are a proxy repository's totals since the process started.
type counters struct {
	hits, misses, upstreamErrors int64
	lastError                    string
	lastErrorAt                  time.Time
}

// count updates a repository's counters.
func (s *Service) count(id int64, fn func(*counters)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats[id]
	if c == nil {
		c = &counters{}
		s.stats[id] = c
	}
	fn(c)
}

// Observer receives each result of the cache, for totals by format:
// result is "hit", "miss" or "error".
type Observer func(format, result string)

// SetObserver sets the function told of every result; call it before
// serving.
func (s *Service) SetObserver(o Observer) { s.observe = o }

// note counts a result in the repository's counters and tells the
// observer.
func (s *Service) note(r *repo.Repository, result string, fn func(*counters)) {
	s.count(r.ID, fn)
	if s.observe != nil {
		s.observe(r.Format, result)
	}
}

// Status is what the REST API shows of a proxy repository's cache. The
// counters are this process's since it started.
type Status struct {
	CacheBytes     int64      `json:"cacheBytes"`
	Items          int64      `json:"items"`
	Hits           int64      `json:"hits"`
	Misses         int64      `json:"misses"`
	UpstreamErrors int64      `json:"upstreamErrors"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
}

// Status returns the cache status of a proxy repository.
func (s *Service) Status(ctx context.Context, r *repo.Repository) (Status, error) {
	var st Status
	var err error
	if st.Items, st.CacheBytes, err = s.repos.Usage(ctx, r); err != nil {
		return st, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.stats[r.ID]; c != nil {
		st.Hits, st.Misses, st.UpstreamErrors, st.LastError = c.hits, c.misses, c.upstreamErrors, c.lastError
		if !c.lastErrorAt.IsZero() {
			at := c.lastErrorAt.UTC()
			st.LastErrorAt = &at
		}
	}
	return st, nil
}
