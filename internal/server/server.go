// Package server is arca's HTTP edge. It validates every request path before
// any router sees it, gives each request an id and one access log line,
// routes /repository/{name}/... to the repository's format, authenticates
// and authorizes the caller, and turns the errors handlers return into
// responses, in one place (problem.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/gc"
	"arca/internal/meta"
	"arca/internal/metrics"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// Options are what the edge needs from the configuration.
type Options struct {
	// BaseURL, when set, is the external URL every absolute link starts with.
	BaseURL string
	// TrustedProxies are the networks whose X-Forwarded-* headers count.
	TrustedProxies []netip.Prefix
	// Version is reported by the status endpoint.
	Version string
}

// Services are what the edge calls.
type Services struct {
	DB    *meta.DB
	Blobs *blob.Store
	Repos *repo.Service
	Auth  *auth.Service
	Audit *audit.Log
	GC    *gc.Collector
	// Cache is the proxy repositories' cache; nil in tests without proxies.
	Cache *proxy.Service
	// Metrics may be nil, in tests.
	Metrics *metrics.Metrics
}

// Server is the HTTP edge.
type Server struct {
	opts    Options
	log     *slog.Logger
	db      *meta.DB
	blobs   *blob.Store
	repos   *repo.Service
	auth    *auth.Service
	audit   *audit.Log
	gc      *gc.Collector
	cache   *proxy.Service
	metrics *metrics.Metrics
	formats map[string]*mountedFormat
	merged  *mergedViews // groups' merged answers, kept while they hold
	started time.Time
	handler http.Handler
}

// mountedFormat is a format with its routes compiled into a mux.
type mountedFormat struct {
	format.Format
	mux *http.ServeMux
}

// New builds the edge over the services, serving the given formats.
func New(opts Options, log *slog.Logger, svc Services, formats []format.Format) *Server {
	s := &Server{
		opts: opts, log: log, db: svc.DB, blobs: svc.Blobs, repos: svc.Repos, auth: svc.Auth,
		audit: svc.Audit, gc: svc.GC, cache: svc.Cache, metrics: svc.Metrics, formats: map[string]*mountedFormat{}, started: time.Now(),
		merged: newMergedViews(mergedViewsMaxBytes),
	}
	for _, f := range formats {
		s.formats[f.ID()] = s.mount(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	mux.HandleFunc("/repository/", s.serveRepository)
	for _, m := range s.formats {
		if rr, ok := m.Format.(format.RootRouter); ok {
			s.mountRoot(mux, m, rr)
		}
	}
	s.routeAPI(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, nil, unmatched(w, mux, r))
	})
	s.handler = s.logRequests(s.checkPath(mux))
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Serve answers on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests must outlive the shutdown signal: they get a context that
		// ctx's end does not cancel, and Shutdown waits for them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only while the database and the blob store work.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := errors.Join(s.db.Ping(ctx), s.blobs.Ping(ctx)); err != nil {
		s.log.ErrorContext(ctx, "not ready", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
