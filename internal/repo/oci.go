package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"arca/internal/blob"
	"arca/internal/meta"
)

// OCI images. An image is a name inside a repository of format oci, such as
// "team/app". Its blobs (layers, configs) sit in the shared blob store and
// are linked to the image; its manifests keep their bytes in the blob store
// too, with their metadata, tags and references in the metadata store. The
// write policy applies as for every format, except that content addressed
// by its digest is never a conflict: only Deny refuses OCI writes.

// OCIManifest is a manifest stored in an image; see meta.OCIManifest.
type OCIManifest = meta.OCIManifest

// OCIImage names an image of a repository; see meta.OCIImage.
type OCIImage = meta.OCIImage

// Kinds of OCI references.
const (
	OCIRefConfig   = meta.OCIRefConfig
	OCIRefLayer    = meta.OCIRefLayer
	OCIRefManifest = meta.OCIRefManifest
)

// MissingError reports content that a manifest references and the image
// lacks. It wraps ErrInvalid.
type MissingError struct {
	// Digest is the reference as the manifest wrote it.
	Digest string
	// Kind is OCIRefConfig, OCIRefLayer or OCIRefManifest.
	Kind string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s %s is not in the image", e.Kind, e.Digest)
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *MissingError) Unwrap() error { return ErrInvalid }

// OCIRef is a reference of a manifest being stored.
type OCIRef struct {
	Algorithm blob.Algorithm
	Hex       string
	Kind      string
	// Optional references may be absent, such as non-distributable layers.
	Optional bool
}

func (r OCIRef) digest() string { return string(r.Algorithm) + ":" + r.Hex }

// PutOCIManifestOptions describe a manifest to store.
type PutOCIManifestOptions struct {
	Image string
	// Digest is the manifest's digest as pushed, "sha256:..." or
	// "sha512:...".
	Digest       string
	MediaType    string
	ArtifactType string
	Subject      string
	// Annotations is a JSON object, or "".
	Annotations string
	Refs        []OCIRef
	// Tags are pointed at the manifest.
	Tags []string
	// ImmutableTags refuses to move an existing tag (ErrExists).
	ImmutableTags bool
	// Sources are repositories whose blobs the manifest may name without
	// the image holding them: the other members of the group a push came
	// through, which the client may have been told have them. A blob one
	// of them holds (a hosted one under the same image, a proxy anywhere)
	// is linked into the image.
	Sources []*Repository
}

// checkOCIWrite applies the repository's state to an OCI write.
func checkOCIWrite(r *Repository) error {
	if !r.Online {
		return fmt.Errorf("%s: %w", r.Name, ErrOffline)
	}
	if r.WritePolicy == Deny {
		return fmt.Errorf("%s: %w", r.Name, ErrWriteDenied)
	}
	return nil
}

// FindBlob returns the recorded blob with a digest of any algorithm the
// store computes, or ErrNotFound.
func (s *Service) FindBlob(ctx context.Context, alg blob.Algorithm, hex string) (blob.Info, error) {
	return s.db.Queries().BlobByDigest(ctx, alg, hex)
}

// OCIBlob returns a blob linked to an image, or ErrNotFound.
func (s *Service) OCIBlob(ctx context.Context, r *Repository, image string, alg blob.Algorithm, hex string) (blob.Info, error) {
	info, err := s.FindBlob(ctx, alg, hex)
	if err != nil {
		return info, err
	}
	linked, err := s.db.OCI().OCIBlobLinked(ctx, r.ID, image, info.SHA256)
	if err != nil {
		return info, err
	}
	if !linked {
		return info, fmt.Errorf("blob %s:%s in %s: %w", alg, hex, image, ErrNotFound)
	}
	return info, nil
}

// OpenBlob returns the bytes of a recorded blob. Bytes missing from the
// store are damage, not absence, and are not reported as ErrNotFound.
func (s *Service) OpenBlob(ctx context.Context, sha256 string) (io.ReadSeekCloser, error) {
	f, err := s.blobs.Open(ctx, sha256)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("blob %s missing from the store: %v", sha256, err) //nolint:errorlint // deliberately not ErrNotFound
	}
	return f, err
}

// PutOCIBlob streams body into the blob store, checks it against want and
// links it to the image. Like PutAsset, it holds the store's sweep lock
// from the commit to the end of the transaction.
func (s *Service) PutOCIBlob(ctx context.Context, r *Repository, image string, body io.Reader, want blob.Expect) (blob.Info, error) {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return blob.Info{}, err
	}
	staged, err := s.blobs.Stage(ctx, body, want)
	if err != nil {
		return blob.Info{}, err
	}
	defer staged.Abort() //nolint:errcheck // a no-op after Commit; earlier errors win.
	release := s.blobs.Hold()
	defer release()
	if err := staged.Commit(ctx); err != nil {
		return blob.Info{}, err
	}
	info := staged.Info()
	err = s.db.WithOCITx(ctx, func(q meta.OCIQueries) error {
		if err := q.PutBlob(ctx, info); err != nil {
			return err
		}
		return q.LinkOCIBlob(ctx, r.ID, image, info.SHA256)
	})
	return info, err
}

