package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/repo"
	"arca/internal/urlpath"
)

type formatRequestKey struct{}

// mount compiles a format's routes into a mux of its own. A catch-all
// pattern without a method catches what no route matches, so that even a 404
// or 405 is written in the format's error form.
func (s *Server) mount(f format.Format) *mountedFormat {
	m := &mountedFormat{Format: f, mux: http.NewServeMux()}
	for _, rt := range f.Routes() {
		m.mux.Handle(rt.Method+" "+rt.Pattern, s.route(m, rt))
	}
	m.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, f, unmatched(w, m.mux, r))
	})
	return m
}

// unmatched tells a path that no route has (404) from a method the path
// does not allow (405, with the Allow header RFC 9110 asks for). mux must
// route everything else to a catch-all "/" without a method.
func unmatched(w http.ResponseWriter, mux *http.ServeMux, r *http.Request) error {
	var allowed []string
	for _, method := range []string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, method)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return &format.Error{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED",
			Message: fmt.Sprintf("method %s is not allowed here", r.Method)}
	}
	return fmt.Errorf("%w: %s", repo.ErrNotFound, r.URL.Path)
}

// route wraps a format's handler with the permission check.
func (s *Server) route(m *mountedFormat, rt format.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr := r.Context().Value(formatRequestKey{}).(*format.Request)
		fr.Request = r
		// The dispatcher noted its prefix ("/repository/{name}/"): the route
		// reads as the whole pattern, e.g. "GET /repository/{name}/{path...}".
		ri := info(r.Context())
		ri.route = r.Method + " " + strings.TrimSuffix(ri.route, "/") + rt.Pattern
		if fr.Repo.Type == repo.Group {
			s.serveGroup(w, r, m, rt, fr)
			return
		}
		target := auth.Target{Repository: fr.Repo.Name, AnonymousRead: fr.Repo.AnonymousRead}
		if fr.Repo.Type == repo.Proxy && (rt.Permission == auth.Write || rt.Permission == auth.Delete) {
			s.fail(w, r, m, &format.Error{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED",
				Message: fmt.Sprintf("repository %s is a proxy repository: it caches its upstream and takes no uploads or deletions; publish to a hosted repository",
					fr.Repo.Name)})
			return
		}
		// A route without a permission checks access itself.
		if rt.Permission != format.NoPermission {
			if err := auth.Authorize(fr.User, target, rt.Permission); err != nil {
				s.fail(w, r, m, err)
				if fr.User != nil {
					s.auditRequest(w, r, "artifact."+string(rt.Permission), fr.Repo.Name, fr.Path)
				}
				return
			}
		}
		err := rt.Handle(w, fr)
		if err != nil {
			s.fail(w, r, m, err)
		}
		if rt.Permission == auth.Write || rt.Permission == auth.Delete {
			s.auditRequest(w, r, "artifact."+string(rt.Permission), fr.Repo.Name, fr.Path)
		}
	})
}

// serveRepository answers /repository/{name}/{path...}: it finds the
// repository and its format, authenticates the caller and hands the request
// to the format's routes with the path relative to the repository.
func (s *Server) serveRepository(w http.ResponseWriter, r *http.Request) {
	s.dispatch(w, r, "/repository/", nil)
}

// servePrefix answers a format's own URL space (format.RootRouter), where the
// first segment names a repository of that format.
func (s *Server) servePrefix(owner *mountedFormat, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.dispatch(w, r, prefix, owner) }
}

