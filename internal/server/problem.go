package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/gc"
	"arca/internal/proxy"
	"arca/internal/repo"
	"arca/internal/urlpath"
)

// problemTable maps the services' errors to HTTP. It is the only place where
// an error becomes a status; the first entry that matches wins.
var problemTable = []struct {
	err    error
	status int
	code   string
}{
	// First: an upstream's failure wraps its cause (a digest mismatch of
	// what it sent, say), which is not the client's fault.
	{proxy.ErrUpstreamTimeout, http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT"},
	{proxy.ErrUpstream, http.StatusBadGateway, "UPSTREAM_FAILED"},
	{urlpath.ErrInvalid, http.StatusBadRequest, "INVALID"},
	{repo.ErrInvalid, http.StatusBadRequest, "INVALID"},
	{auth.ErrInvalid, http.StatusBadRequest, "INVALID"},
	{blob.ErrDigestMismatch, http.StatusBadRequest, "DIGEST_INVALID"},
	{io.ErrUnexpectedEOF, http.StatusBadRequest, "INVALID"},
	{auth.ErrUnauthenticated, http.StatusUnauthorized, "UNAUTHORIZED"},
	{auth.ErrDenied, http.StatusForbidden, "DENIED"},
	{repo.ErrWriteDenied, http.StatusForbidden, "DENIED"},
	{repo.ErrNotFound, http.StatusNotFound, "NOT_FOUND"},
	{repo.ErrExists, http.StatusConflict, "CONFLICT"},
	{repo.ErrInUse, http.StatusConflict, "CONFLICT"},
	{auth.ErrLastAdmin, http.StatusConflict, "CONFLICT"},
	{gc.ErrBusy, http.StatusConflict, "CONFLICT"},
	{blob.ErrOffset, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
	{repo.ErrOffline, http.StatusServiceUnavailable, "UNAVAILABLE"},
}

// classify turns an error into what the client is told. Messages of client
// errors are built from the request and safe to show; a server error shows
// only the request id, and its cause goes to the log.
func classify(err error, requestID string) format.Problem {
	var fe *format.Error
	if errors.As(err, &fe) {
		return format.Problem{Status: fe.Status, Code: fe.Code, Message: fe.Message}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return format.Problem{Status: http.StatusRequestEntityTooLarge, Code: "TOO_LARGE",
			Message: "request body too large"}
	}
	for _, p := range problemTable {
		if errors.Is(err, p.err) {
			msg := err.Error()
			if p.err == io.ErrUnexpectedEOF {
				msg = "request body ended before its announced length"
			}
			return format.Problem{Status: p.status, Code: p.code, Message: msg}
		}
	}
	return format.Problem{Status: http.StatusInternalServerError, Code: "INTERNAL",
		Message: "internal error; the server log has the details under request id " + requestID}
}

// fail answers a request whose handler returned err, in the format's error
// form (f may be nil outside repositories). If the response has started, it
// can only record the error for the access line.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f format.Format, err error) {
	ri := info(r.Context())
	ri.err = err
	if rec, ok := w.(*recorder); ok && rec.wroteHeader() {
		return
	}
	p := classify(err, ri.id)
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="arca"`)
	}
	if f != nil {
		f.WriteError(w, r, p)
		return
	}
	format.WriteJSONError(w, p)
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}
