// Package raw is the raw format: plain files at any path of a repository,
// uploaded with PUT and downloaded with GET, with checksums, conditional and
// range requests, and folder listings.
package raw

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// Format serves raw repositories.
type Format struct {
	repos *repo.Service
	cache *proxy.Service
}

var _ format.Format = (*Format)(nil)

// New returns the raw format over the repository service, with the cache
// of its proxy repositories (nil when it serves none).
func New(repos *repo.Service, cache *proxy.Service) *Format {
	return &Format{repos: repos, cache: cache}
}

// ID returns "raw".
func (f *Format) ID() string { return "raw" }

// Routes lists the raw endpoints: every path is a file, and a path ending in
// "/" is a folder.
func (f *Format) Routes() []format.Route {
	return []format.Route{
		{Method: "GET", Pattern: "/{path...}", Permission: auth.Read, Handle: f.get},
		{Method: "PUT", Pattern: "/{path...}", Permission: auth.Write, Handle: f.put},
		{Method: "DELETE", Pattern: "/{path...}", Permission: auth.Delete, Handle: f.delete},
	}
}

// Classify says that every file is an artifact; folder listings are
// generated.
func (f *Format) Classify(p string) format.Kind {
	if p == "" || strings.HasSuffix(p, "/") {
		return format.Metadata
	}
	return format.Artifact
}

// ValidateSettings accepts no settings section: raw has none.
func (f *Format) ValidateSettings(r *repo.Repository, raw json.RawMessage) error {
	if raw != nil {
		return fmt.Errorf("%w: raw repositories have no \"raw\" settings", repo.ErrInvalid)
	}
	return nil
}

// WriteError writes arca's JSON error document.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, p format.Problem) {
	format.WriteJSONError(w, p)
}

// get serves a file, or lists a folder when the path ends in "/".
func (f *Format) get(w http.ResponseWriter, r *format.Request) error {
	if f.Classify(r.Path) == format.Metadata {
		return f.list(w, r)
	}
	if r.Repo.Type == repo.Proxy {
		// Raw files may change upstream: they are revalidated after
		// metadataMaxAge, with the upstream's ETag.
		// A range of a file not yet cached is served once the download
		// is complete, so that it can be answered with 206.
		resp, err := f.cache.Get(r.Context(), r.Repo, proxy.Item{Path: r.Path, Mutable: true,
			ContentType: contentType("", r.Path), Whole: r.Header.Get("Range") != ""})
		if err != nil {
			return err
		}
		return format.ServeProxied(w, r, f.repos, resp)
	}
	a, err := f.repos.Asset(r.Context(), r.Repo, r.Path)
	if err != nil {
		return err
	}
	return format.ServeAsset(w, r, f.repos, a)
}

// put stores a file, checking any X-Checksum-* header the client sent.
func (f *Format) put(w http.ResponseWriter, r *format.Request) error {
	if r.Path == "" || strings.HasSuffix(r.Path, "/") {
		return fmt.Errorf("%w: a file path must not end in \"/\"", repo.ErrInvalid)
	}
	want, err := format.AnnouncedDigests(r.Header)
	if err != nil {
		return err
	}
	want.Size = r.ContentLength // -1 when unknown
	a, err := f.repos.PutAsset(r.Context(), r.Repo, r.Body, repo.PutOptions{
		Path:        r.Path,
		ContentType: contentType(r.Header.Get("Content-Type"), r.Path),
		Uploader:    r.UserName(),
		Expect:      want,
		Immutable:   true,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", r.RepositoryURL()+escapePath(a.Path))
	w.Header().Set("ETag", `"`+a.Blob.SHA256+`"`)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (f *Format) delete(w http.ResponseWriter, r *format.Request) error {
	if err := f.repos.DeleteAsset(r.Context(), r.Repo, r.Path); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// contentType keeps a meaningful type the client sent, or guesses one from
// the file name.
func contentType(sent, p string) string {
	if mt, _, err := mime.ParseMediaType(sent); err == nil &&
		mt != "application/x-www-form-urlencoded" {
		return sent
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// escapePath percent-encodes each segment of a decoded path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
