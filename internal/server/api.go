package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"arca/internal/auth"
	"arca/internal/repo"
)

// maxAPIBody bounds a JSON request body of the REST API.
const maxAPIBody = 1 << 20

// Default and largest page sizes of list endpoints.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// access says who may call an endpoint at all; finer checks happen in the
// handler.
type access int

const (
	anyone        access = iota // anonymous callers too
	authenticated               // any known user
	adminOnly                   // users with the admin flag
)

// apiHandler is a REST handler; it receives the caller (nil if anonymous).
type apiHandler func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

// routeAPI registers the REST API under /api/v1. Every endpoint states who
// may call it and, when it changes something, the action the audit log
// records.
func (s *Server) routeAPI(mux *http.ServeMux) {
	api := func(pattern string, who access, action string, h apiHandler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			info(r.Context()).route = pattern
			p, err := s.authenticate(r)
			if err == nil {
				err = allowed(p, who)
			}
			if err == nil {
				err = h(w, r, p)
			}
			if err != nil {
				s.fail(w, r, nil, err)
			}
			if action != "" && p != nil {
				repository, subject := "", info(r.Context()).subject
				if strings.HasPrefix(action, "repository.") {
					repository, subject = subject, ""
				}
				s.auditRequest(w, r, action, repository, subject)
			}
		})
	}
	api("GET /api/v1/status", anyone, "", s.apiStatus)
	api("GET /api/v1/openapi.json", anyone, "", s.apiOpenAPI)

	api("GET /api/v1/repositories", anyone, "", s.apiListRepositories)
	api("POST /api/v1/repositories", adminOnly, "repository.create", s.apiCreateRepository)
	api("GET /api/v1/repositories/{name}", anyone, "", s.apiGetRepository)
	api("PUT /api/v1/repositories/{name}", authenticated, "repository.update", s.apiUpdateRepository)
	api("DELETE /api/v1/repositories/{name}", adminOnly, "repository.delete", s.apiDeleteRepository)

	api("POST /api/v1/repositories/{name}/pypi/{project}/{version}/yank", authenticated, "repository.pypi.yank", s.apiPyPIYank)
	api("DELETE /api/v1/repositories/{name}/pypi/{project}/{version}/yank", authenticated, "repository.pypi.unyank", s.apiPyPIUnyank)
	api("DELETE /api/v1/repositories/{name}/pypi/{project}/{version}", authenticated, "repository.pypi.delete", s.apiPyPIDelete)

	api("GET /api/v1/users", adminOnly, "", s.apiListUsers)
	api("POST /api/v1/users", adminOnly, "user.create", s.apiCreateUser)
	api("GET /api/v1/users/{name}", adminOnly, "", s.apiGetUser)
	api("PUT /api/v1/users/{name}", adminOnly, "user.update", s.apiUpdateUser)
	api("DELETE /api/v1/users/{name}", adminOnly, "user.delete", s.apiDeleteUser)

	api("GET /api/v1/tokens", authenticated, "", s.apiListTokens)
	api("POST /api/v1/tokens", authenticated, "token.create", s.apiCreateToken)
	api("DELETE /api/v1/tokens/{id}", authenticated, "token.revoke", s.apiRevokeToken)

	api("GET /api/v1/audit", adminOnly, "", s.apiAudit)
	api("POST /api/v1/gc", adminOnly, "gc.run", s.apiGC)
}

// allowed applies an endpoint's access level.
func allowed(p *auth.Principal, who access) error {
	switch {
	case who == anyone:
		return nil
	case p == nil:
		return auth.ErrUnauthenticated
	case who == adminOnly && !p.Admin:
		return fmt.Errorf("%w: %s is not an admin", auth.ErrDenied, p.Name)
	}
	return nil
}

// decodeBody reads a JSON request body into v, refusing unknown fields
// unless v decodes itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %w", repo.ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: request body: more than one JSON value", repo.ErrInvalid)
	}
	return nil
}

// pageRequest is a list's ?limit=N&after=X.
type pageRequest struct {
	limit int
	after string
}

func readPage(r *http.Request) (pageRequest, error) {
	pr := pageRequest{limit: defaultPageSize, after: r.URL.Query().Get("after")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return pr, fmt.Errorf("%w: limit must be a number from 1 to %d", repo.ErrInvalid, maxPageSize)
		}
		pr.limit = n
	}
	return pr, nil
}

// writePage answers {"items":[...],"next":"..."}; next is the value for
// ?after= when the page is full, and empty otherwise.
func writePage[T any](w http.ResponseWriter, pr pageRequest, items []T, key func(T) string) {
	next := ""
	if len(items) == pr.limit && len(items) > 0 {
		next = key(items[len(items)-1])
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next": next})
}
