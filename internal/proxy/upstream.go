package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"arca/internal/repo"
)

// upstream is the client of one proxy repository's upstream: it bounds the
// requests in flight, waits out a 429's Retry-After, retries failures with
// backoff and authenticates.
type upstream struct {
	settings repo.ProxySettings
	client   *http.Client
	slots    chan struct{} // one per request in flight

	mu          sync.Mutex
	blockedTill time.Time // no request before this (Retry-After)
}

func newUpstream(s repo.ProxySettings) *upstream {
	connect := time.Duration(s.ConnectTimeout)
	read := time.Duration(s.ReadTimeout)
	transport := &http.Transport{
		Proxy:                 nil, // an upstream is reached directly
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: read,
		MaxConnsPerHost:       s.MaxConnections,
		MaxIdleConnsPerHost:   s.MaxConnections,
		IdleConnTimeout:       90 * time.Second,
		// Bodies are stored as sent: a gzip the upstream chose is not
		// what its digests describe.
		DisableCompression: true,
	}
	return &upstream{settings: s, client: &http.Client{Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		}},
		slots: make(chan struct{}, s.MaxConnections)}
}

// UpstreamError is an upstream that could not give an answer: unreachable,
// timed out, rate-limited or failing with 5xx. The edge answers 502, or 504
// for a timeout, with the message.
type UpstreamError struct {
	URL string
	// Status is the upstream's HTTP status, 0 when there was none.
	Status  int
	Timeout bool
	Err     error
}

func (e *UpstreamError) Error() string {
	switch {
	case e.Status != 0:
		return fmt.Sprintf("upstream %s answered %d %s", e.URL, e.Status, http.StatusText(e.Status))
	case e.Err != nil:
		return fmt.Sprintf("upstream %s: %v", e.URL, e.Err)
	}
	return "upstream " + e.URL + " failed"
}

// Unwrap returns the cause.
func (e *UpstreamError) Unwrap() error { return e.Err }

// errRateLimited is the cause of a request not sent because the upstream
// asked to wait.
var errRateLimited = errors.New("rate-limited")

// do sends a GET (or HEAD) for url with the given extra headers, retrying
// network errors and 5xx answers with backoff. It returns the response of
// any other status for the caller to judge; its body must be closed. The
// request counts against maxConnections until the body is closed.
func (u *upstream) do(ctx context.Context, method, url string, header http.Header) (*http.Response, error) {
	var last error
	for attempt := 0; attempt <= u.settings.Retries; attempt++ {
		if attempt > 0 {
			// 250ms, 500ms, 1s, ... with no jitter: a handful of retries
			// by one process needs none.
			if err := sleep(ctx, 250*time.Millisecond<<(attempt-1)); err != nil {
				return nil, err
			}
		}
		resp, err := u.once(ctx, method, url, header)
		if err == nil && resp.StatusCode < 500 {
			return resp, nil
		}
		if err == nil {
			resp.Body.Close()
			err = &UpstreamError{URL: url, Status: resp.StatusCode}
		}
		last = err
		if errors.Is(err, errRateLimited) || ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// once sends one request, within the connection bound and outside any
// Retry-After period.
func (u *upstream) once(ctx context.Context, method, url string, header http.Header) (*http.Response, error) {
	u.mu.Lock()
	blocked := u.blockedTill
	u.mu.Unlock()
	if time.Now().Before(blocked) {
		return nil, &UpstreamError{URL: url, Err: fmt.Errorf("%w: not asked again before %s (Retry-After)",
			errRateLimited, blocked.UTC().Format(time.RFC3339))}
	}
	select {
	case u.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		<-u.slots
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "arca-proxy")
	// The credentials are the upstream's: a file its pages link to on
	// another host (a CDN) must not receive them.
	switch {
	case !sameOrigin(req.URL, u.settings.URL) || req.Header.Get("Authorization") != "":
	case u.settings.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+u.settings.BearerToken)
	case u.settings.Username != "":
		req.SetBasicAuth(u.settings.Username, u.settings.Password)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		<-u.slots
		var ne net.Error
		return nil, &UpstreamError{URL: url, Timeout: errors.As(err, &ne) && ne.Timeout(), Err: err}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		wait := retryAfter(resp.Header.Get("Retry-After"))
		u.mu.Lock()
		if till := time.Now().Add(wait); till.After(u.blockedTill) {
			u.blockedTill = till
		}
		u.mu.Unlock()
		resp.Body.Close()
		<-u.slots
		return nil, &UpstreamError{URL: url, Status: resp.StatusCode,
			Err: fmt.Errorf("%w: not asked again for %s (Retry-After)", errRateLimited, wait)}
	}
	resp.Body = &slotBody{ReadCloser: resp.Body, release: func() { <-u.slots }}
	return resp, nil
}

// sameOrigin reports whether u has the scheme and host of the base URL.
func sameOrigin(u *url.URL, base string) bool {
	b, err := url.Parse(base)
	return err == nil && strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host)
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date;
// without one, a 429 blocks the upstream for a minute.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return time.Minute
}

// slotBody gives back the request's connection slot when closed.
type slotBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idleTimeout cuts a body read that waits longer than d for the next
// bytes: cancel ends the request.
type idleTimeout struct {
	r      io.Reader
	timer  *time.Timer
	d      time.Duration
	cancel context.CancelCauseFunc
}

// errReadTimeout is why a stalled body is cut.
var errReadTimeout = errors.New("upstream sent nothing for longer than readTimeout")

func newIdleTimeout(r io.Reader, d time.Duration, cancel context.CancelCauseFunc) *idleTimeout {
	it := &idleTimeout{r: r, d: d, cancel: cancel}
	it.timer = time.AfterFunc(d, func() { cancel(errReadTimeout) })
	return it
}

func (it *idleTimeout) Read(p []byte) (int, error) {
	n, err := it.r.Read(p)
	it.timer.Reset(it.d)
	return n, err
}

func (it *idleTimeout) stop() { it.timer.Stop() }
