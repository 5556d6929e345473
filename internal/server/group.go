package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// maxGroupDepth bounds the nesting of groups a request walks; the
// repository service refuses cycles, so this only guards against a store
// edited by hand.
const maxGroupDepth = 8

// serveGroup answers a request to a group repository. Writes go to the
// group's write member, with the caller's permissions there. Reads the
// format merges (format.Merger) reach the handler with the members the
// caller may read; every other read is answered by the first of them that
// has the path.
func (s *Server) serveGroup(w http.ResponseWriter, r *http.Request, m *mountedFormat, rt format.Route, fr *format.Request) {
	switch rt.Permission {
	case auth.Write, auth.Delete:
		s.writeThroughGroup(w, r, m, rt, fr)
		return
	case format.NoPermission:
		if err := rt.Handle(w, fr); err != nil {
			s.fail(w, r, m, err)
		}
		return
	}
	target := auth.Target{Repository: fr.Repo.Name, AnonymousRead: fr.Repo.AnonymousRead}
	if err := auth.Authorize(fr.User, target, rt.Permission); err != nil {
		s.fail(w, r, m, err)
		return
	}
	merger, merges := m.Format.(format.Merger)
	merges = merges && merger.Merges(r, fr.Path)
	var fresh *proxy.Freshness
	if merges {
		// The members' requests share this context: their proxy reads
		// say how long a merged view holds.
		var ctx context.Context
		ctx, fresh = proxy.WithFreshness(fr.Context())
		fr.Request = fr.Request.WithContext(ctx)
	}
	members, err := s.memberRequests(fr, fr.Repo.Name, 0)
	if err != nil {
		s.fail(w, r, m, err)
		return
	}
	if merges {
		fr.Members = members
		err = s.serveMerged(w, rt, fr, m, fresh)
	} else {
		err = s.firstMember(w, rt, fr, members)
	}
	if err != nil {
		s.fail(w, r, m, err)
	}
}

// writeThroughGroup hands a write to the group's write member.
func (s *Server) writeThroughGroup(w http.ResponseWriter, r *http.Request, m *mountedFormat, rt format.Route, fr *format.Request) {
	g, err := repo.GroupSettingsOf(fr.Repo)
	if err == nil && g.WriteMember == "" {
		err = &format.Error{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED",
			Message: fmt.Sprintf("group repository %s has no writeMember, so it takes no uploads or deletions: publish to one of its hosted members, or set group.writeMember",
				fr.Repo.Name)}
	}
	var member *repo.Repository
	if err == nil {
		member, err = s.repos.Get(r.Context(), g.WriteMember)
	}
	if err != nil {
		s.fail(w, r, m, err)
		return
	}
	sub := *fr
	sub.Repo = member
	target := auth.Target{Repository: member.Name, AnonymousRead: member.AnonymousRead, Via: fr.Repo.Name}
	if err := auth.Authorize(fr.User, target, rt.Permission); err != nil {
		s.fail(w, r, m, err)
		s.auditRequest(w, r, "artifact."+string(rt.Permission), member.Name, fr.Path)
		return
	}
	// The other members only help (an OCI push naming layers they hold):
	// a write that cannot list them goes on without.
	if sub.Group, err = s.readableGroup(fr); err != nil {
		s.log.WarnContext(r.Context(), "group members unavailable to a write", "group", fr.Repo.Name, "error", err)
		sub.Group = nil
	}
	if err := rt.Handle(w, &sub); err != nil {
		s.fail(w, r, m, err)
	}
	s.auditRequest(w, r, "artifact."+string(rt.Permission), member.Name, fr.Path)
}

// readableGroup returns a copy of the group's request with the members the
// caller may read.
func (s *Server) readableGroup(fr *format.Request) (*format.Request, error) {
	g := *fr
	members, err := s.memberRequests(fr, fr.Repo.Name, 0)
	if err != nil {
		return nil, err
	}
	g.Members = members
	return &g, nil
}

// memberRequests returns the requests for the members of fr's group that
// the caller may read, in order, with those of nested groups below them.
// via is the group the client addressed, whose name a registry token's
// scope carries.
func (s *Server) memberRequests(fr *format.Request, via string, depth int) ([]*format.Request, error) {
	if depth > maxGroupDepth {
		return nil, fmt.Errorf("group %s: groups nested more than %d deep", fr.Repo.Name, maxGroupDepth)
	}
	g, err := repo.GroupSettingsOf(fr.Repo)
	if err != nil {
		return nil, err
	}
	var out []*format.Request
	for _, name := range g.Members {
		member, err := s.repos.Get(fr.Context(), name)
		if err != nil {
			return nil, fmt.Errorf("member %s of group %s: %w", name, fr.Repo.Name, err)
		}
		// A member the caller may not read is left out, as if absent.
		target := auth.Target{Repository: member.Name, AnonymousRead: member.AnonymousRead, Via: via}
		if auth.Authorize(fr.User, target, auth.Read) != nil {
			continue
		}
		sub := *fr
		sub.Repo, sub.Members = member, nil
		if member.Type == repo.Group {
			if sub.Members, err = s.memberRequests(&sub, via, depth+1); err != nil {
				return nil, err
			}
		}
		out = append(out, &sub)
	}
	return out, nil
}

// firstMember answers a read from the first member that has the path. A
// member that answers not found is passed over; so is one that fails (an
// unreachable proxy, an offline repository), with a warning, unless no
// member answers: then the failure is the answer.
func (s *Server) firstMember(w http.ResponseWriter, rt format.Route, fr *format.Request, members []*format.Request) error {
	err := fmt.Errorf("no member of group %s that you may read has %s: %w", fr.Repo.Name, fr.Path, repo.ErrNotFound)
	for _, sub := range members {
		var tried error
		if sub.Repo.Type == repo.Group {
			tried = s.firstMember(w, rt, sub, sub.Members)
		} else {
			tried = s.tryMember(w, rt, sub)
		}
		switch {
		case tried == nil:
			return nil
		case errors.Is(tried, errAnswered):
			return tried
		case format.IsNotFound(tried):
			continue
		case format.IsUnavailable(tried):
			s.log.WarnContext(fr.Context(), "group member skipped", "group", fr.Repo.Name,
				"member", sub.Repo.Name, "path", fr.Path, "error", tried)
			err = tried
			continue
		}
		return tried
	}
	return err
}

// errAnswered marks the failure of a member that had already begun its
// answer: no other member may be tried.
var errAnswered = errors.New("member answered")

// tryMember runs the handler for one member. When it fails before
// answering, the headers it set are taken back for the next member.
func (s *Server) tryMember(w http.ResponseWriter, rt format.Route, sub *format.Request) error {
	if !sub.Repo.Online && sub.Repo.Type != repo.Proxy {
		return fmt.Errorf("%s: %w", sub.Repo.Name, repo.ErrOffline)
	}
	saved := w.Header().Clone()
	err := rt.Handle(w, sub)
	if err == nil {
		return nil
	}
	if rec, ok := w.(*recorder); ok && rec.wroteHeader() {
		return fmt.Errorf("%w: %w", errAnswered, err)
	}
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	for k, v := range saved {
		h[k] = v
	}
	return err
}
