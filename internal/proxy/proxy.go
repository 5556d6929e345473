// Package proxy is the pull-through cache behind proxy repositories: a
// format asks it for an item by the path it is cached at, and it answers
// from the cache or fetches the item from the repository's upstream once,
// however many clients ask at the same moment.
//
// Artifacts (content that never changes) are fetched once and kept.
// Metadata is served from the cache for metadataMaxAge after it was last
// confirmed, then revalidated with the ETag or Last-Modified the upstream
// gave. An upstream 404 is remembered for negativeCacheTTL. When the
// upstream fails, cached content is served, however old; what was never
// cached gets an UpstreamError (502, or 504 for a timeout).
//
// A miss is downloaded into a spool file that every client of that item
// follows while it grows, then stored in the blob store, verified against
// the digests the format knows in advance and those the upstream announces
// in X-Checksum-* headers. Readers of the spool never get its last byte
// before the download is verified, so a short or mismatching download is
// never complete for any client, and never stored.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"arca/internal/blob"
	"arca/internal/repo"
)

// Errors the edge maps to statuses.
var (
	// ErrUpstream is wrapped by every UpstreamError: 502.
	ErrUpstream = errors.New("upstream failed")
	// ErrUpstreamTimeout is wrapped by an UpstreamError that timed out: 504.
	ErrUpstreamTimeout = errors.New("upstream timed out")
)

// Is makes an UpstreamError match ErrUpstream, and ErrUpstreamTimeout when
// it timed out.
func (e *UpstreamError) Is(target error) bool {
	return target == ErrUpstream || (target == ErrUpstreamTimeout && e.Timeout)
}

// Item is what a format asks the cache for.
type Item struct {
	// Path is where the item is cached in the repository.
	Path string
	// URL is the item's upstream URL; "" means the upstream URL joined
	// with Path, for formats whose layout is the same on both sides.
	URL string
	// Mutable marks metadata, which is revalidated after metadataMaxAge;
	// other items are fetched once.
	Mutable bool
	// Revalidate asks for a revalidation now, even within metadataMaxAge,
	// because the cached metadata lacks something a client asked for. It
	// is honoured at most once per negativeCacheTTL for a path.
	Revalidate bool
	// Expect holds the digests the item must have, when known.
	Expect blob.Expect
	// Header holds extra request headers for the upstream (Accept).
	Header http.Header
	// ContentType is stored when the upstream gives none.
	ContentType string
	// Component files the cached asset under a component.
	Component repo.Component
	// Whole asks for the stored asset even on a miss, once the download
	// is complete, instead of a stream that follows it: for callers that
	// read the bytes (to rewrite metadata, to serve a checksum).
	Whole bool
}

// Response is an item to serve: a cached Asset, or, for an artifact being
// downloaded, a Body that follows the download.
type Response struct {
	Asset *repo.Asset
	// Body, Size (-1 when unknown) and ContentType describe a download in
	// flight; Body must be closed.
	Body        io.ReadCloser
	Size        int64
	ContentType string
	// Stale is set when cached metadata is served because the upstream
	// could not be asked.
	Stale bool
}

// Service is the cache. It is safe for concurrent use.
type Service struct {
	repos    *repo.Service
	spoolDir string
	log      *slog.Logger

	mu          sync.Mutex
	upstreams   map[int64]*upstream // by repository id
	flights     map[key]*flight
	notFound    map[key]time.Time // upstream 404s, until when they are believed
	revalidated map[key]time.Time // forced revalidations, when last done
	stats       map[int64]*counters
	observe     Observer
}

// key names an item of a repository.
type key struct {
	repo int64
	path string
}

// New returns a cache that stores through repos and spools downloads in
// spoolDir, a folder of its own that it empties now.
func New(repos *repo.Service, spoolDir string, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.RemoveAll(spoolDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return nil, err
	}
	return &Service{repos: repos, spoolDir: spoolDir, log: log,
		upstreams: map[int64]*upstream{}, flights: map[key]*flight{},
		notFound: map[key]time.Time{}, revalidated: map[key]time.Time{},
		stats: map[int64]*counters{}}, nil
}

