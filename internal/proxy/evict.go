package proxy

import (
	"context"
	"time"

	"arca/internal/repo"
)

// Eviction keeps each proxy repository's cache within its cacheMaxSize and
// drops what nobody downloaded for cacheMaxAge, least recently downloaded
// first. The evicted assets go at once; their blobs go with the next
// garbage collection that finds them unused.

// evictBatch is how many assets one query of an eviction considers.
const evictBatch = 500

// Evict applies the cache bounds of every proxy repository once, and
// returns how many assets it evicted.
func (s *Service) Evict(ctx context.Context) (int, error) {
	evicted := 0
	for after := ""; ; {
		repos, err := s.repos.List(ctx, after, 500)
		if err != nil {
			return evicted, err
		}
		for _, r := range repos {
			if r.Type != repo.Proxy {
				continue
			}
			n, err := s.evict(ctx, r, time.Now())
			evicted += n
			if err != nil {
				return evicted, err
			}
		}
		if len(repos) < 500 {
			return evicted, nil
		}
		after = repos[len(repos)-1].Name
	}
}

// evict applies one repository's bounds.
func (s *Service) evict(ctx context.Context, r *repo.Repository, now time.Time) (int, error) {
	settings, err := s.repos.ProxySettings(r)
	if err != nil || (settings.CacheMaxSize == 0 && settings.CacheMaxAge == 0) {
		return 0, err
	}
	_, size, err := s.repos.Usage(ctx, r)
	if err != nil {
		return 0, err
	}
	oldest := now.Add(-time.Duration(settings.CacheMaxAge))
	evicted := 0
	for {
		batch, err := s.repos.LeastRecentlyUsed(ctx, r, evictBatch)
		if err != nil {
			return evicted, err
		}
		var paths []string
		for _, a := range batch {
			tooBig := settings.CacheMaxSize > 0 && size > settings.CacheMaxSize
			tooOld := settings.CacheMaxAge > 0 && lastUse(a).Before(oldest)
			if !tooBig && !tooOld {
				break
			}
			paths = append(paths, a.Path)
			size -= a.Blob.Size
		}
		if len(paths) == 0 {
			return evicted, nil
		}
		if err := s.repos.PruneAssets(ctx, r, paths); err != nil {
			return evicted, err
		}
		evicted += len(paths)
		s.log.InfoContext(ctx, "proxy cache eviction", "repository", r.Name, "evicted", len(paths),
			"cache_bytes", size)
		if len(paths) < len(batch) {
			return evicted, nil
		}
	}
}

// lastUse is when an asset was last downloaded, or else fetched or made.
func lastUse(a repo.Asset) time.Time {
	t := a.CreatedAt
	if a.FetchedAt.After(t) {
		t = a.FetchedAt
	}
	if a.LastDownloadedAt.After(t) {
		t = a.LastDownloadedAt
	}
	return t
}

// revalidationMemory is how long a forced revalidation is remembered; a
// negativeCacheTTL longer than this throttles less than it says.
const revalidationMemory = 24 * time.Hour

// forgetExpired drops remembered 404s that have expired and forced
// revalidations older than revalidationMemory, so that the maps the cache
// keeps in memory do not grow without end.
func (s *Service) forgetExpired(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, till := range s.notFound {
		if now.After(till) {
			delete(s.notFound, k)
		}
	}
	for k, at := range s.revalidated {
		if now.Sub(at) > revalidationMemory {
			delete(s.revalidated, k)
		}
	}
}

// RunEviction evicts every interval until ctx ends, and forgets expired
// entries of the cache's in-memory maps.
func (s *Service) RunEviction(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.forgetExpired(time.Now())
		if _, err := s.Evict(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "proxy cache eviction failed", "error", err)
		}
	}
}