// dispatch hands a request under prefix to the routes of the repository
// its next segment names. With owner set, the repository must be of that
// format, and errors are written in its form even before the repository is
// known.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, prefix string, owner *mountedFormat) {
	ri := info(r.Context())
	ri.route = prefix + "{name}/"
	var errorForm format.Format
	if owner != nil {
		errorForm = owner
	}
	escaped := strings.TrimPrefix(rawPath(r), prefix)
	name, rest, hasSlash := strings.Cut(escaped, "/")
	if strings.Contains(name, "%") {
		// No repository name needs an escape; an encoded slash here would
		// smuggle a path into the name.
		s.fail(w, r, errorForm, fmt.Errorf("%w: repository name %q is percent-encoded", urlpath.ErrInvalid, name))
		return
	}
	rp, err := s.repos.Get(r.Context(), name)
	var mirror format.Mirror
	if owner != nil {
		mirror, _ = owner.Format.(format.Mirror)
	}
	if mirror != nil && errors.Is(err, repo.ErrNotFound) {
		// A registry mirror: the whole path is an image name of the
		// proxy repository the format picks.
		if mirrorName := mirror.MirrorRepository(r); mirrorName != "" {
			rp, err = s.repos.Get(r.Context(), mirrorName)
			rest, hasSlash = escaped, true
		}
	}
	if err != nil {
		s.fail(w, r, errorForm, err)
		return
	}
	ri.repo, ri.format = rp.Name, rp.Format
	f := s.formats[rp.Format]
	switch {
	case f == nil:
		s.fail(w, r, errorForm, fmt.Errorf("repository %s has format %q, which this arca does not serve",
			rp.Name, rp.Format))
		return
	case owner != nil && f != owner:
		s.fail(w, r, owner, fmt.Errorf("%w: repository %s is not of format %s", repo.ErrNotFound,
			rp.Name, owner.ID()))
		return
	}
	if !hasSlash {
		http.Redirect(w, r, s.BaseURL(r)+prefix+rp.Name+"/", http.StatusMovedPermanently)
		return
	}
	// An offline proxy still serves its cache: its format asks the proxy
	// service, which then only reads.
	if !rp.Online && !(rp.Type == repo.Proxy && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
		s.fail(w, r, f, fmt.Errorf("%s: %w", rp.Name, repo.ErrOffline))
		return
	}
	if err := checkEncodedSlash(f.Format, "/"+rest); err != nil {
		s.fail(w, r, f, err)
		return
	}
	user, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, f, err)
		return
	}
	decoded, err := url.PathUnescape(rest)
	if err != nil {
		s.fail(w, r, f, fmt.Errorf("%w: %w", urlpath.ErrInvalid, err))
		return
	}
	fr := &format.Request{Repo: rp, Path: decoded, User: user, BaseURL: s.BaseURL(r)}
	sub := r.WithContext(context.WithValue(r.Context(), formatRequestKey{}, fr))
	sub.URL = &url.URL{Path: "/" + decoded, RawPath: "/" + rest, RawQuery: r.URL.RawQuery}
	f.mux.ServeHTTP(w, sub)
}

// mountRoot registers a format's own URL space and its root routes on the
// top-level mux.
func (s *Server) mountRoot(mux *http.ServeMux, m *mountedFormat, rr format.RootRouter) {
	for _, rt := range rr.RootRoutes() {
		pattern := rt.Method + " " + rt.Pattern
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			info(r.Context()).route = pattern
			info(r.Context()).format = m.ID()
			user, err := s.authenticate(r)
			if err == nil {
				err = rt.Handle(w, &format.RootRequest{Request: r, User: user, BaseURL: s.BaseURL(r)})
			}
			if err != nil {
				s.fail(w, r, m, err)
			}
		})
	}
	mux.HandleFunc(rr.Prefix(), s.servePrefix(m, rr.Prefix()))
}

// checkEncodedSlash refuses a percent-encoded slash unless the format claims
// it for a name.
func checkEncodedSlash(f format.Format, escaped string) error {
	encoded, err := urlpath.Check(escaped)
	if err != nil || !encoded {
		return err
	}
	if sn, ok := f.(format.SlashNamer); ok && sn.ClaimsEncodedSlash(escaped) {
		return nil
	}
	return fmt.Errorf("%w: an encoded slash is not allowed in this path", urlpath.ErrInvalid)
}
