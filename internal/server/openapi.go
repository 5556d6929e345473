package server

import (
	_ "embed"
	"net/http"

	"arca/internal/auth"
)

// openAPIDocument describes the REST API; a test walks it against the
// handlers.
//
//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) apiOpenAPI(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDocument)
	return err
}
