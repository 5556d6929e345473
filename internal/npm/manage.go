package npm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Masterminds/semver/v3"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/repo"
)

// update applies a packument sent back without attachments, as npm does
// for deprecate and for the unpublish of one version: deprecation messages
// are taken over, versions absent from it are unpublished, and its
// dist-tags replace the package's. Nothing else may change.
func (f *Format) update(w http.ResponseWriter, r *format.Request, t target, fields map[string]json.RawMessage) error {
	var versions map[string]manifest
	if err := json.Unmarshal(fields["versions"], &versions); err != nil || versions == nil {
		return npmErr(http.StatusBadRequest, "the document has no versions")
	}
	var tags map[string]string
	json.Unmarshal(fields["dist-tags"], &tags) //nolint:errcheck // tags are optional
	err := f.repos.UpdateNpmPackage(r.Context(), r.Repo, t.name, func(pkg *repo.NpmPackage) ([]string, error) {
		d, err := loadDocument(pkg)
		if err != nil {
			return nil, err
		}
		var remove []string
		for v, m := range d.Versions {
			in, ok := versions[v]
			if !ok {
				if err := f.mayDelete(r); err != nil {
					return nil, err
				}
				remove = append(remove, d.unpublish(v))
				continue
			}
			if dep := in.str("deprecated"); dep != "" {
				m["deprecated"], _ = json.Marshal(dep)
			} else {
				delete(m, "deprecated")
			}
		}
		for v := range versions {
			if _, ok := d.Versions[v]; !ok {
				return nil, npmErr(http.StatusBadRequest, "version %s of %s is not published here: publish it with its tarball", v, t.name)
			}
		}
		if tags != nil {
			d.DistTags = tags
		}
		d.fixTags()
		return remove, d.store(pkg)
	})
	if err != nil {
		return notFound(err, t.name)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"ok": true, "id": t.name})
}

// unpublish removes a version and returns its tarball's path.
func (d *document) unpublish(v string) string {
	delete(d.Versions, v)
	if d.Unpublished == nil {
		d.Unpublished = map[string]string{}
	}
	d.Unpublished[v] = now()
	return tarballPath(d.Name, tarballFile(d.Name, v))
}

// mayDelete checks that the caller may unpublish.
func (f *Format) mayDelete(r *format.Request) error {
	return auth.Authorize(r.User, auth.Target{Repository: r.Repo.Name}, auth.Delete)
}

// delete unpublishes a tarball's version (DELETE /{pkg}/-/{file}/-rev/{rev})
// or the whole package (DELETE /{pkg}/-rev/{rev}).
func (f *Format) delete(w http.ResponseWriter, r *format.Request) error {
	t, ok := parsePath(r.Path)
	if !ok || (t.file == "" && t.rev == "") || (t.rest != "" && t.rest != "-") {
		return fmt.Errorf("%w: no npm endpoint at %q", repo.ErrNotFound, r.Path)
	}
	err := f.repos.UpdateNpmPackage(r.Context(), r.Repo, t.name, func(pkg *repo.NpmPackage) ([]string, error) {
		d, err := loadDocument(pkg)
		if err != nil {
			return nil, err
		}
		var remove []string
		for v := range d.Versions {
			if t.file == "" || tarballFile(d.Name, v) == t.file {
				remove = append(remove, d.unpublish(v))
			}
		}
		if t.file != "" {
			remove = append(remove, tarballPath(t.name, t.file))
		}
		d.fixTags()
		return remove, d.store(pkg)
	})
	if err != nil {
		return notFound(err, t.name)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// notFound turns a missing package into npm's 404.
func notFound(err error, name string) error {
	if errorIsNotFound(err) {
		return npmErr(http.StatusNotFound, "package %s not found", name)
	}
	return err
}

// distTagsPath splits "-/package/{pkg}/dist-tags[/{tag}]".
func distTagsPath(p string) (name, tag string, ok bool) {
	p = strings.TrimPrefix(p, "-/package/")
	name, rest, found := strings.Cut(p, "/dist-tags")
	if !found || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return "", "", false
	}
	return name, strings.TrimPrefix(rest, "/"), true
}

// packageGet answers npm dist-tag ls.
func (f *Format) packageGet(w http.ResponseWriter, r *format.Request) error {
	name, tag, ok := distTagsPath(r.Path)
	if !ok {
		return unsupported("npm access")(w, r)
	}
	switch r.Repo.Type {
	case repo.Proxy:
		return f.proxiedTags(w, r, name, tag)
	case repo.Group:
		return f.groupTags(w, r, name, tag)
	}
	_, d, err := f.load(r, name)
	if err != nil {
		return err
	}
	if tag != "" {
		v, ok := d.DistTags[tag]
		if !ok {
			return npmErr(http.StatusNotFound, "%s has no dist-tag %s", name, tag)
		}
		return writeJSON(w, http.StatusOK, v)
	}
	return writeJSON(w, http.StatusOK, d.DistTags)
}

// packagePut answers npm dist-tag add: the body is the version, as a JSON
// string.
func (f *Format) packagePut(w http.ResponseWriter, r *format.Request) error {
	name, tag, ok := distTagsPath(r.Path)
	if !ok || tag == "" {
		return unsupported("npm access")(w, r)
	}
	if _, err := semver.NewVersion(tag); err == nil {
		return npmErr(http.StatusBadRequest, "dist-tag %q would look like a version", tag)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1024))
	if err != nil {
		return fmt.Errorf("read dist-tag: %w", err)
	}
	var version string
	if err := json.Unmarshal(b, &version); err != nil {
		return npmErr(http.StatusBadRequest, "the body must be a version as a JSON string")
	}
	return f.changeTags(w, r, name, func(d *document) error {
		if _, ok := d.Versions[version]; !ok {
			return npmErr(http.StatusBadRequest, "%s has no version %s", name, version)
		}
		d.DistTags[tag] = version
		return nil
	})
}

// packageDelete answers npm dist-tag rm.
func (f *Format) packageDelete(w http.ResponseWriter, r *format.Request) error {
	name, tag, ok := distTagsPath(r.Path)
	if !ok || tag == "" {
		return unsupported("npm access")(w, r)
	}
	return f.changeTags(w, r, name, func(d *document) error {
		if tag == "latest" {
			return npmErr(http.StatusBadRequest, "the latest dist-tag cannot be removed")
		}
		if _, ok := d.DistTags[tag]; !ok {
			return npmErr(http.StatusNotFound, "%s has no dist-tag %s", name, tag)
		}
		delete(d.DistTags, tag)
		return nil
	})
}

// changeTags changes a package's dist-tags and answers them.
func (f *Format) changeTags(w http.ResponseWriter, r *format.Request, name string, fn func(d *document) error) error {
	var tags map[string]string
	err := f.repos.UpdateNpmPackage(r.Context(), r.Repo, name, func(pkg *repo.NpmPackage) ([]string, error) {
		d, err := loadDocument(pkg)
		if err != nil {
			return nil, err
		}
		if err := fn(d); err != nil {
			return nil, err
		}
		tags = d.DistTags
		return nil, d.store(pkg)
	})
	if err != nil {
		return notFound(err, name)
	}
	return writeJSON(w, http.StatusOK, tags)
}