// StartOCIUpload starts a resumable upload session for an image.
func (s *Service) StartOCIUpload(ctx context.Context, r *Repository, image string) (string, error) {
	if err := checkOCIWrite(r); err != nil {
		return "", err
	}
	id, err := s.blobs.NewUpload(ctx)
	if err != nil {
		return "", err
	}
	if err := s.db.OCI().CreateOCIUpload(ctx, id, r.ID, image); err != nil {
		s.blobs.CancelUpload(ctx, id) //nolint:errcheck // the record's error is the one to report
		return "", err
	}
	return id, nil
}

// ociUpload checks that a session exists and belongs to the image.
func (s *Service) ociUpload(ctx context.Context, r *Repository, image, id string) error {
	repoID, owner, err := s.db.OCI().OCIUpload(ctx, id)
	if err != nil {
		return err
	}
	if repoID != r.ID || owner != image {
		return fmt.Errorf("upload %s of %s: %w", id, image, ErrNotFound)
	}
	return nil
}

// uploadErr turns the blob store's "no such session" into ErrNotFound, and
// forgets the session's record then: it expired.
func (s *Service) uploadErr(ctx context.Context, id string, err error) error {
	if errors.Is(err, blob.ErrNotFound) {
		s.db.OCI().DeleteOCIUpload(ctx, id) //nolint:errcheck // best effort
		return fmt.Errorf("upload %s: %w", id, ErrNotFound)
	}
	return err
}

// OCIUploadSize returns how many bytes an image's upload session holds, or
// ErrNotFound.
func (s *Service) OCIUploadSize(ctx context.Context, r *Repository, image, id string) (int64, error) {
	if err := s.ociUpload(ctx, r, image, id); err != nil {
		return 0, err
	}
	size, err := s.blobs.UploadSize(ctx, id)
	return size, s.uploadErr(ctx, id, err)
}

// AppendOCIUpload adds body to an image's upload session at offset (at
// the end when negative) and returns the session's size; see
// blob.Store.Append.
func (s *Service) AppendOCIUpload(ctx context.Context, r *Repository, image, id string, offset int64, body io.Reader) (int64, error) {
	if err := checkOCIWrite(r); err != nil {
		return 0, err
	}
	if err := s.ociUpload(ctx, r, image, id); err != nil {
		return 0, err
	}
	size, err := s.blobs.Append(ctx, id, offset, body)
	return size, s.uploadErr(ctx, id, err)
}

// CommitOCIUpload checks an upload session against want, commits it as a
// blob and links the blob to the image. A session that does not match want
// is cancelled: nothing is stored.
func (s *Service) CommitOCIUpload(ctx context.Context, r *Repository, image, id string, want blob.Expect) (blob.Info, error) {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return blob.Info{}, err
	}
	if err := s.ociUpload(ctx, r, image, id); err != nil {
		return blob.Info{}, err
	}
	release := s.blobs.Hold()
	defer release()
	info, err := s.blobs.CommitUpload(ctx, id, want)
	if errors.Is(err, blob.ErrDigestMismatch) {
		release()
		s.CancelOCIUpload(ctx, r, image, id) //nolint:errcheck // the mismatch is the error to report
		return info, err
	}
	if err != nil {
		return info, s.uploadErr(ctx, id, err)
	}
	err = s.db.WithOCITx(ctx, func(q meta.OCIQueries) error {
		if err := q.PutBlob(ctx, info); err != nil {
			return err
		}
		if err := q.LinkOCIBlob(ctx, r.ID, image, info.SHA256); err != nil {
			return err
		}
		return q.DeleteOCIUpload(ctx, id)
	})
	return info, err
}

// CancelOCIUpload removes an image's upload session and its bytes.
func (s *Service) CancelOCIUpload(ctx context.Context, r *Repository, image, id string) error {
	if err := s.ociUpload(ctx, r, image, id); err != nil {
		return err
	}
	if err := s.blobs.CancelUpload(ctx, id); err != nil {
		return err
	}
	return s.db.OCI().DeleteOCIUpload(ctx, id)
}

// ExpireOCIUploads forgets the upload sessions started before t and
// cancels them, and returns how many there were. The blob store expires
// idle sessions on its own; this removes the records of sessions left
// behind.
func (s *Service) ExpireOCIUploads(ctx context.Context, t time.Time) (int, error) {
	ids, err := s.db.OCI().DeleteOCIUploadsBefore(ctx, t)
	for _, id := range ids {
		s.blobs.CancelUpload(ctx, id) //nolint:errcheck // the session may be gone already
	}
	return len(ids), err
}

