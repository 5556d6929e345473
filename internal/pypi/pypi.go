// Package pypi is the PyPI format: a package index that twine uploads to
// (the legacy upload API, POST /repository/{name}/) and pip installs from
// (the simple repository API, /repository/{name}/simple/, as PEP 503 HTML
// and PEP 691 JSON with PEP 700's fields).
//
// Each distribution file is an asset at
// "packages/{project}/{version}/{filename}" under the component (normalized
// project, normalized version); its core metadata, from the upload form's
// fields, is a row the repository service keeps next to it. A proxy
// repository serves the same URLs from its upstream's pages and files
// (proxy.go).
package pypi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// DefaultMaxUploadSize is the largest upload request accepted unless the
// repository's "pypi" settings say otherwise.
const DefaultMaxUploadSize = 1 << 30

// Format serves PyPI repositories.
type Format struct {
	repos *repo.Service
	// cache is the cache of proxy repositories; nil when none is served.
	cache *proxy.Service
}

var _ format.Format = (*Format)(nil)

// New returns the PyPI format over the repository service, with the cache
// of its proxy repositories (nil when it serves none).
func New(repos *repo.Service, cache *proxy.Service) *Format {
	return &Format{repos: repos, cache: cache}
}

// ID returns "pypi".
func (f *Format) ID() string { return "pypi" }

// Routes lists the upload endpoint, the simple API, the JSON API and the
// file downloads.
func (f *Format) Routes() []format.Route {
	return []format.Route{
		{Method: "POST", Pattern: "/{$}", Permission: auth.Write, Handle: f.upload},
		{Method: "GET", Pattern: "/simple/{$}", Permission: auth.Read, Handle: f.index},
		{Method: "GET", Pattern: "/simple/{project}/{$}", Permission: auth.Read, Handle: f.project},
		{Method: "GET", Pattern: "/simple/{project}", Permission: auth.Read, Handle: f.project},
		{Method: "GET", Pattern: "/pypi/{project}/json", Permission: auth.Read, Handle: f.jsonProject},
		{Method: "GET", Pattern: "/pypi/{project}/{version}/json", Permission: auth.Read, Handle: f.jsonRelease},
		{Method: "GET", Pattern: "/packages/{project}/{version}/{filename}", Permission: auth.Read, Handle: f.download},
	}
}

// Classify says that distribution files are artifacts; index pages are
// generated.
func (f *Format) Classify(p string) format.Kind {
	if strings.HasPrefix(p, "packages/") && !strings.HasSuffix(p, "/") {
		return format.Artifact
	}
	return format.Metadata
}

// settings is the "pypi" section of a repository definition.
type settings struct {
	// MaxUploadSize bounds an upload request, in bytes.
	MaxUploadSize int64 `json:"maxUploadSize"`
}

// ValidateSettings checks the "pypi" section: only known keys, a
// non-negative upload size.
func (f *Format) ValidateSettings(r *repo.Repository, raw json.RawMessage) error {
	var s settings
	if err := repo.DecodeSection("pypi", raw, &s); err != nil {
		return err
	}
	if s.MaxUploadSize < 0 {
		return fmt.Errorf("%w: pypi settings: maxUploadSize must not be negative", repo.ErrInvalid)
	}
	return nil
}

// maxUploadSize is the repository's upload limit.
func maxUploadSize(r *repo.Repository) int64 {
	var s settings
	if raw := r.Sections["pypi"]; raw != nil {
		json.Unmarshal(raw, &s) //nolint:errcheck // validated by ValidateSettings
	}
	if s.MaxUploadSize > 0 {
		return s.MaxUploadSize
	}
	return DefaultMaxUploadSize
}

// WriteError writes the message as plain text, which twine shows with
// --verbose and pip in its log.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, p format.Problem) {
	format.WritePlainError(w, p)
}

// pypiErr is an error with its own status, shown to the client.
func pypiErr(status int, msg string, args ...any) error {
	return &format.Error{Status: status, Code: strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")),
		Message: fmt.Sprintf(msg, args...)}
}
