package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"arca/internal/auth"
	"arca/internal/repo"
)

// maxDefinitionSize bounds a repository definition in a request body.
const maxDefinitionSize = 1 << 20

// routeAPI registers the REST API under /api/v1.
// TODO: only the status and the repository endpoints exist; users, tokens,
// permissions and the OpenAPI document are still to be written.
func (s *Server) routeAPI(mux *http.ServeMux) {
	api := func(pattern string, perm auth.Permission, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			info(r.Context()).route = pattern
			err := s.adminOnly(r, perm)
			if err == nil {
				err = h(w, r)
			}
			if err != nil {
				s.fail(w, r, nil, err)
			}
		})
	}
	api("GET /api/v1/status", auth.Read, s.apiStatus)
	api("GET /api/v1/repositories", auth.Admin, s.apiListRepositories)
	api("POST /api/v1/repositories", auth.Admin, s.apiCreateRepository)
	api("GET /api/v1/repositories/{name}", auth.Admin, s.apiGetRepository)
	api("PUT /api/v1/repositories/{name}", auth.Admin, s.apiUpdateRepository)
	api("DELETE /api/v1/repositories/{name}", auth.Admin, s.apiDeleteRepository)
}

// adminOnly lets anybody read the status and admins do the rest.
func (s *Server) adminOnly(r *http.Request, perm auth.Permission) error {
	if perm == auth.Read {
		return nil
	}
	user, err := s.auth.Authenticate(r.Context(), r)
	if err != nil {
		return err
	}
	return auth.Authorize(user, auth.Target{Repository: "*"}, perm)
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"version":       s.opts.Version,
		"uptimeSeconds": int64(time.Since(s.started).Seconds()),
		"database":      s.db.Dialect(),
		"blobStore":     s.blobs.DriverName(),
	})
	return nil
}

func (s *Server) apiListRepositories(w http.ResponseWriter, r *http.Request) error {
	list, err := s.repos.List(r.Context(), r.URL.Query().Get("after"), 1000)
	if err != nil {
		return err
	}
	next := ""
	if len(list) == 1000 {
		next = list[len(list)-1].Name
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list, "next": next})
	return nil
}

// readDefinition decodes a repository definition from the request body.
func readDefinition(w http.ResponseWriter, r *http.Request) (*repo.Repository, error) {
	var def repo.Repository
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDefinitionSize)).Decode(&def); err != nil {
		return nil, fmt.Errorf("%w: repository definition: %w", repo.ErrInvalid, err)
	}
	return &def, nil
}

func (s *Server) apiCreateRepository(w http.ResponseWriter, r *http.Request) error {
	def, err := readDefinition(w, r)
	if err != nil {
		return err
	}
	if err := s.repos.Create(r.Context(), def); err != nil {
		return err
	}
	w.Header().Set("Location", s.BaseURL(r)+"/api/v1/repositories/"+def.Name)
	writeJSON(w, http.StatusCreated, def)
	return nil
}

func (s *Server) apiGetRepository(w http.ResponseWriter, r *http.Request) error {
	def, err := s.repos.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, def)
	return nil
}

func (s *Server) apiUpdateRepository(w http.ResponseWriter, r *http.Request) error {
	def, err := readDefinition(w, r)
	if err != nil {
		return err
	}
	if def.Name != r.PathValue("name") {
		return fmt.Errorf("%w: the name in the body differs from the one in the path", repo.ErrInvalid)
	}
	if err := s.repos.Update(r.Context(), def); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, def)
	return nil
}

func (s *Server) apiDeleteRepository(w http.ResponseWriter, r *http.Request) error {
	if err := s.repos.Delete(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
