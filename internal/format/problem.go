package format

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// WriteJSONError writes p as arca's own JSON error document,
// {"errors":[{"code":"NOT_FOUND","message":"..."}]}, the form of the REST
// API and of formats whose clients read no particular error body.
func WriteJSONError(w http.ResponseWriter, p Problem) {
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(struct { //nolint:errcheck // the client went away
		Errors []item `json:"errors"`
	}{[]item{{p.Code, p.Message}}})
}

// WritePlainError writes p as one line of plain text, "404 Not Found:
// message", for clients that report the status line and show the body only
// to people and logs (pip, twine, mvn).
func WritePlainError(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	fmt.Fprintf(w, "%d %s: %s\n", p.Status, http.StatusText(p.Status), p.Message) //nolint:errcheck // the client went away
}

// SlashNamer is implemented by formats whose names may contain a
// percent-encoded slash, such as npm's @scope%2fname. The edge refuses an
// encoded slash in any other path.
type SlashNamer interface {
	// ClaimsEncodedSlash reports whether the escaped path, relative to the
	// repository, uses an encoded slash as part of a name.
	ClaimsEncodedSlash(escapedPath string) bool
}