// MountOCIBlob links a blob that an image of from links to the image
// of r, and returns it; ErrNotFound when from's image lacks it. The caller
// checks that the user may read from.
func (s *Service) MountOCIBlob(ctx context.Context, r *Repository, image, sha256 string, from *Repository, fromImage string) (blob.Info, error) {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return blob.Info{}, err
	}
	if from.Format != r.Format || !from.Online {
		return blob.Info{}, fmt.Errorf("blob %s in %s/%s: %w", sha256, from.Name, fromImage, ErrNotFound)
	}
	var info blob.Info
	// In one transaction with the check of the source's link, so that
	// garbage collection sees one link or the other.
	err := s.db.WithOCITx(ctx, func(q meta.OCIQueries) error {
		linked, err := q.OCIBlobLinked(ctx, from.ID, fromImage, sha256)
		if err != nil {
			return err
		}
		if !linked {
			return fmt.Errorf("blob %s in %s/%s: %w", sha256, from.Name, fromImage, ErrNotFound)
		}
		if info, err = q.BlobByDigest(ctx, blob.SHA256, sha256); err != nil {
			return err
		}
		return q.LinkOCIBlob(ctx, r.ID, image, sha256)
	})
	return info, err
}

// OCIBlobHolders returns up to limit images that link to a blob.
func (s *Service) OCIBlobHolders(ctx context.Context, sha256 string, limit int) ([]OCIImage, error) {
	return s.db.OCI().OCIBlobLinks(ctx, sha256, limit)
}

// DeleteOCIBlob removes an image's link to a blob, or gives ErrNotFound.
// The bytes stay while anything else uses them.
func (s *Service) DeleteOCIBlob(ctx context.Context, r *Repository, image, sha256 string) error {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return err
	}
	return s.db.OCI().UnlinkOCIBlob(ctx, r.ID, image, sha256)
}

