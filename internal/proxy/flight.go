package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"arca/internal/blob"
	"arca/internal/repo"
)

// A flight is one fetch of an item from the upstream, which every request
// for that item joins while it lasts.
type flight struct {
	// ready is closed once the outcome is known or the download has begun
	// (spool set): artifact requests can then follow the spool.
	ready chan struct{}
	// done is closed when the flight is over: err, or asset, is final.
	done chan struct{}

	spool       *spool
	size        int64 // from Content-Length, -1 when unknown
	contentType string

	err   error
	asset repo.Asset
}

// fetchTimeout bounds a whole fetch, whatever the read timeout lets
// through.
const fetchTimeout = 6 * time.Hour

// join returns the flight of k, joining the one under way or starting
// one. A flight that ended since the caller looked in the cache stored
// its answer before it left: when none is under way, the cache is asked
// again, and an item stored meanwhile comes back instead of a flight.
// Finding a flight and joining it happen under one lock, so that a flight
// ending in between cannot make a second download.
func (s *Service) join(ctx context.Context, r *repo.Repository, u *upstream, k key, it Item, cached repo.Asset, have bool) (*flight, *repo.Asset) {
	s.mu.Lock()
	f := s.flights[k]
	s.mu.Unlock()
	if f == nil {
		again, err := s.repos.Asset(ctx, r, it.Path)
		if err == nil && (!have || again.FetchedAt.After(cached.FetchedAt)) {
			s.note(r, "hit", func(c *counters) { c.hits++ })
			return nil, &again
		}
	}
	s.mu.Lock()
	if running := s.flights[k]; running != nil {
		f = running
	}
	if f != nil {
		// The flight under way, or the one seen above, which ended with
		// the answer.
		s.mu.Unlock()
		s.note(r, "hit", func(c *counters) { c.hits++ })
		return f, nil
	}
	defer s.mu.Unlock()
	f = &flight{ready: make(chan struct{}), done: make(chan struct{}), size: -1}
	s.flights[k] = f
	go s.fly(r, u, k, it, cached, have, f)
	return f, nil
}

// fly runs a flight. It is detached from the request that started it: the
// other clients following it must not lose their download when the first
// one goes away.
func (s *Service) fly(r *repo.Repository, u *upstream, k key, it Item, cached repo.Asset, have bool, f *flight) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, stop := context.WithTimeout(ctx, fetchTimeout)
	defer stop()
	defer cancel(nil)
	err := s.fetch(ctx, cancel, r, u, k, it, cached, have, f)
	f.err = err
	if f.spool != nil {
		f.spool.finish(err)
		f.spool.release()
	}
	s.mu.Lock()
	delete(s.flights, k)
	s.mu.Unlock()
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		s.note(r, "error", func(c *counters) {
			c.upstreamErrors++
			c.lastError, c.lastErrorAt = err.Error(), time.Now()
		})
		s.log.Warn("proxy fetch failed", "repository", r.Name, "path", it.Path, "error", err)
	}
	select {
	case <-f.ready:
	default:
		close(f.ready)
	}
	close(f.done)
}

// fetch asks the upstream for the item and stores what it answers.
func (s *Service) fetch(ctx context.Context, cancel context.CancelCauseFunc, r *repo.Repository, u *upstream,
	k key, it Item, cached repo.Asset, have bool, f *flight) error {
	url := upstreamURL(u.settings, it)
	header := http.Header{}
	for name, v := range it.Header {
		header[name] = v
	}
	if have {
		if cached.OriginETag != "" {
			header.Set("If-None-Match", cached.OriginETag)
		}
		if cached.OriginLastModified != "" {
			header.Set("If-Modified-Since", cached.OriginLastModified)
		}
	}
	resp, err := u.do(ctx, http.MethodGet, url, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && have:
		if err := s.repos.Revalidated(ctx, cached, time.Now()); err != nil {
			return err
		}
		cached.FetchedAt = time.Now()
		f.asset = cached
		s.note(r, "hit", func(c *counters) { c.hits++ })
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		s.mu.Lock()
		s.notFound[k] = time.Now().Add(time.Duration(u.settings.NegativeCacheTTL))
		s.mu.Unlock()
		return fmt.Errorf("%s: not found upstream at %s: %w", it.Path, url, repo.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return &UpstreamError{URL: url, Status: resp.StatusCode}
	}
	s.note(r, "miss", func(c *counters) { c.misses++ })
	want, err := expectation(it.Expect, resp)
	if err != nil {
		return &UpstreamError{URL: url, Err: err}
	}
	sp, err := newSpool(s.spoolDir)
	if err != nil {
		return err
	}
	f.spool, f.size = sp, resp.ContentLength
	f.contentType = resp.Header.Get("Content-Type")
	if f.contentType == "" {
		f.contentType = it.ContentType
	}
	close(f.ready)

	body := newIdleTimeout(resp.Body, time.Duration(u.settings.ReadTimeout), cancel)
	n, err := io.Copy(sp, body)
	body.stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return &UpstreamError{URL: url, Timeout: errors.Is(err, errReadTimeout), Err: err}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return &UpstreamError{URL: url, Err: fmt.Errorf("body ended after %d of %d bytes", n, resp.ContentLength)}
	}
	want.Size = n
	a, err := s.repos.PutAsset(ctx, r, io.NewSectionReader(sp.file, 0, n), repo.PutOptions{
		Path: it.Path, ContentType: f.contentType, Uploader: "proxy", Expect: want, Component: it.Component,
		Origin: &repo.Origin{URL: url, ETag: resp.Header.Get("ETag"),
			LastModified: resp.Header.Get("Last-Modified"), FetchedAt: time.Now()},
	})
	if errors.Is(err, blob.ErrDigestMismatch) {
		return &UpstreamError{URL: url, Err: fmt.Errorf("download does not match its published digest: %w", err)}
	}
	if err != nil {
		return err
	}
	f.asset = a
	return nil
}

// expectation adds to what the format expects the digests the upstream
// announces in X-Checksum-* headers (another arca, Nexus and Artifactory
// send them); a malformed one is an upstream error.
func expectation(known blob.Expect, resp *http.Response) (blob.Expect, error) {
	want := known
	for _, h := range []struct {
		name string
		alg  blob.Algorithm
		into *string
	}{
		{"X-Checksum-Sha256", blob.SHA256, &want.SHA256},
		{"X-Checksum-Sha1", blob.SHA1, &want.SHA1},
		{"X-Checksum-Md5", blob.MD5, &want.MD5},
	} {
		v := strings.ToLower(strings.TrimSpace(resp.Header.Get(h.name)))
		if v == "" || *h.into != "" {
			continue
		}
		if !blob.ValidHex(h.alg, v) {
			return want, fmt.Errorf("%s %q is not a %s digest", h.name, v, h.alg)
		}
		*h.into = v
	}
	return want, nil
}
