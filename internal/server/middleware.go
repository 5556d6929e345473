package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"arca/internal/format"
	"arca/internal/urlpath"
)

// requestInfo collects, while a request runs, what its access line reports.
type requestInfo struct {
	id     string
	route  string
	format string
	repo   string
	user   string
	// subject names what an API call acted on, for the audit log.
	subject string
	err     error
}

type ctxKey int

const requestInfoKey ctxKey = iota

// info returns the request's log record; it exists for every request that
// went through logRequests.
func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string { return info(ctx).id }

// logRequests gives each request an id (a sane inbound X-Request-Id or a new
// one), echoes it in the response and writes one access line when done: at
// Info below 500 and at Error from 500.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: requestID(r.Header.Get("X-Request-Id"))}
		w.Header().Set("X-Request-Id", ri.id)
		rec := &recorder{ResponseWriter: w}
		// The counter goes on a copy of the request: the server watches the
		// original's body to send "100 Continue" only once a handler reads,
		// so that a refused upload is answered before its body is sent.
		ctx := context.WithValue(r.Context(), requestInfoKey, ri)
		inner := r.WithContext(format.WithBaseURL(ctx, s.BaseURL(r)))
		body := &countingReader{ReadCloser: r.Body}
		inner.Body = body
		next.ServeHTTP(rec, inner)
		elapsed := time.Since(start)

		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", ri.route),
			slog.Int("status", status),
			slog.Int64("bytes", rec.bytes),
			slog.Int64("duration_ms", elapsed.Milliseconds()),
			slog.String("remote", r.RemoteAddr),
		}
		if ri.format != "" {
			attrs = append(attrs, slog.String("format", ri.format), slog.String("repo", ri.repo))
		}
		if ri.user != "" {
			attrs = append(attrs, slog.String("user", ri.user))
		}
		if ri.err != nil {
			attrs = append(attrs, slog.String("error", ri.err.Error()))
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
		s.metrics.Observe(ri.format, r.Method, status, body.n, rec.bytes, elapsed)
	})
}

// countingReader counts the bytes of a request body as they are read.
type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// requestID keeps an inbound id made of at most 64 safe characters, or makes
// a new one.
func requestID(inbound string) string {
	if inbound != "" && len(inbound) <= 64 && strings.Trim(inbound,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return inbound
	}
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// checkPath refuses, before any router cleans or redirects it, every path
// that is not plainly a sequence of safe segments.
func (s *Server) checkPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := rawPath(r)
		encodedSlash, err := urlpath.Check(p)
		if err == nil && encodedSlash && !strings.HasPrefix(p, "/repository/") {
			// Only a format may claim an encoded slash, and only inside a
			// repository (see serveRepository).
			err = fmt.Errorf("%w: an encoded slash is not allowed in this path", urlpath.ErrInvalid)
		}
		if err != nil {
			info(r.Context()).route = "invalid path"
			s.fail(w, r, nil, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rawPath is the path exactly as the client sent it.
func rawPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	return r.URL.EscapedPath()
}

// recorder notes the status and size of a response. It forwards ReadFrom so
// that serving a file still reaches sendfile, and Unwrap so that
// http.ResponseController finds the connection's features.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rec.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rec.ResponseWriter}, src)
	}
	rec.bytes += n
	return n, err
}

// writerOnly hides every method but Write, so io.Copy cannot loop back into
// ReadFrom.
type writerOnly struct{ io.Writer }

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// wroteHeader reports whether the response has started, after which an error
// can only be logged.
func (rec *recorder) wroteHeader() bool { return rec.status != 0 }
