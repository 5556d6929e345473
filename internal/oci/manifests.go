package oci

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/repo"
)

// The manifest media types arca stores.
const (
	mtOCIManifest    = v1.MediaTypeImageManifest
	mtOCIIndex       = v1.MediaTypeImageIndex
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// isIndex tells the manifest types that list manifests from those that
// list blobs; manifestTypes holds every supported type.
var manifestTypes = map[string]struct{ isIndex bool }{
	mtOCIManifest:    {false},
	mtDockerManifest: {false},
	mtOCIIndex:       {true},
	mtDockerList:     {true},
}

// manifestDoc is what arca reads of any manifest or index.
type manifestDoc struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parsedManifest is a validated manifest, ready to store.
type parsedManifest struct {
	mediaType    string
	artifactType string
	subject      string
	annotations  string
	refs         []repo.OCIRef
}

// manifestInvalid is a MANIFEST_INVALID error.
func manifestInvalid(msg string, args ...any) error {
	return ociErr(http.StatusBadRequest, codeManifestInvalid, msg, args...)
}

// parseManifest validates a manifest's JSON and media type: the mediaType
// field, when present, must match the Content-Type the client sent; without
// it the Content-Type decides, or the shape of the document.
func parseManifest(body []byte, contentType string) (parsedManifest, error) {
	var p parsedManifest
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return p, manifestInvalid("the manifest is not valid JSON: %v", err)
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	_, ctKnown := manifestTypes[ct]
	switch {
	case doc.MediaType != "" && ctKnown && ct != doc.MediaType:
		return p, manifestInvalid("the Content-Type %s does not match the manifest's mediaType %s", ct, doc.MediaType)
	case doc.MediaType != "":
		p.mediaType = doc.MediaType
	case ctKnown:
		p.mediaType = ct
	case doc.Manifests != nil:
		p.mediaType = mtOCIIndex
	default:
		p.mediaType = mtOCIManifest
	}
	mt, ok := manifestTypes[p.mediaType]
	if !ok {
		return p, manifestInvalid("manifest media type %q is not supported", p.mediaType)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return p, manifestInvalid("schemaVersion must be 2")
	}
	if mt.isIndex {
		if doc.Config != nil || doc.Layers != nil {
			return p, manifestInvalid("an index has no config or layers")
		}
		for i, d := range doc.Manifests {
			ref, err := descriptorRef(d, fmt.Sprintf("manifests[%d]", i), repo.OCIRefManifest)
			if err != nil {
				return p, err
			}
			p.refs = append(p.refs, ref)
		}
		p.artifactType = doc.ArtifactType
	} else {
		if doc.Manifests != nil {
			return p, manifestInvalid("an image manifest has no manifests")
		}
		if doc.Config == nil {
			return p, manifestInvalid("the manifest has no config")
		}
		ref, err := descriptorRef(*doc.Config, "config", repo.OCIRefConfig)
		if err != nil {
			return p, err
		}
		p.refs = append(p.refs, ref)
		for i, d := range doc.Layers {
			ref, err := descriptorRef(d, fmt.Sprintf("layers[%d]", i), repo.OCIRefLayer)
			if err != nil {
				return p, err
			}
			p.refs = append(p.refs, ref)
		}
		p.artifactType = doc.ArtifactType
		if p.artifactType == "" {
			p.artifactType = doc.Config.MediaType
		}
	}
	if doc.Subject != nil {
		if _, _, err := parseDigest(string(doc.Subject.Digest)); err != nil {
			return p, manifestInvalid("subject: %v", err)
		}
		p.subject = string(doc.Subject.Digest)
	}
	if len(doc.Annotations) > 0 {
		b, err := json.Marshal(doc.Annotations)
		if err != nil {
			return p, manifestInvalid("annotations: %v", err)
		}
		p.annotations = string(b)
	}
	return p, nil
}

// descriptorRef checks a descriptor and returns the reference it makes.
// Non-distributable layers (by media type or with urls) may be absent from
// the registry, and so may content under a digest algorithm arca does not
// compute: those references are optional.
func descriptorRef(d v1.Descriptor, where, kind string) (repo.OCIRef, error) {
	if d.MediaType == "" {
		return repo.OCIRef{}, manifestInvalid("%s has no mediaType", where)
	}
	if d.Size < 0 {
		return repo.OCIRef{}, manifestInvalid("%s has a negative size", where)
	}
	dg, supported, err := parseDigest(string(d.Digest))
	if err != nil {
		return repo.OCIRef{}, manifestInvalid("%s: %v", where, err)
	}
	foreign := kind == repo.OCIRefLayer && (len(d.URLs) > 0 ||
		strings.Contains(d.MediaType, "nondistributable") || strings.Contains(d.MediaType, "foreign"))
	if !supported {
		if !foreign {
			return repo.OCIRef{}, ociErr(http.StatusBadRequest, codeManifestBlobUnknown,
				"%s: digest algorithm %q is not supported", where, dg.alg)
		}
		return repo.OCIRef{Algorithm: dg.alg, Hex: dg.hex, Kind: kind, Optional: true}, nil
	}
	return repo.OCIRef{Algorithm: dg.alg, Hex: dg.hex, Kind: kind, Optional: foreign}, nil
}

// hexOf digests body with a supported algorithm.
func hexOf(alg blob.Algorithm, body []byte) string {
	if alg == blob.SHA512 {
		sum := sha512.Sum512(body)
		return hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// putManifest stores a manifest under a tag or its digest. Every blob it
// references must be in the image, and an index's manifests too.
func (f *Format) putManifest(w http.ResponseWriter, r *format.Request, t target) error {
	if r.ContentLength > maxManifestSize {
		return ociErr(http.StatusRequestEntityTooLarge, codeSizeInvalid,
			"the manifest is larger than %d bytes", maxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return err
	}
	if len(body) > maxManifestSize {
		return ociErr(http.StatusRequestEntityTooLarge, codeSizeInvalid,
			"the manifest is larger than %d bytes", maxManifestSize)
	}
	var d digest
	var tags []string
	if strings.Contains(t.ref, ":") {
		if d, err = digestOf(t.ref); err != nil {
			return err
		}
		if got := hexOf(d.alg, body); got != d.hex {
			return ociErr(http.StatusBadRequest, codeDigestInvalid,
				"the manifest's %s digest is %s:%s, not %s", d.alg, d.alg, got, d)
		}
	} else {
		tags = append(tags, t.ref)
		d = digest{alg: blob.SHA256, hex: hexOf(blob.SHA256, body)}
	}
	// Tags given as parameters of a push by digest (distribution-spec 1.1+).
	tags = append(tags, r.URL.Query()["tag"]...)
	for _, tag := range tags {
		if !tagPattern.MatchString(tag) {
			return manifestInvalid("invalid tag %q", tag)
		}
	}
	p, err := parseManifest(body, r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	s := settingsOf(r.Repo)
	_, err = f.repos.PutOCIManifest(r.Context(), r.Repo, body, repo.PutOCIManifestOptions{
		Image: t.image, Digest: d.String(), MediaType: p.mediaType, ArtifactType: p.artifactType,
		Subject: p.subject, Annotations: p.annotations, Refs: p.refs, Tags: tags,
		ImmutableTags: s.ImmutableTags, Sources: groupSources(r),
	})
	var missing *repo.MissingError
	switch {
	case errorAs(err, &missing):
		return ociErr(http.StatusBadRequest, codeManifestBlobUnknown, "%s", missing.Error())
	case errorIs(err, repo.ErrExists):
		return ociErr(http.StatusConflict, codeDenied, "%v", err)
	case err != nil:
		return err
	}
	h := w.Header()
	h.Set("Location", absolute(r, imageURL(r, t.image)+"/manifests/"+d.String()))
	h.Set("Docker-Content-Digest", d.String())
	if p.subject != "" {
		h.Set("OCI-Subject", p.subject)
	}
	if len(tags) > 0 && strings.Contains(t.ref, ":") {
		h.Set("OCI-Tag", strings.Join(tags, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// manifestOf finds the manifest a reference names. The second result is
// the digest to report: the one asked for, or the one the tag was pushed
// under.
func (f *Format) manifestOf(r *format.Request, t target) (repo.OCIManifest, string, error) {
	unknown := ociErr(http.StatusNotFound, codeManifestUnknown, "manifest %s is unknown to %s", t.ref, t.image)
	if strings.Contains(t.ref, ":") {
		d, err := digestOf(t.ref)
		if err != nil {
			return repo.OCIManifest{}, "", err
		}
		m, err := f.repos.OCIManifestByDigest(r.Context(), r.Repo, t.image, d.alg, d.hex)
		if errorIs(err, repo.ErrNotFound) {
			return m, "", unknown
		}
		return m, d.String(), err
	}
	if !tagPattern.MatchString(t.ref) {
		return repo.OCIManifest{}, "", unknown
	}
	m, err := f.repos.OCIManifestByTag(r.Context(), r.Repo, t.image, t.ref)
	if errorIs(err, repo.ErrNotFound) {
		return m, "", unknown
	}
	return m, m.Digest, err
}

// getManifest serves a manifest by tag or digest, with its media type.
func (f *Format) getManifest(w http.ResponseWriter, r *format.Request, t target) error {
	m, dg, err := f.manifestOf(r, t)
	if err != nil {
		return err
	}
	if !accepts(r.Header.Values("Accept"), m.MediaType) {
		return ociErr(http.StatusNotFound, codeManifestUnknown,
			"manifest %s is a %s, which the Accept header does not allow", t.ref, m.MediaType)
	}
	body, err := f.repos.OpenBlob(r.Context(), m.Blob.SHA256)
	if err != nil {
		return err
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Docker-Content-Digest", dg)
	h.Set("ETag", `"`+dg+`"`)
	http.ServeContent(w, r.Request, "", time.Time{}, body)
	return nil
}

// accepts reports whether an Accept header allows media type mt. No
// header, or one naming no type, allows everything.
func accepts(values []string, mt string) bool {
	named := false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			t, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			named = true
			if q := params["q"]; q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
				continue
			}
			if t == "*/*" || t == mt || (strings.HasSuffix(t, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(t, "*"))) {
				return true
			}
		}
	}
	return !named
}

// deleteManifest deletes a manifest by digest, with the tags pointing to
// it, or only the tag when the reference is a tag.
func (f *Format) deleteManifest(w http.ResponseWriter, r *format.Request, t target) error {
	s := settingsOf(r.Repo)
	unknown := ociErr(http.StatusNotFound, codeManifestUnknown, "manifest %s is unknown to %s", t.ref, t.image)
	var err error
	if strings.Contains(t.ref, ":") {
		var m repo.OCIManifest
		if m, _, err = f.manifestOf(r, t); err != nil {
			return err
		}
		err = f.repos.DeleteOCIManifest(r.Context(), r.Repo, t.image, m.Blob.SHA256, s.ImmutableTags)
	} else {
		if !tagPattern.MatchString(t.ref) {
			return unknown
		}
		err = f.repos.DeleteOCITag(r.Context(), r.Repo, t.image, t.ref, s.ImmutableTags)
	}
	switch {
	case errorIs(err, repo.ErrNotFound):
		return unknown
	case errorIs(err, repo.ErrExists):
		return ociErr(http.StatusConflict, codeDenied, "%v", err)
	case err != nil:
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// groupSources returns, for a push that came through a group, the group's
// other members the caller may read, nested groups flattened: the
// registry may have answered the client's blob checks from any of them.
func groupSources(r *format.Request) []*repo.Repository {
	if r.Group == nil {
		return nil
	}
	var out []*repo.Repository
	var walk func(members []*format.Request)
	walk = func(members []*format.Request) {
		for _, m := range members {
			switch {
			case m.Repo.Type == repo.Group:
				walk(m.Members)
			case m.Repo.ID != r.Repo.ID:
				out = append(out, m.Repo)
			}
		}
	}
	walk(r.Group.Members)
	return out
}
