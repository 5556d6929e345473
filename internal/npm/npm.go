// Package npm is the npm format: a registry that the npm, yarn and pnpm
// clients install from and publish to, at /repository/{name}/.
//
// A package's tarballs are assets at "<name>/-/<file>.tgz"; its metadata
// (each version's manifest, the dist-tags, the publication times and the
// unpublished versions) is one document kept by the repository service, from
// which the packument is generated with tarball links built from the base
// URL. Scoped names arrive as "@scope%2fname", which the format claims
// (format.SlashNamer); "@scope/name" works too.
//
// A proxy repository serves another registry's packages through the proxy
// cache instead (proxy.go): the upstream's packuments, rewritten so that
// tarballs are fetched through arca, and its tarballs, verified against
// the integrity the packuments publish.
package npm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// DefaultMaxBodySize is the largest publish request accepted unless the
// repository's "npm" settings say otherwise.
const DefaultMaxBodySize = 256 << 20

// Format serves npm repositories.
type Format struct {
	repos *repo.Service
	authn *auth.Service
	cache packumentCache
	// proxy is the cache of proxy repositories; nil when none is served.
	proxy *proxy.Service
}

var (
	_ format.Format     = (*Format)(nil)
	_ format.SlashNamer = (*Format)(nil)
)

// New returns the npm format over the repository and account services,
// with the cache of its proxy repositories (nil when it serves none).
func New(repos *repo.Service, authn *auth.Service, cache *proxy.Service) *Format {
	return &Format{repos: repos, authn: authn, proxy: cache}
}

// ID returns "npm".
func (f *Format) ID() string { return "npm" }

// Routes lists the registry endpoints. The "/-/" endpoints are more
// specific than the catch-alls, which parse package paths themselves since
// scoped names span two segments.
func (f *Format) Routes() []format.Route {
	return []format.Route{
		{Method: "GET", Pattern: "/-/ping", Permission: format.NoPermission, Handle: f.ping},
		{Method: "GET", Pattern: "/-/whoami", Permission: auth.Read, Handle: f.whoami},
		{Method: "PUT", Pattern: "/-/user/{user}", Permission: format.NoPermission, Handle: f.login},
		{Method: "GET", Pattern: "/-/user/{user}", Permission: auth.Read, Handle: unsupported("npm owner")},
		{Method: "POST", Pattern: "/-/v1/login", Permission: format.NoPermission, Handle: f.webLogin},
		{Method: "GET", Pattern: "/-/v1/search", Permission: auth.Read, Handle: f.search},
		{Method: "POST", Pattern: "/-/npm/v1/security/advisories/bulk", Permission: auth.Read, Handle: f.audit},
		{Method: "POST", Pattern: "/-/npm/v1/security/audits/quick", Permission: auth.Read, Handle: f.audit},
		{Method: "GET", Pattern: "/-/package/{path...}", Permission: auth.Read, Handle: f.packageGet},
		{Method: "PUT", Pattern: "/-/package/{path...}", Permission: auth.Write, Handle: f.packagePut},
		{Method: "POST", Pattern: "/-/package/{path...}", Permission: auth.Write, Handle: unsupported("npm access")},
		{Method: "DELETE", Pattern: "/-/package/{path...}", Permission: auth.Delete, Handle: f.packageDelete},
		{Method: "GET", Pattern: "/-/org/{path...}", Permission: auth.Read, Handle: unsupported("npm org")},
		{Method: "GET", Pattern: "/-/team/{path...}", Permission: auth.Read, Handle: unsupported("npm team")},
		{Method: "GET", Pattern: "/{path...}", Permission: auth.Read, Handle: f.get},
		{Method: "PUT", Pattern: "/{path...}", Permission: auth.Write, Handle: f.put},
		{Method: "DELETE", Pattern: "/{path...}", Permission: auth.Delete, Handle: f.delete},
	}
}

// Classify says that tarballs are artifacts; everything else is generated.
func (f *Format) Classify(p string) format.Kind {
	if t, ok := parsePath(p); ok && t.file != "" && t.rev == "" {
		return format.Artifact
	}
	return format.Metadata
}