// upstreamOf returns the client of r's upstream, made anew when its
// settings changed.
func (s *Service) upstreamOf(r *repo.Repository) (*upstream, error) {
	settings, err := s.repos.ProxySettings(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.upstreams[r.ID]
	if u == nil || u.settings != settings {
		u = newUpstream(settings)
		s.upstreams[r.ID] = u
	}
	return u, nil
}

// Get answers an item from the cache or its upstream. It reports to the
// context's Freshness, if any, how long its answer holds.
func (s *Service) Get(ctx context.Context, r *repo.Repository, it Item) (Response, error) {
	resp, err := s.get(ctx, r, it)
	if err != nil && !errors.Is(err, repo.ErrNotFound) || resp.Stale {
		holdsNever(ctx)
	}
	return resp, err
}

// get is Get without the report of a failure or a stale answer.
func (s *Service) get(ctx context.Context, r *repo.Repository, it Item) (Response, error) {
	if r.Type != repo.Proxy {
		return Response{}, fmt.Errorf("%w: repository %s is not a proxy", repo.ErrInvalid, r.Name)
	}
	u, err := s.upstreamOf(r)
	if err != nil {
		return Response{}, err
	}
	k := key{r.ID, it.Path}
	cached, err := s.repos.Asset(ctx, r, it.Path)
	have := err == nil
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		return Response{}, err
	}
	now := time.Now()
	if have && (!it.Mutable || (!s.forceRevalidation(k, it, u.settings, now) &&
		now.Sub(cached.FetchedAt) < time.Duration(u.settings.MetadataMaxAge))) {
		s.note(r, "hit", func(c *counters) { c.hits++ })
		if it.Mutable {
			holdsUntil(ctx, cached.FetchedAt.Add(time.Duration(u.settings.MetadataMaxAge)))
		}
		return Response{Asset: &cached}, nil
	}
	if !have && !it.Mutable {
		// The bytes may be here already, under another path: a layer that
		// two images share, say.
		a, ok, err := s.reuse(ctx, r, u, it)
		if ok {
			s.note(r, "hit", func(c *counters) { c.hits++ })
			return Response{Asset: &a}, nil
		}
		if err != nil {
			// Only a shortcut failed: the upstream still has the item.
			s.log.WarnContext(ctx, "could not fill an item from bytes held already", "repository", r.Name,
				"path", it.Path, "error", err)
		}
	}
	if !r.Online {
		if have {
			return Response{Asset: &cached, Stale: true}, nil
		}
		return Response{}, fmt.Errorf("%s is not cached and proxy repository %s is offline: %w", it.Path, r.Name, repo.ErrNotFound)
	}
	if !have {
		if till, missing := s.believedMissing(k, now); missing {
			// Known missing: that holds until the remembered 404 expires.
			holdsUntil(ctx, till)
			return Response{}, fmt.Errorf("%s: not found upstream (remembered for up to %s): %w",
				it.Path, time.Duration(u.settings.NegativeCacheTTL), repo.ErrNotFound)
		}
	}
	// What follows is fetched now, or found missing now: it holds for
	// negativeCacheTTL at most, and metadata for metadataMaxAge.
	holdsUntil(ctx, now.Add(time.Duration(u.settings.NegativeCacheTTL)))
	if it.Mutable {
		holdsUntil(ctx, now.Add(time.Duration(u.settings.MetadataMaxAge)))
	}
	f, stored := s.join(ctx, r, u, k, it, cached, have)
	if stored != nil {
		return Response{Asset: stored}, nil
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	// A spool is set before ready closes, and only when the download has
	// begun; f.err is final only once done closes.
	if f.spool != nil && !it.Whole {
		// A download that ended meanwhile is served from the cache below.
		if body := f.spool.reader(ctx); body != nil {
			return Response{Body: body, Size: f.size, ContentType: f.contentType}, nil
		}
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	switch {
	case f.err == nil:
		return Response{Asset: &f.asset}, nil
	case errors.Is(f.err, repo.ErrNotFound):
		return Response{}, f.err
	case have && errors.Is(f.err, ErrUpstream):
		s.log.WarnContext(ctx, "upstream failed: serving stale metadata", "repository", r.Name,
			"path", it.Path, "fetched_at", cached.FetchedAt, "error", f.err)
		return Response{Asset: &cached, Stale: true}, nil
	}
	return Response{}, f.err
}

// reuse fills the item from a blob r already holds with the digest the
// item must have, if there is one, instead of downloading it again.
func (s *Service) reuse(ctx context.Context, r *repo.Repository, u *upstream, it Item) (repo.Asset, bool, error) {
	info, ok, err := s.repos.HeldBlob(ctx, r, it.Expect)
	if err != nil || !ok {
		return repo.Asset{}, false, err
	}
	if it.Expect.Size >= 0 && it.Expect.Size != info.Size {
		return repo.Asset{}, false, nil
	}
	body, err := s.repos.OpenBlob(ctx, info.SHA256)
	if err != nil {
		return repo.Asset{}, false, err
	}
	defer body.Close()
	ctype := it.ContentType
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	a, err := s.repos.PutAsset(ctx, r, body, repo.PutOptions{
		Path: it.Path, ContentType: ctype, Uploader: "proxy", Expect: it.Expect, Component: it.Component,
		Origin: &repo.Origin{URL: upstreamURL(u.settings, it), FetchedAt: time.Now()},
	})
	if err != nil {
		return repo.Asset{}, false, fmt.Errorf("%s from the blob %s it shares: %w", it.Path, info.SHA256, err)
	}
	return a, true, nil
}

// Head sends a HEAD for url to r's upstream, with the given headers (an
// Authorization header replaces the proxy's own credentials), within the
// upstream's connection bound and Retry-After, retried like a GET. It
// returns the response, its body closed, whatever its status; a request
// that got no answer counts as an upstream error of the repository.
func (s *Service) Head(ctx context.Context, r *repo.Repository, url string, header http.Header) (*http.Response, error) {
	u, err := s.upstreamOf(r)
	if err != nil {
		return nil, err
	}
	resp, err := u.do(ctx, http.MethodHead, url, header)
	if err != nil {
		s.note(r, "error", func(c *counters) {
			c.upstreamErrors++
			c.lastError, c.lastErrorAt = err.Error(), time.Now()
		})
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// forceRevalidation reports whether the item asks for a revalidation that
// is due, and if so notes it.
func (s *Service) forceRevalidation(k key, it Item, settings repo.ProxySettings, now time.Time) bool {
	if !it.Revalidate {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.revalidated[k]; ok && now.Sub(last) < time.Duration(settings.NegativeCacheTTL) {
		return false
	}
	s.revalidated[k] = now
	return true
}

// believedMissing reports whether the upstream said 404 for k recently,
// and until when that is believed.
func (s *Service) believedMissing(k key, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	till, ok := s.notFound[k]
	if ok && now.After(till) {
		delete(s.notFound, k)
		return time.Time{}, false
	}
	return till, ok
}

// Forget drops what the cache remembers of a repository's upstream and
// misses, after its settings changed or it was deleted.
func (s *Service) Forget(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.upstreams, id)
	for k := range s.notFound {
		if k.repo == id {
			delete(s.notFound, k)
		}
	}
}

// upstreamURL is the item's URL upstream.
func upstreamURL(settings repo.ProxySettings, it Item) string {
	if it.URL != "" {
		return it.URL
	}
	return strings.TrimSuffix(settings.URL, "/") + "/" + escapePath(it.Path)
}

// escapePath percent-encodes each segment of a decoded path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}
