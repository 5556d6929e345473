package pypi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/repo"
)

// maxField bounds one form field other than the file (a long description).
const maxField = 4 << 20

// listFields are the form fields that may repeat.
var listFields = map[string]bool{
	"classifiers": true, "requires_dist": true, "provides_dist": true, "obsoletes_dist": true,
	"requires_external": true, "project_urls": true, "provides_extra": true, "dynamic": true,
	"license_files": true, "platform": true, "supported_platform": true,
}

// keptFields are the core metadata fields kept with each file.
var keptFields = []string{
	"metadata_version", "summary", "description", "description_content_type", "license",
	"license_expression", "keywords", "home_page", "download_url", "author", "author_email",
	"maintainer", "maintainer_email", "requires_python", "pyversion", "filetype",
	"classifiers", "requires_dist", "provides_dist", "obsoletes_dist", "requires_external",
	"project_urls", "provides_extra", "license_files", "platform", "supported_platform", "dynamic",
}

// upload is the legacy upload API: a multipart form with ":action" =
// "file_upload", the file as "content", its name and version, its digests
// and its core metadata.
func (f *Format) upload(w http.ResponseWriter, r *format.Request) error {
	ctx := r.Context()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return pypiErr(http.StatusBadRequest, "an upload is a multipart/form-data form")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadSize(r.Repo))
	mr, err := r.MultipartReader()
	if err != nil {
		return pypiErr(http.StatusBadRequest, "invalid multipart form: %v", err)
	}
	fields := map[string][]string{}
	var staged *blob.Staged
	var filename string
	var dist Dist
	var distFile *os.File // a copy of the file, to read its metadata from
	defer func() {
		if staged != nil {
			staged.Abort() //nolint:errcheck // a no-op after Commit
		}
		if distFile != nil {
			distFile.Close()
			os.Remove(distFile.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return formErr(err)
		}
		name := part.FormName()
		if name == "content" {
			if staged != nil {
				return pypiErr(http.StatusBadRequest, "the form has more than one file")
			}
			filename = part.FileName()
			if dist, err = ParseFilename(filename); err != nil {
				return pypiErr(http.StatusBadRequest, "%v", err)
			}
			if err := f.repos.CheckPyPIWrite(ctx, r.Repo, filename); err != nil {
				return writeErr(err, filename)
			}
			// A copy of the file, to read its METADATA (wheel) or
			// PKG-INFO (sdist) from.
			if distFile, err = os.CreateTemp("", "arca-dist-*"); err != nil {
				return err
			}
			body := io.TeeReader(part, distFile)
			if staged, err = f.repos.Blobs().Stage(ctx, body, blob.NoExpectation); err != nil {
				return formErr(err)
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, maxField+1))
		if err != nil {
			return formErr(err)
		}
		if len(b) > maxField {
			return pypiErr(http.StatusBadRequest, "form field %q is too large", name)
		}
		fields[name] = append(fields[name], string(b))
	}
	one := func(k string) string {
		if v := fields[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}

	if a := one(":action"); a != "file_upload" {
		return pypiErr(http.StatusBadRequest, "unsupported :action %q: only file_upload is", a)
	}
	if staged == nil {
		return pypiErr(http.StatusBadRequest, "the form has no file in the \"content\" field")
	}
	name, version := one("name"), one("version")
	if !ValidProject(name) {
		return pypiErr(http.StatusBadRequest, "invalid project name %q", name)
	}
	normVersion, err := NormalizeVersion(version)
	if err != nil {
		return pypiErr(http.StatusBadRequest, "%v", err)
	}
	project := Normalize(name)
	if Normalize(dist.Name) != project {
		return pypiErr(http.StatusBadRequest, "file name %s names project %s, but the form says %s", filename, dist.Name, name)
	}
	if v, _ := NormalizeVersion(dist.Version); v != normVersion {
		return pypiErr(http.StatusBadRequest, "file name %s names version %s, but the form says %s", filename, dist.Version, version)
	}
	if ft := one("filetype"); ft != "" && ft != dist.Kind {
		return pypiErr(http.StatusBadRequest, "file %s is a %s, but the form's filetype says %s", filename, dist.Kind, ft)
	}
	info := staged.Info()
	sha, md5 := strings.ToLower(one("sha256_digest")), strings.ToLower(one("md5_digest"))
	if sha == "" && md5 == "" {
		return pypiErr(http.StatusBadRequest, "the form has neither sha256_digest nor md5_digest")
	}
	if sha != "" && subtle.ConstantTimeCompare([]byte(sha), []byte(info.SHA256)) != 1 {
		return pypiErr(http.StatusBadRequest, "sha256_digest %s does not match the file's SHA-256 %s", sha, info.SHA256)
	}
	if md5 != "" && subtle.ConstantTimeCompare([]byte(md5), []byte(info.MD5)) != 1 {
		return pypiErr(http.StatusBadRequest, "md5_digest %s does not match the file's MD5 %s", md5, info.MD5)
	}

	// The file's own metadata (a wheel's METADATA, an sdist's PKG-INFO)
	// must name the same project and version; it fills the fields the form
	// lacks. A wheel's METADATA is served as the PEP 658 file.
	var core []byte
	if dist.Kind == "bdist_wheel" {
		if core, err = wheelMetadata(distFile, info.Size); err != nil {
			return pypiErr(http.StatusBadRequest, "%s: %v", filename, err)
		}
		if err := checkCoreMetadata(core, "METADATA", filename, name, project, version, normVersion, fields); err != nil {
			return err
		}
	} else {
		// Every sdist tool since setuptools' first writes PKG-INFO at the
		// top folder: a file without one is no sdist pip could build.
		pkgInfo, err := sdistMetadata(distFile, info.Size, filename)
		switch {
		case errors.Is(err, errNoPKGInfo):
			return pypiErr(http.StatusBadRequest,
				"%s is not an sdist: it is no readable archive with PKG-INFO in its top folder", filename)
		case err != nil:
			return pypiErr(http.StatusBadRequest, "%s: %v", filename, err)
		default:
			if err := checkCoreMetadata(pkgInfo, "PKG-INFO", filename, name, project, version, normVersion, fields); err != nil {
				return err
			}
		}
	}

	md := map[string]any{"name": name, "version": version}
	if core != nil {
		md[coreMetadataKey] = string(core)
	}
	for _, k := range keptFields {
		v := fields[k]
		switch {
		case len(v) == 0:
		case listFields[k]:
			md[k] = v
		default:
			md[k] = v[0]
		}
	}
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return err
	}
	file := repo.PyPIFile{
		Filename:       filename,
		Project:        project,
		Version:        normVersion,
		Path:           "packages/" + project + "/" + normVersion + "/" + filename,
		RequiresPython: one("requires_python"),
		Metadata:       mdJSON,
		Uploader:       r.UserName(),
	}
	if _, err := f.repos.PutPyPIFile(ctx, r.Repo, repo.PyPIUpload{File: file, Staged: staged,
		ContentType: contentType(filename)}); err != nil {
		return writeErr(err, filename)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "OK\n") //nolint:errcheck // the client went away
	return nil
}