// settings is the "npm" section of a repository definition.
type settings struct {
	// MaxBodySize bounds a publish request, in bytes.
	MaxBodySize int64 `json:"maxBodySize"`
}

// ValidateSettings checks the "npm" section: only known keys, a positive
// body size.
func (f *Format) ValidateSettings(r *repo.Repository, raw json.RawMessage) error {
	var s settings
	if err := repo.DecodeSection("npm", raw, &s); err != nil {
		return err
	}
	if s.MaxBodySize < 0 {
		return fmt.Errorf("%w: npm settings: maxBodySize must not be negative", repo.ErrInvalid)
	}
	return nil
}

// maxBodySize is the repository's publish limit.
func maxBodySize(r *repo.Repository) int64 {
	var s settings
	if raw := r.Sections["npm"]; raw != nil {
		json.Unmarshal(raw, &s) //nolint:errcheck // validated by ValidateSettings
	}
	if s.MaxBodySize > 0 {
		return s.MaxBodySize
	}
	return DefaultMaxBodySize
}

// WriteError writes {"error":"..."}, which npm shows after the status.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, p format.Problem) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(map[string]string{"error": p.Message}) //nolint:errcheck // the client went away
}

// encodedScope is an escaped path whose first segment (or the one after
// "-/package/") is a scoped name with its slash encoded.
var encodedScope = regexp.MustCompile(`^/(-/package/)?@[^/%]+%2[fF][^/%]+(/|$)`)

// ClaimsEncodedSlash claims "@scope%2fname" as the first segment of a
// package path.
func (f *Format) ClaimsEncodedSlash(escapedPath string) bool {
	return encodedScope.MatchString(escapedPath)
}

// validName follows npm's rules for new package names: lower case, URL-safe,
// not starting with "." or "_", an optional scope.
var validName = regexp.MustCompile(`^(@[a-z0-9~][a-z0-9._~-]*/)?[a-z0-9~][a-z0-9._~-]*$`)

// checkName refuses names npm would not publish.
func checkName(name string) error {
	if len(name) > 214 || !validName.MatchString(name) || name == "node_modules" || name == "favicon.ico" {
		return npmErr(http.StatusBadRequest, "invalid package name %q", name)
	}
	return nil
}

// target is a parsed package path.
type target struct {
	name string // the package name, "@scope/name" for scoped ones
	// rest is what follows the name: "" for the packument, a version or
	// dist-tag, or "-" when a file follows.
	rest string
	file string // the tarball's file name after "/-/"
	rev  string // the revision after "/-rev/"
}

// parsePath splits a decoded path: name, name/{version-or-tag},
// name/-/{file}, name/-rev/{rev}, name/-/{file}/-rev/{rev}.
func parsePath(p string) (target, bool) {
	segs := strings.Split(p, "/")
	var t target
	n := 1
	if strings.HasPrefix(p, "@") {
		n = 2
	}
	if len(segs) < n || segs[0] == "" || segs[n-1] == "" {
		return t, false
	}
	t.name = strings.Join(segs[:n], "/")
	segs = segs[n:]
	switch {
	case len(segs) == 0:
	case len(segs) == 1 && segs[0] != "-" && segs[0] != "-rev":
		t.rest = segs[0]
	case len(segs) == 2 && segs[0] == "-rev":
		t.rev = segs[1]
	case len(segs) == 2 && segs[0] == "-" && segs[1] != "":
		t.rest, t.file = "-", segs[1]
	case len(segs) == 4 && segs[0] == "-" && segs[1] != "" && segs[2] == "-rev":
		t.rest, t.file, t.rev = "-", segs[1], segs[3]
	default:
		return t, false
	}
	return t, true
}

// npmErr is an error with its own status, shown to the client.
func npmErr(status int, msg string, args ...any) error {
	return &format.Error{Status: status, Code: http.StatusText(status), Message: fmt.Sprintf(msg, args...)}
}

// unsupported answers an npm command arca does not implement.
func unsupported(what string) func(http.ResponseWriter, *format.Request) error {
	return func(w http.ResponseWriter, r *format.Request) error {
		return npmErr(http.StatusBadRequest, "%s is not supported by arca; grant permissions per repository instead", what)
	}
}

// writeJSON answers v as JSON with a status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client went away
	return nil
}
