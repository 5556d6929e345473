package maven

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/repo"
)

// maxSmallUpload bounds the body of an uploaded checksum file, and
// maxMetadataUpload that of an uploaded maven-metadata.xml, which arca
// reads only for plugin prefixes.
const (
	maxSmallUpload    = 1 << 10
	maxMetadataUpload = 4 << 20
)

// put deploys one file: an artifact is stored, a checksum is checked
// against the stored artifact, and a maven-metadata.xml is read for what
// arca cannot generate, then dropped.
func (f *Format) put(w http.ResponseWriter, r *format.Request) error {
	if r.Path == "" || strings.HasSuffix(r.Path, "/") {
		return fmt.Errorf("%w: a file path must not end in \"/\"", repo.ErrInvalid)
	}
	if r.Repo.WritePolicy == repo.Deny {
		return fmt.Errorf("%s: %w", r.Repo.Name, repo.ErrWriteDenied)
	}
	t := parseTarget(r.Path)
	var err error
	switch {
	case t.metadata && t.checksum != "":
		// Checksums of a document arca regenerates say nothing about
		// what it serves.
		_, err = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxSmallUpload))
	case t.checksum != "":
		err = f.checkChecksum(w, r, t)
	case t.metadata:
		err = f.putMetadata(w, r, t.path)
	default:
		err = f.putArtifact(r)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// putArtifact stores an artifact file after checking its path against the
// layout and the repository's version policy. Release files are immutable
// under allow-once; snapshot files can always be redeployed.
func (f *Format) putArtifact(r *format.Request) error {
	c, err := ParsePath(r.Path)
	if err != nil {
		return err
	}
	s := settingsOf(r.Repo)
	switch {
	case c.Snapshot() && s.VersionPolicy == ReleasePolicy:
		return fmt.Errorf("%w: repository %s takes release versions only, and %s is a snapshot; deploy it to a repository whose versionPolicy is snapshot or mixed",
			repo.ErrInvalid, r.Repo.Name, c.Version)
	case !c.Snapshot() && s.VersionPolicy == SnapshotPolicy:
		return fmt.Errorf("%w: repository %s takes snapshot versions only, and %s is a release; deploy it to a repository whose versionPolicy is release or mixed",
			repo.ErrInvalid, r.Repo.Name, c.Version)
	}
	want, err := format.AnnouncedDigests(r.Header)
	if err != nil {
		return err
	}
	want.Size = r.ContentLength
	_, err = f.repos.PutAsset(r.Context(), r.Repo, r.Body, repo.PutOptions{
		Path:        r.Path,
		ContentType: contentType(c.Extension),
		Uploader:    r.UserName(),
		Expect:      want,
		Immutable:   !c.Snapshot(),
		Component:   repo.Component{Name: c.GroupID + ":" + c.ArtifactID, Version: c.Version},
	})
	if errors.Is(err, repo.ErrExists) {
		return fmt.Errorf("%w: release %s of %s:%s is already deployed and releases cannot be redeployed in repository %s (write policy %s); deploy a new version",
			repo.ErrExists, c.Version, c.GroupID, c.ArtifactID, r.Repo.Name, r.Repo.WritePolicy)
	}
	return err
}

// checkChecksum compares an uploaded checksum file with the digest of the
// stored file it names; nothing is stored, since arca serves checksums from
// the bytes.
func (f *Format) checkChecksum(w http.ResponseWriter, r *format.Request, t target) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSmallUpload))
	if err != nil {
		return err
	}
	// A checksum file holds the hex digest, sometimes followed by the
	// file's name.
	fields := strings.Fields(string(b))
	if len(fields) == 0 || !blob.ValidHex(t.checksum, strings.ToLower(fields[0])) {
		return fmt.Errorf("%w: %s does not hold a %s hex digest", repo.ErrInvalid, r.Path, t.checksum)
	}
	a, err := f.repos.Asset(r.Context(), r.Repo, t.path)
	if errors.Is(err, repo.ErrNotFound) {
		return fmt.Errorf("%w: %s is the checksum of %s, which is not deployed; deploy the file before its checksum",
			repo.ErrInvalid, r.Path, t.path)
	}
	if err != nil {
		return err
	}
	if got := a.Blob.Get(t.checksum); !strings.EqualFold(got, fields[0]) {
		return fmt.Errorf("%w: %s says %s, but the deployed %s has %s %s",
			blob.ErrDigestMismatch, r.Path, fields[0], path.Base(t.path), t.checksum, got)
	}
	return nil
}

// putMetadata reads an uploaded maven-metadata.xml. arca generates the
// artifact and snapshot documents itself, so only a group's plugin
// prefixes are kept from it. The upload ends a deploy: snapshot retention
// runs for the version it names.
func (f *Format) putMetadata(w http.ResponseWriter, r *format.Request, p string) error {
	var m Metadata
	dec := xml.NewDecoder(http.MaxBytesReader(w, r.Body, maxMetadataUpload))
	if err := dec.Decode(&m); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return fmt.Errorf("%w: %s is not a maven-metadata.xml document: %w", repo.ErrInvalid, p, err)
	}
	if m.Plugins != nil && len(m.Plugins.List) > 0 && m.Versioning == nil {
		return f.storePlugins(r.Context(), r.Repo, p, &m, r.UserName())
	}
	folder := strings.TrimSuffix(p, metadataName)
	if keep := settingsOf(r.Repo).SnapshotRetention; keep > 0 && IsSnapshot(lastSegment(folder)) {
		_, err := f.retain(r.Context(), r.Repo, folder, keep, false)
		return err
	}
	return nil
}

// contentType is the media type of a file with the given extension.
func contentType(ext string) string {
	switch last := ext[strings.LastIndex(ext, ".")+1:]; last {
	case "pom", "xml":
		return "application/xml"
	case "jar", "war", "ear", "aar":
		return "application/java-archive"
	case "module":
		return "application/json"
	case "asc":
		return "text/plain"
	default:
		if t := mime.TypeByExtension("." + last); t != "" {
			return t
		}
		return "application/octet-stream"
	}
}

// delete removes one stored file; generated documents and checksums have
// nothing to delete.
func (f *Format) delete(w http.ResponseWriter, r *format.Request) error {
	t := parseTarget(r.Path)
	if t.checksum != "" || (t.metadata && !f.storedPluginDoc(r, t.path)) {
		return fmt.Errorf("%w: %s is generated from the deployed files; delete those instead", repo.ErrInvalid, r.Path)
	}
	if err := f.repos.DeleteAsset(r.Context(), r.Repo, r.Path); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// storedPluginDoc reports whether p is a stored group plugin document.
func (f *Format) storedPluginDoc(r *format.Request, p string) bool {
	_, err := f.repos.Asset(r.Context(), r.Repo, p)
	return err == nil
}
