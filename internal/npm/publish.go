package npm

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/Masterminds/semver/v3"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/repo"
)

// staged is the tarball of a publish, staged while the body streamed.
type staged struct {
	file    string
	blob    *blob.Staged
	pkgJSON struct{ Name, Version string }
	found   bool // package.json was found in the tarball
}

// put publishes a version, or, without attachments, updates a package's
// metadata (deprecate, unpublish of versions, dist-tags).
func (f *Format) put(w http.ResponseWriter, r *format.Request) error {
	t, ok := parsePath(r.Path)
	if !ok || t.rest != "" {
		return fmt.Errorf("%w: no npm endpoint at %q", repo.ErrNotFound, r.Path)
	}
	if err := checkName(t.name); err != nil {
		return err
	}
	body := http.MaxBytesReader(nil, r.Body, maxBodySize(r.Repo))
	var st *staged
	defer func() {
		if st != nil {
			st.blob.Abort() //nolint:errcheck // a no-op after Commit
		}
	}()
	fields, n, err := parseBody(body, func(file string, fields map[string]json.RawMessage, data io.Reader) error {
		if st != nil {
			return npmErr(http.StatusBadRequest, "publish one version, with one attachment, at a time")
		}
		// Refuse a known version before its bytes are transferred.
		if version, _, err := onlyVersion(fields["versions"]); err == nil {
			if err := f.checkNew(r, t.name, version); err != nil {
				return err
			}
		}
		var err error
		st, err = stageTarball(r.Context(), f.repos.Blobs(), file, data)
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return f.update(w, r, t, fields)
	}
	if st == nil {
		return npmErr(http.StatusBadRequest, "the attachment has no data")
	}
	return f.publish(w, r, t, fields, st)
}

// stageTarball streams a tarball into the blob store and, on the way, reads
// the package.json inside it.
func stageTarball(ctx context.Context, blobs *blob.Store, file string, data io.Reader) (*staged, error) {
	st := &staged{file: file}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.found = readPackageJSON(pr, &st.pkgJSON)
		io.Copy(io.Discard, pr) //nolint:errcheck // drains the pipe; the writer's error wins
	}()
	b, err := blobs.Stage(ctx, io.TeeReader(data, pw), blob.NoExpectation)
	pw.CloseWithError(err)
	<-done
	if err != nil {
		return nil, fmt.Errorf("stage tarball %s: %w", file, err)
	}
	st.blob = b
	return st, nil
}

// maxPackageJSON bounds the package.json read from a tarball.
const maxPackageJSON = 8 << 20

// readPackageJSON finds package.json at the top folder of a gzipped
// tarball ("package/package.json" as npm packs it) and decodes its name and
// version into into.
func readPackageJSON(r io.Reader, into any) bool {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return false
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		name := strings.TrimPrefix(path.Clean(h.Name), "/")
		dir, base := path.Split(name)
		if base != "package.json" || strings.Count(dir, "/") != 1 {
			continue
		}
		return json.NewDecoder(io.LimitReader(tr, maxPackageJSON)).Decode(into) == nil
	}
}

