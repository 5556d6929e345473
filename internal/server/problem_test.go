package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/gc"
	"arca/internal/proxy"
	"arca/internal/repo"
	"arca/internal/urlpath"
)

func TestClassify(t *testing.T) {
	const id = "req-1234"
	tests := []struct {
		name     string
		sentinel error // the problemTable entry the case exercises, if any
		err      error
		status   int
		code     string
		message  string // a substring the message must have
		hidden   string // a substring the message must not have
	}{
		{name: "urlpath invalid", sentinel: urlpath.ErrInvalid,
			err:    fmt.Errorf("%w: segment \"..\"", urlpath.ErrInvalid),
			status: http.StatusBadRequest, code: "INVALID", message: `segment ".."`},
		{name: "repo invalid", sentinel: repo.ErrInvalid,
			err:    fmt.Errorf("%w: bad name", repo.ErrInvalid),
			status: http.StatusBadRequest, code: "INVALID", message: "bad name"},
		{name: "digest mismatch", sentinel: blob.ErrDigestMismatch,
			err:    fmt.Errorf("put: %w", &blob.MismatchError{What: "sha256", Expected: "aa", Actual: "bb"}),
			status: http.StatusBadRequest, code: "DIGEST_INVALID", message: "sha256 mismatch"},
		{name: "body cut off", sentinel: io.ErrUnexpectedEOF,
			err:    fmt.Errorf("write blob: %w", io.ErrUnexpectedEOF),
			status: http.StatusBadRequest, code: "INVALID", message: "ended before its announced length",
			hidden: "write blob"},
		{name: "unauthenticated", sentinel: auth.ErrUnauthenticated,
			err:    fmt.Errorf("%w: wrong password", auth.ErrUnauthenticated),
			status: http.StatusUnauthorized, code: "UNAUTHORIZED", message: "wrong password"},
		{name: "denied", sentinel: auth.ErrDenied,
			err:    fmt.Errorf("%w: write on x", auth.ErrDenied),
			status: http.StatusForbidden, code: "DENIED", message: "write on x"},
		{name: "write denied", sentinel: repo.ErrWriteDenied,
			err:    fmt.Errorf("files: %w", repo.ErrWriteDenied),
			status: http.StatusForbidden, code: "DENIED", message: "read-only"},
		{name: "not found", sentinel: repo.ErrNotFound,
			err:    fmt.Errorf("asset a.txt: %w", repo.ErrNotFound),
			status: http.StatusNotFound, code: "NOT_FOUND", message: "a.txt"},
		{name: "exists", sentinel: repo.ErrExists,
			err:    fmt.Errorf("a.txt: %w", repo.ErrExists),
			status: http.StatusConflict, code: "CONFLICT", message: "a.txt"},
		{name: "offset", sentinel: blob.ErrOffset,
			err:    fmt.Errorf("%w: chunk starts at 3", blob.ErrOffset),
			status: http.StatusRequestedRangeNotSatisfiable, code: "RANGE_INVALID", message: "chunk starts at 3"},
		{name: "invalid user", sentinel: auth.ErrInvalid,
			err:    fmt.Errorf("%w: user name %q", auth.ErrInvalid, "a b"),
			status: http.StatusBadRequest, code: "INVALID", message: "user name"},
		{name: "repository in use", sentinel: repo.ErrInUse,
			err:    fmt.Errorf("%w: member of group g", repo.ErrInUse),
			status: http.StatusConflict, code: "CONFLICT", message: "member of group g"},
		{name: "last admin", sentinel: auth.ErrLastAdmin,
			err:    fmt.Errorf("admin: %w", auth.ErrLastAdmin),
			status: http.StatusConflict, code: "CONFLICT", message: "last admin"},
		{name: "gc busy", sentinel: gc.ErrBusy,
			err:    fmt.Errorf("run: %w", gc.ErrBusy),
			status: http.StatusConflict, code: "CONFLICT", message: "run"},
		{name: "offline", sentinel: repo.ErrOffline,
			err:    fmt.Errorf("files: %w", repo.ErrOffline),
			status: http.StatusServiceUnavailable, code: "UNAVAILABLE", message: "offline"},
		{name: "upstream timeout", sentinel: proxy.ErrUpstreamTimeout,
			err:    &proxy.UpstreamError{URL: "http://up/x", Timeout: true, Err: errors.New("i/o timeout")},
			status: http.StatusGatewayTimeout, code: "UPSTREAM_TIMEOUT", message: "upstream http://up/x: i/o timeout"},
		{name: "upstream failure", sentinel: proxy.ErrUpstream,
			err:    fmt.Errorf("fetch: %w", &proxy.UpstreamError{URL: "http://up/x", Status: 503}),
			status: http.StatusBadGateway, code: "UPSTREAM_FAILED", message: "upstream http://up/x answered 503"},
		{name: "upstream digest mismatch is the upstream's fault",
			err:    &proxy.UpstreamError{URL: "http://up/x", Err: fmt.Errorf("bad bytes: %w", blob.ErrDigestMismatch)},
			status: http.StatusBadGateway, code: "UPSTREAM_FAILED", message: "bad bytes"},
		{name: "format error",
			err: fmt.Errorf("handler: %w", &format.Error{Status: http.StatusTeapot, Code: "TEAPOT",
				Message: "short and stout", Err: errors.New("secret cause")}),
			status: http.StatusTeapot, code: "TEAPOT", message: "short and stout", hidden: "secret cause"},
		{name: "format error wins over a sentinel it wraps",
			err: &format.Error{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED",
				Message: "no", Err: repo.ErrNotFound},
			status: http.StatusMethodNotAllowed, code: "UNSUPPORTED", message: "no"},
		{name: "max bytes",
			err:    fmt.Errorf("%w: definition: %w", repo.ErrInvalid, &http.MaxBytesError{Limit: 10}),
			status: http.StatusRequestEntityTooLarge, code: "TOO_LARGE", message: "too large"},
		{name: "unknown error",
			err:    errors.New("disk on fire at /srv/arca/blobs"),
			status: http.StatusInternalServerError, code: "INTERNAL", message: id, hidden: "disk on fire"},
		{name: "blob missing is not a 404",
			err:    fmt.Errorf("asset x: %v", blob.ErrNotFound),
			status: http.StatusInternalServerError, code: "INTERNAL", message: id, hidden: "asset x"},
		{name: "context canceled is a server error",
			err:    fmt.Errorf("query: %w", errors.New("context canceled")),
			status: http.StatusInternalServerError, code: "INTERNAL", message: id, hidden: "query"},
	}
	covered := map[error]bool{}
	for _, tt := range tests {
		if tt.sentinel != nil {
			covered[tt.sentinel] = true
		}
		t.Run(tt.name, func(t *testing.T) {
			if tt.sentinel != nil && !errors.Is(tt.err, tt.sentinel) {
				t.Fatalf("test error %v does not wrap %v", tt.err, tt.sentinel)
			}
			p := classify(tt.err, id)
			if p.Status != tt.status || p.Code != tt.code {
				t.Errorf("classify(%v) = %d %s, want %d %s", tt.err, p.Status, p.Code, tt.status, tt.code)
			}
			if !strings.Contains(p.Message, tt.message) {
				t.Errorf("message %q does not contain %q", p.Message, tt.message)
			}
			if tt.hidden != "" && strings.Contains(p.Message, tt.hidden) {
				t.Errorf("message %q shows %q", p.Message, tt.hidden)
			}
		})
	}
	t.Run("every table entry is tested", func(t *testing.T) {
		for _, p := range problemTable {
			if !covered[p.err] {
				t.Errorf("problemTable entry %v (%d) has no test case", p.err, p.status)
			}
		}
	})
}
