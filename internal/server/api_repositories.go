package server

import (
	"fmt"
	"net/http"
	"time"

	"arca/internal/auth"
	"arca/internal/repo"
)

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"version":       s.opts.Version,
		"uptimeSeconds": int64(time.Since(s.started).Seconds()),
		"database":      s.db.Dialect(),
		"blobStore":     s.blobs.DriverName(),
	})
	return nil
}

// canRead reports whether p may read a repository.
func canRead(p *auth.Principal, rp *repo.Repository) bool {
	return auth.Authorize(p, auth.Target{Repository: rp.Name, AnonymousRead: rp.AnonymousRead}, auth.Read) == nil
}

// apiListRepositories lists the repositories the caller may read.
func (s *Server) apiListRepositories(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	pr, err := readPage(r)
	if err != nil {
		return err
	}
	var items []*repo.Repository
	after := pr.after
	// Filtering may drop rows, so read on until the page is full.
	for len(items) < pr.limit {
		batch, err := s.repos.List(r.Context(), after, pr.limit)
		if err != nil {
			return err
		}
		for _, rp := range batch {
			if canRead(p, rp) && len(items) < pr.limit {
				items = append(items, rp.Redacted())
			}
		}
		if len(batch) < pr.limit {
			break
		}
		after = batch[len(batch)-1].Name
	}
	writePage(w, pr, items, func(rp *repo.Repository) string { return rp.Name })
	return nil
}

func (s *Server) apiCreateRepository(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var def repo.Repository
	if err := decodeBody(w, r, &def); err != nil {
		return err
	}
	info(r.Context()).subject = def.Name
	if err := s.repos.Create(r.Context(), &def); err != nil {
		return err
	}
	w.Header().Set("Location", s.BaseURL(r)+"/api/v1/repositories/"+def.Name)
	writeJSON(w, http.StatusCreated, def.Redacted())
	return nil
}

// apiGetRepository shows a repository to whoever may read it; to others it
// does not exist.
func (s *Server) apiGetRepository(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rp, err := s.repos.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if !canRead(p, rp) && (p == nil || !p.Can(rp.Name, auth.Admin)) {
		if p == nil {
			return auth.ErrUnauthenticated
		}
		return fmt.Errorf("repository %s: %w", rp.Name, repo.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, s.withProxyStatus(r.Context(), rp.Redacted()))
	return nil
}

// apiUpdateRepository replaces a repository's settings; it needs the admin
// flag or the admin permission on that repository.
func (s *Server) apiUpdateRepository(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name := r.PathValue("name")
	info(r.Context()).subject = name
	if err := auth.Authorize(p, auth.Target{Repository: name}, auth.Admin); err != nil {
		return err
	}
	var def repo.Repository
	if err := decodeBody(w, r, &def); err != nil {
		return err
	}
	if def.Name != name {
		return fmt.Errorf("%w: the name of a repository cannot change", repo.ErrInvalid)
	}
	if err := s.repos.Update(r.Context(), &def); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, def.Redacted())
	return nil
}

func (s *Server) apiDeleteRepository(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	name := r.PathValue("name")
	info(r.Context()).subject = name
	if err := s.repos.Delete(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
