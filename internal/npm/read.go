package npm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"arca/internal/format"
	"arca/internal/repo"
)

// abbreviatedType is the media type of the abbreviated packument.
const abbreviatedType = "application/vnd.npm.install-v1+json"

// get answers a packument, a version document or a tarball.
func (f *Format) get(w http.ResponseWriter, r *format.Request) error {
	t, ok := parsePath(r.Path)
	if !ok || t.rev != "" {
		return fmt.Errorf("%w: no npm endpoint at %q", repo.ErrNotFound, r.Path)
	}
	if r.Repo.Type == repo.Proxy {
		return f.getProxied(w, r, t)
	}
	if r.Repo.Type == repo.Group && t.file == "" {
		return f.getGroup(w, r, t)
	}
	if t.file != "" {
		return f.tarball(w, r, t)
	}
	if t.rest == "" {
		abbreviated := strings.Contains(r.Header.Get("Accept"), abbreviatedType) &&
			r.URL.Query().Get("write") != "true"
		return f.servePackument(w, r, t.name, abbreviated)
	}
	_, d, err := f.load(r, t.name)
	if err != nil {
		return err
	}
	v := t.rest
	if tagged, ok := d.DistTags[v]; ok {
		v = tagged
	}
	m, ok := d.Versions[v]
	if !ok {
		return fmt.Errorf("%w: %s has no version or dist-tag %q", repo.ErrNotFound, t.name, t.rest)
	}
	return serveJSON(w, r, "application/json", withTarball(m, d.Name, r.RepositoryURL()))
}

// load reads a package that has versions.
func (f *Format) load(r *format.Request, name string) (repo.NpmPackage, *document, error) {
	pkg, err := f.repos.NpmPackage(r.Context(), r.Repo, name)
	if errors.Is(err, repo.ErrNotFound) {
		return pkg, nil, npmErr(http.StatusNotFound, "package %s not found", name)
	}
	if err != nil {
		return pkg, nil, err
	}
	d, err := loadDocument(&pkg)
	return pkg, d, err
}

// serveJSON answers v with a strong ETag of its bytes, and 304 when the
// client has them.
func serveJSON(w http.ResponseWriter, r *format.Request, ctype string, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	out, err := render(b)
	if err != nil {
		return err
	}
	serveRendered(w, r, ctype, out)
	return nil
}

// marshal encodes a document.
func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode npm document: %w", err)
	}
	return b, nil
}

// tarball serves a tarball with its checksums.
func (f *Format) tarball(w http.ResponseWriter, r *format.Request, t target) error {
	a, err := f.repos.Asset(r.Context(), r.Repo, tarballPath(t.name, t.file))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	return format.ServeAsset(w, r, f.repos, a)
}
