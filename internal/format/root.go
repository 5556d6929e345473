package format

import (
	"context"
	"net/http"

	"arca/internal/auth"
)

// RootRouter is implemented by a format that also answers a URL space of its
// own besides /repository/{name}/, such as OCI's /v2/.
//
// Under Prefix, the first path segment names the repository, which must be
// of this format, and the rest of the path is handed to the format's Routes
// exactly as under /repository/{name}/: /v2/containers/team/app/tags/list
// reaches the routes of repository "containers" with Path
// "team/app/tags/list". RootRoutes answer the paths under Prefix that name
// no repository, such as /v2/ itself, /v2/_catalog and /v2/token.
type RootRouter interface {
	// Prefix is the URL space, with leading and trailing slashes: "/v2/".
	Prefix() string
	// RootRoutes are the endpoints under Prefix outside any repository.
	RootRoutes() []RootRoute
}

// Mirror is implemented by a RootRouter format that also serves, as a
// registry mirror, paths under its Prefix whose first segment names no
// repository: the whole path is then handed to the repository that
// MirrorRepository names ("" answers 404 as before).
type Mirror interface {
	MirrorRepository(r *http.Request) string
}

// RootRoute is an endpoint outside any repository. Pattern is a complete
// net/http.ServeMux path pattern, such as "/v2/{$}". The edge authenticates
// the caller but checks no permission: the handler decides.
type RootRoute struct {
	Method  string
	Pattern string
	Handle  func(w http.ResponseWriter, r *RootRequest) error
}

// RootRequest is what a root route handler receives.
type RootRequest struct {
	*http.Request
	// User is the caller, nil when anonymous.
	User *auth.Principal
	// BaseURL is the external URL of the server, without a trailing slash.
	BaseURL string
}

type baseURLKey struct{}

// WithBaseURL returns a context carrying the server's external URL. The edge
// sets it on every request, so that error writers, which see only the
// *http.Request, can build absolute URLs too (an OCI token realm).
func WithBaseURL(ctx context.Context, baseURL string) context.Context {
	return context.WithValue(ctx, baseURLKey{}, baseURL)
}

// BaseURL returns the external URL the edge put in ctx, without a trailing
// slash, or "" outside a request.
func BaseURL(ctx context.Context) string {
	s, _ := ctx.Value(baseURLKey{}).(string)
	return s
}