// publish checks a staged tarball against the document that came with it
// and records the version.
func (f *Format) publish(w http.ResponseWriter, r *format.Request, t target, fields map[string]json.RawMessage, st *staged) error {
	version, m, err := onlyVersion(fields["versions"])
	if err != nil {
		return err
	}
	if _, err := semver.StrictNewVersion(version); err != nil {
		return npmErr(http.StatusBadRequest, "version %q is not a valid semver version", version)
	}
	if n := m.str("name"); n != t.name || m.str("version") != version {
		return npmErr(http.StatusBadRequest, "the manifest of %q names %s@%s, not %s@%s",
			version, n, m.str("version"), t.name, version)
	}
	if name := decodeString(fields["name"]); name != "" && name != t.name {
		return npmErr(http.StatusBadRequest, "the document names %s, not %s", name, t.name)
	}
	if err := checkDigests(m, st.blob.Info()); err != nil {
		return err
	}
	if !st.found {
		return npmErr(http.StatusBadRequest,
			"the attachment is not a gzipped tarball with package/package.json, as npm pack makes")
	}
	if st.pkgJSON.Name != t.name || st.pkgJSON.Version != version {
		return npmErr(http.StatusBadRequest, "the tarball's package.json must name %s@%s (found %q@%q)",
			t.name, version, st.pkgJSON.Name, st.pkgJSON.Version)
	}
	if err := f.checkNew(r, t.name, version); err != nil {
		return err
	}
	var tags map[string]string
	json.Unmarshal(fields["dist-tags"], &tags) //nolint:errcheck // tags are optional
	readme := decodeString(fields["readme"])
	if readme == "" {
		readme = m.str("readme")
	}
	delete(m, "readme")
	delete(m, "_attachments")
	file := tarballFile(t.name, version)
	err = f.repos.PublishNpm(r.Context(), r.Repo, repo.NpmPublish{
		Name: t.name, Version: version, Path: tarballPath(t.name, file), Uploader: r.UserName(),
		Tarball: st.blob,
		Update: func(pkg *repo.NpmPackage) error {
			d, err := loadDocument(pkg)
			if err != nil {
				return err
			}
			stamp := now()
			d.Versions[version] = m
			d.Time[version] = stamp
			if d.Time["created"] == "" {
				d.Time["created"] = stamp
			}
			for tag, v := range tags {
				if v == version {
					d.DistTags[tag] = version
				}
			}
			if _, ok := d.DistTags["latest"]; !ok {
				d.DistTags["latest"] = version
			}
			if readme != "" {
				d.Readme = readme
			}
			return d.store(pkg)
		},
	})
	if errors.Is(err, repo.ErrExists) {
		return npmErr(http.StatusConflict, "%s@%s is being published by another request, or was published already", t.name, version)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"ok": true, "id": t.name, "success": true})
}

// onlyVersion returns the one version of a publish document.
func onlyVersion(raw json.RawMessage) (string, manifest, error) {
	var versions map[string]manifest
	if err := json.Unmarshal(raw, &versions); err != nil || len(versions) != 1 {
		return "", nil, npmErr(http.StatusBadRequest, "a publish must carry exactly one version")
	}
	for v, m := range versions {
		return v, m, nil
	}
	panic("unreachable")
}

// checkNew refuses a version that was ever published: 403, as npm's
// registry answers.
func (f *Format) checkNew(r *format.Request, name, version string) error {
	known, err := f.repos.NpmVersionKnown(r.Context(), r.Repo, name, version)
	if err != nil {
		return err
	}
	if known {
		return npmErr(http.StatusForbidden,
			"cannot publish over the previously published version %s of %s: a version is published only once, even after an unpublish",
			version, name)
	}
	return nil
}

// checkDigests compares the tarball with the manifest's dist.integrity
// (sha512) and dist.shasum (sha1); one of them is required.
func checkDigests(m manifest, got blob.Info) error {
	var dist struct {
		Integrity string `json:"integrity"`
		Shasum    string `json:"shasum"`
	}
	json.Unmarshal(m["dist"], &dist) //nolint:errcheck // checked below
	checked := false
	for _, sri := range strings.Fields(dist.Integrity) {
		alg, b64, ok := strings.Cut(sri, "-")
		if !ok || alg != "sha512" {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || hex.EncodeToString(sum) != got.SHA512 {
			return npmErr(http.StatusBadRequest, "integrity mismatch: the tarball's sha512 is %s",
				"sha512-"+hexToBase64(got.SHA512))
		}
		checked = true
	}
	if dist.Shasum != "" {
		if !strings.EqualFold(dist.Shasum, got.SHA1) {
			return npmErr(http.StatusBadRequest, "shasum mismatch: the tarball's sha1 is %s", got.SHA1)
		}
		checked = true
	}
	if !checked {
		return npmErr(http.StatusBadRequest, "the version's dist must give the tarball's sha512 integrity or sha1 shasum")
	}
	return nil
}

func hexToBase64(h string) string {
	b, _ := hex.DecodeString(h)
	return base64.StdEncoding.EncodeToString(b)
}

// decodeString returns a JSON string's value, "" when raw is not a string.
func decodeString(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s) //nolint:errcheck // "" when not a string
	return s
}