// PutOCIManifest stores a manifest's bytes in the blob store and records
// it in the image with its references, and points o.Tags at it. Every
// reference must be in the image (a linked blob, or a manifest for
// OCIRefManifest), unless optional: otherwise a *MissingError. A manifest
// stored already keeps its record.
func (s *Service) PutOCIManifest(ctx context.Context, r *Repository, body []byte, o PutOCIManifestOptions) (OCIManifest, error) {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return OCIManifest{}, err
	}
	staged, err := s.blobs.Stage(ctx, bytes.NewReader(body), blob.NoExpectation)
	if err != nil {
		return OCIManifest{}, err
	}
	defer staged.Abort() //nolint:errcheck // a no-op after Commit; earlier errors win.
	release := s.blobs.Hold()
	defer release()
	if err := staged.Commit(ctx); err != nil {
		return OCIManifest{}, err
	}
	m := OCIManifest{RepositoryID: r.ID, Image: o.Image, Blob: staged.Info(), Digest: o.Digest,
		MediaType: o.MediaType, ArtifactType: o.ArtifactType, Subject: o.Subject, Annotations: o.Annotations}
	err = s.db.WithOCITx(ctx, func(q meta.OCIQueries) error {
		refs, err := resolveRefs(ctx, q, r, o.Image, o.Refs, o.Sources)
		if err != nil {
			return err
		}
		if err := q.PutBlob(ctx, m.Blob); err != nil {
			return err
		}
		if _, err := q.PutOCIManifest(ctx, &m, refs); err != nil {
			return err
		}
		for _, tag := range o.Tags {
			if err := q.PutOCITag(ctx, r.ID, o.Image, tag, m.Blob.SHA256, o.Digest, o.ImmutableTags); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

// resolveRefs finds each reference in the image.
func resolveRefs(ctx context.Context, q meta.OCIQueries, r *Repository, image string, refs []OCIRef, sources []*Repository) ([]meta.OCIReference, error) {
	out := make([]meta.OCIReference, 0, len(refs))
	for _, ref := range refs {
		info, err := q.BlobByDigest(ctx, ref.Algorithm, ref.Hex)
		found := err == nil
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return nil, err
		}
		if found && ref.Kind == OCIRefManifest {
			_, err := q.OCIManifest(ctx, r.ID, image, info.SHA256)
			found = err == nil
			if err != nil && !errors.Is(err, meta.ErrNotFound) {
				return nil, err
			}
		} else if found {
			if found, err = q.OCIBlobLinked(ctx, r.ID, image, info.SHA256); err != nil {
				return nil, err
			}
			if !found {
				if found, err = linkFromSources(ctx, q, r, image, info.SHA256, sources); err != nil {
					return nil, err
				}
			}
		}
		switch {
		case found:
			out = append(out, meta.OCIReference{Target: info.SHA256, Kind: ref.Kind})
		case !ref.Optional:
			return nil, &MissingError{Digest: ref.digest(), Kind: ref.Kind}
		}
	}
	return out, nil
}

// linkFromSources links a blob into the image when one of sources holds
// it, and reports whether one did.
func linkFromSources(ctx context.Context, q meta.OCIQueries, r *Repository, image, sha256 string, sources []*Repository) (bool, error) {
	for _, src := range sources {
		var held bool
		var err error
		switch src.Type {
		case Hosted:
			held, err = q.OCIBlobLinked(ctx, src.ID, image, sha256)
		case Proxy:
			held, err = q.BlobLinked(ctx, src.ID, sha256)
		}
		if err != nil {
			return false, err
		}
		if held {
			return true, q.LinkOCIBlob(ctx, r.ID, image, sha256)
		}
	}
	return false, nil
}

// OCIManifestByDigest returns a manifest of an image by any of its
// digests, or ErrNotFound.
func (s *Service) OCIManifestByDigest(ctx context.Context, r *Repository, image string, alg blob.Algorithm, hex string) (OCIManifest, error) {
	info, err := s.FindBlob(ctx, alg, hex)
	if err != nil {
		return OCIManifest{}, err
	}
	return s.db.OCI().OCIManifest(ctx, r.ID, image, info.SHA256)
}

// OCIManifestByTag returns the manifest a tag points to, or ErrNotFound.
func (s *Service) OCIManifestByTag(ctx context.Context, r *Repository, image, tag string) (OCIManifest, error) {
	return s.db.OCI().OCITag(ctx, r.ID, image, tag)
}

// DeleteOCIManifest removes a manifest and the tags pointing to it, or
// gives ErrNotFound. With immutableTags, a tagged manifest is refused
// (ErrExists).
func (s *Service) DeleteOCIManifest(ctx context.Context, r *Repository, image, sha256 string, immutableTags bool) error {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return err
	}
	return s.db.WithOCITx(ctx, func(q meta.OCIQueries) error {
		if immutableTags {
			tags, err := q.OCITagsOf(ctx, r.ID, image, sha256)
			if err != nil {
				return err
			}
			if len(tags) > 0 {
				return fmt.Errorf("manifest sha256:%s has immutable tags %v: %w", sha256, tags, ErrExists)
			}
		}
		return q.DeleteOCIManifest(ctx, r.ID, image, sha256)
	})
}

// DeleteOCITag removes a tag, or gives ErrNotFound. With immutableTags an
// existing tag is refused (ErrExists).
func (s *Service) DeleteOCITag(ctx context.Context, r *Repository, image, tag string, immutableTags bool) error {
	defer s.changed(r.ID)
	if err := checkOCIWrite(r); err != nil {
		return err
	}
	if immutableTags {
		if _, err := s.db.OCI().OCITag(ctx, r.ID, image, tag); err != nil {
			return err
		}
		return fmt.Errorf("tag %s of %s is immutable: %w", tag, image, ErrExists)
	}
	return s.db.OCI().DeleteOCITag(ctx, r.ID, image, tag)
}

// OCITags returns up to limit tags of an image after after, in byte order.
func (s *Service) OCITags(ctx context.Context, r *Repository, image, after string, limit int) ([]string, error) {
	return s.db.OCI().OCITags(ctx, r.ID, image, after, limit)
}

// OCIImageExists reports whether an image has any manifest.
func (s *Service) OCIImageExists(ctx context.Context, r *Repository, image string) (bool, error) {
	return s.db.OCI().OCIImageExists(ctx, r.ID, image)
}

// OCIReferrers returns the manifests of an image whose subject is the
// given digest, under whichever algorithm they name it.
func (s *Service) OCIReferrers(ctx context.Context, r *Repository, image string, alg blob.Algorithm, hex string) ([]OCIManifest, error) {
	subjects := []string{string(alg) + ":" + hex}
	if info, err := s.FindBlob(ctx, alg, hex); err == nil {
		for _, a := range []blob.Algorithm{blob.SHA256, blob.SHA512} {
			if a != alg {
				subjects = append(subjects, string(a)+":"+info.Get(a))
			}
		}
	} else if !errors.Is(err, meta.ErrNotFound) {
		return nil, err
	}
	return s.db.OCI().OCIReferrers(ctx, r.ID, image, subjects)
}

// OCIImages returns up to limit images of the repositories whose full name
// "<repository>/<image>" sorts after after, in that order.
func (s *Service) OCIImages(ctx context.Context, repos []*Repository, after string, limit int) ([]OCIImage, error) {
	ids := make([]int64, 0, len(repos))
	for _, r := range repos {
		ids = append(ids, r.ID)
	}
	return s.db.OCI().OCIImages(ctx, ids, after, limit)
}
