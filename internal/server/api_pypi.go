package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"arca/internal/auth"
	"arca/internal/pypi"
	"arca/internal/repo"
)

// pypiRelease finds the PyPI repository and release the path names and
// checks that p holds perm on it. A repository the caller may not read, or
// of another format, does not exist for it.
func (s *Server) pypiRelease(r *http.Request, p *auth.Principal, perm auth.Permission) (*repo.Repository, string, string, error) {
	rp, err := s.repos.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, "", "", err
	}
	info(r.Context()).subject = rp.Name
	if rp.Format != "pypi" {
		return nil, "", "", fmt.Errorf("pypi repository %s: %w", rp.Name, repo.ErrNotFound)
	}
	target := auth.Target{Repository: rp.Name, AnonymousRead: rp.AnonymousRead}
	if err := auth.Authorize(p, target, perm); err != nil {
		if !canRead(p, rp) && errors.Is(err, auth.ErrDenied) {
			return nil, "", "", fmt.Errorf("repository %s: %w", rp.Name, repo.ErrNotFound)
		}
		return nil, "", "", err
	}
	project := pypi.Normalize(r.PathValue("project"))
	files, err := s.repos.PyPIFiles(r.Context(), rp, project)
	if err != nil {
		return nil, "", "", err
	}
	version, err := pypi.ReleaseVersion(files, r.PathValue("version"))
	if err != nil {
		return nil, "", "", fmt.Errorf("release %s %s: %w", project, r.PathValue("version"), repo.ErrNotFound)
	}
	return rp, project, version, nil
}

// apiPyPIYank yanks every file of a release (PEP 592), with an optional
// {"reason": "..."}.
func (s *Server) apiPyPIYank(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rp, project, version, err := s.pypiRelease(r, p, auth.Write)
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	// The body is optional: an empty one, of any length encoding, means no
	// reason.
	if err := decodeBody(w, r, &req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.repos.YankPyPIRelease(r.Context(), rp, project, version, true, req.Reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiPyPIUnyank takes a release's yank back.
func (s *Server) apiPyPIUnyank(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rp, project, version, err := s.pypiRelease(r, p, auth.Write)
	if err != nil {
		return err
	}
	if err := s.repos.YankPyPIRelease(r.Context(), rp, project, version, false, ""); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiPyPIDelete removes every file of a release and its assets.
func (s *Server) apiPyPIDelete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rp, project, version, err := s.pypiRelease(r, p, auth.Delete)
	if err != nil {
		return err
	}
	if _, err := s.repos.DeletePyPIRelease(r.Context(), rp, project, version); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