// checkCoreMetadata parses a file's core metadata (what names the file it
// came from, METADATA or PKG-INFO), checks that it names the form's project
// and version, normalized, and fills the form's missing fields from it.
func checkCoreMetadata(b []byte, what, filename, name, project, version, normVersion string, fields map[string][]string) error {
	cm, err := parseCoreMetadata(b)
	if err != nil {
		return pypiErr(http.StatusBadRequest, "%s: its %s: %v", filename, what, err)
	}
	if n := cm.get("Name"); Normalize(n) != project {
		return pypiErr(http.StatusBadRequest, "%s: its %s names project %q, but the form says %s", filename, what, n, name)
	}
	if v, _ := NormalizeVersion(cm.get("Version")); v != normVersion {
		return pypiErr(http.StatusBadRequest, "%s: its %s names version %q, but the form says %s", filename, what, cm.get("Version"), version)
	}
	cm.fillFields(fields)
	return nil
}

// writeErr turns the write policy's refusal of an existing file into the
// 400 that twine and PyPI clients expect.
func writeErr(err error, filename string) error {
	if errors.Is(err, repo.ErrExists) {
		return pypiErr(http.StatusBadRequest,
			"File already exists: %s. A file name can be uploaded only once; upload a new version instead.", filename)
	}
	return err
}

// formErr reports a body too large or malformed.
func formErr(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return pypiErr(http.StatusRequestEntityTooLarge, "the upload is larger than the repository's limit of %d bytes", mb.Limit)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "multipart") {
		return pypiErr(http.StatusBadRequest, "invalid multipart form: %v", err)
	}
	return err
}

// contentType is a distribution file's media type.
func contentType(filename string) string {
	switch {
	case strings.HasSuffix(filename, ".whl"), strings.HasSuffix(filename, ".zip"):
		return "application/zip"
	case strings.HasSuffix(filename, ".tar.gz"):
		return "application/gzip"
	}
	return "application/octet-stream"
}
