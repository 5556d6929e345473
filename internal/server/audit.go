package server

import (
	"net/http"

	"arca/internal/audit"
	"arca/internal/auth"
)

// authenticate identifies the caller and notes it for the access line. A
// check of credentials against the store (not a remembered one) is audited
// as a login, and so is every failed one.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	p, err := s.auth.Authenticate(r.Context(), r)
	ri := info(r.Context())
	switch {
	case err != nil:
		user, _, ok := r.BasicAuth()
		if !ok || user == "" {
			user = "anonymous"
		}
		s.audit.Record(r.Context(), audit.Event{Actor: user, Action: "login",
			Remote: r.RemoteAddr, Outcome: audit.Failure, Detail: err.Error()})
	case p != nil:
		ri.user = p.Name
		if p.Fresh {
			detail := "password"
			if p.Token != "" {
				detail = "token " + p.Token
			}
			s.audit.Record(r.Context(), audit.Event{Actor: p.Name, Action: "login",
				Remote: r.RemoteAddr, Outcome: audit.Success, Detail: detail})
		}
	}
	return p, err
}

// auditRequest records a finished request that changed, or tried to change,
// something, with the outcome its status tells.
func (s *Server) auditRequest(w http.ResponseWriter, r *http.Request, action, repository, path string) {
	status := http.StatusOK
	if rec, ok := w.(*recorder); ok && rec.status != 0 {
		status = rec.status
	}
	ri := info(r.Context())
	detail := ""
	if ri.err != nil && status < 500 {
		detail = ri.err.Error()
	}
	actor := ri.user
	if actor == "" {
		actor = "anonymous"
	}
	s.audit.Record(r.Context(), audit.Event{Actor: actor, Action: action, Repository: repository,
		Path: path, Remote: r.RemoteAddr, Outcome: audit.OutcomeOf(status), Detail: detail})
}

// auditEvent is an audit log entry as the API lists it.
type auditEvent = audit.Event
