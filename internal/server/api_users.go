package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"arca/internal/auth"
	"arca/internal/repo"
)

func (s *Server) apiListUsers(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	pr, err := readPage(r)
	if err != nil {
		return err
	}
	users, err := s.auth.Users(r.Context(), pr.after, pr.limit)
	if err != nil {
		return err
	}
	writePage(w, pr, users, func(u auth.User) string { return u.Name })
	return nil
}

func (s *Server) apiCreateUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var u auth.User
	if err := decodeBody(w, r, &u); err != nil {
		return err
	}
	info(r.Context()).subject = "user/" + u.Name
	if err := s.auth.CreateUser(r.Context(), &u); err != nil {
		return err
	}
	created, err := s.auth.User(r.Context(), u.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.BaseURL(r)+"/api/v1/users/"+u.Name)
	writeJSON(w, http.StatusCreated, created)
	return nil
}

func (s *Server) apiGetUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	u, err := s.auth.User(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) apiUpdateUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var u auth.User
	if err := decodeBody(w, r, &u); err != nil {
		return err
	}
	name := r.PathValue("name")
	info(r.Context()).subject = "user/" + name
	if u.Name == "" {
		u.Name = name
	}
	if u.Name != name {
		return fmt.Errorf("%w: the name of a user cannot change", repo.ErrInvalid)
	}
	if err := s.auth.UpdateUser(r.Context(), &u); err != nil {
		return err
	}
	return s.apiGetUser(w, r, nil)
}

func (s *Server) apiDeleteUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	name := r.PathValue("name")
	info(r.Context()).subject = "user/" + name
	if err := s.auth.DeleteUser(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiListTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	pr, err := readPage(r)
	if err != nil {
		return err
	}
	tokens, err := s.auth.Tokens(r.Context(), p, pr.after, pr.limit)
	if err != nil {
		return err
	}
	writePage(w, pr, tokens, auth.Token.Cursor)
	return nil
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req struct {
		Name      string `json:"name"`
		ExpiresIn string `json:"expiresIn"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		var err error
		if ttl, err = time.ParseDuration(req.ExpiresIn); err != nil || ttl <= 0 {
			return fmt.Errorf("%w: expiresIn %q is not a positive duration such as 720h", repo.ErrInvalid, req.ExpiresIn)
		}
	}
	t, err := s.auth.CreateToken(r.Context(), p, req.Name, ttl)
	if err != nil {
		return err
	}
	info(r.Context()).subject = "token/" + t.ID
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	info(r.Context()).subject = "token/" + id
	if err := s.auth.RevokeToken(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	pr, err := readPage(r)
	if err != nil {
		return err
	}
	var before int64
	if pr.after != "" {
		if before, err = strconv.ParseInt(pr.after, 10, 64); err != nil || before < 1 {
			return fmt.Errorf("%w: after must be an event id", repo.ErrInvalid)
		}
	}
	events, err := s.audit.List(r.Context(), before, pr.limit)
	if err != nil {
		return err
	}
	writePage(w, pr, events, func(e auditEvent) string { return strconv.FormatInt(e.ID, 10) })
	return nil
}

func (s *Server) apiGC(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var req struct {
		DryRun bool `json:"dryRun"`
	}
	// The options are optional: an empty body, of any length encoding,
	// means the defaults.
	if err := decodeBody(w, r, &req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	report, err := s.gc.Run(r.Context(), req.DryRun)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
