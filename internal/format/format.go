// Package format defines what a package format (raw, oci, npm, pypi, maven,
// ...) provides to arca, and what it receives on every request.
//
// A format is one package that implements Format and is listed once, in
// cmd/arca. The HTTP edge validates the path, finds the repository, checks
// that it is online, authenticates the caller, matches the format's routes,
// checks the route's permission and only then calls the route's handler.
// Handlers return errors; the edge turns them into a Problem once, and the
// format writes that Problem in its clients' error form.
package format

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"arca/internal/auth"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// Format is one package format.
type Format interface {
	// ID is the format's id in repository definitions, e.g. "raw".
	ID() string
	// Routes lists the format's endpoints under /repository/{name}/.
	Routes() []Route
	// Classify tells what kind of content a repository path holds, so that
	// proxy and group repositories can cache, merge and rewrite it without
	// knowing the format.
	Classify(path string) Kind
	// ValidateSettings checks the format's section of a repository
	// definition ("raw": {...}); raw is nil when there is none.
	ValidateSettings(r *repo.Repository, raw json.RawMessage) error
	// WriteError writes a problem in the form the format's clients expect.
	WriteError(w http.ResponseWriter, r *http.Request, p Problem)
}

// Kind is what a path holds.
type Kind int

// Kinds of content.
const (
	// Artifact content never changes once written: the write policy
	// guards it, and a proxy fetches it once.
	Artifact Kind = iota
	// Metadata is generated or can change: a proxy revalidates it after
	// its maximum age, and a group merges it.
	Metadata
)

// Route is one endpoint. Method and Pattern follow net/http.ServeMux syntax
// and are matched against the path after /repository/{name}; a GET route
// also answers HEAD. An empty Permission (NoPermission) lets every caller
// reach the handler, which then checks access itself: a login endpoint,
// which checks the credentials in its body.
type Route struct {
	Method     string
	Pattern    string
	Permission auth.Permission
	Handle     func(w http.ResponseWriter, r *Request) error
}

// NoPermission marks a route whose handler checks access itself.
const NoPermission auth.Permission = ""

// Request is what a route handler receives.
type Request struct {
	*http.Request
	// Repo is the repository addressed, with its type and settings.
	Repo *repo.Repository
	// Path is the decoded path after /repository/{name}/, without the
	// leading slash; "" is the repository's root.
	Path string
	// User is the caller, nil when anonymous.
	User *auth.Principal
	// BaseURL is the external URL of the server, without a trailing slash,
	// from which every absolute link must be built.
	BaseURL string
	// Members are, when Repo is a group and the format merges the path
	// (Merger), the requests for the members the caller may read, in the
	// group's order; a member that is a group has Members of its own.
	Members []*Request
	// Group is, for a write that came through a group to its write member
	// (Repo), the group's request, with Members the caller may read: a
	// format may let the write use what those members hold (an OCI push
	// whose manifest names a layer the group served from another member).
	Group *Request
}

// Merger is implemented by formats that merge the metadata of a group's
// members (a package document, an index page). For a read of a group
// repository whose path Merges accepts, the edge calls the route's handler
// with the group in Repo and its readable members in Members. Every other
// read of a group is answered by the first member that has the path, and
// writes go to the group's write member.
type Merger interface {
	Merges(r *http.Request, path string) bool
}

// MergeKeeper is implemented by a Merger whose merged answers the edge may
// keep and answer again while no member has changed and what proxy members
// said still holds. The edge keys a kept answer by the group, the path and
// query, the caller, the members the caller may read, the base URL and the
// Accept and Accept-Encoding headers; MergeVariant adds what else the
// answer depends on, and returns ok false for an answer that must be
// computed each time.
type MergeKeeper interface {
	MergeVariant(r *http.Request, path string) (variant string, ok bool)
}

// RepositoryURL is the absolute URL of the repository's root, ending in "/".
func (r *Request) RepositoryURL() string {
	return r.BaseURL + "/repository/" + r.Repo.Name + "/"
}

// UserName is the caller's name, or "anonymous".
func (r *Request) UserName() string {
	if r.User == nil {
		return "anonymous"
	}
	return r.User.Name
}

// Problem is an error as the edge classified it.
type Problem struct {
	// Status is the HTTP status to answer.
	Status int
	// Code is a short upper-case class such as NOT_FOUND, for formats whose
	// clients expect codes; formats may translate it.
	Code string
	// Message is safe to show to the client.
	Message string
}

// Error is returned by handlers for a protocol-specific error that the
// edge's table does not know: it carries its own status and code.
type Error struct {
	Status  int
	Code    string
	Message string
	// Err is the cause, logged but never shown to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err says that an item is absent, in the
// repository service's terms or a format's own 404: the answer of a group
// member that lacks what was asked, so that the next member is tried.
func IsNotFound(err error) bool {
	var fe *Error
	return errors.Is(err, repo.ErrNotFound) || errors.As(err, &fe) && fe.Status == http.StatusNotFound
}

// IsUnavailable reports whether err says that a repository could not
// answer at all: its upstream failed, or it is offline. A group passes
// over such a member, with a warning, while another can answer.
func IsUnavailable(err error) bool {
	return errors.Is(err, proxy.ErrUpstream) || errors.Is(err, repo.ErrOffline)
}

// WantsRevalidation reports whether a request's Cache-Control asks that
// nothing kept be answered without checking it again (no-cache, or
// max-age=0, which pip sends for every index page).
func WantsRevalidation(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-cache" || d == "max-age=0" {
				return true
			}
		}
	}
	return false
}
