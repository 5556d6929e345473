package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"arca/internal/blob"
)

// OCIQueries are the statements of OCI images, on top of the common ones.
// An image is a name inside a repository of format oci ("team/app"); its
// manifests, tags, references and blob links are rows keyed by the
// repository id and the image name. Digests are stored as lower-case hex
// SHA-256 keys of the blob store, except where a column keeps a digest
// string as a client wrote it ("sha512:...").
type OCIQueries interface {
	Queries

	// LinkOCIBlob records that an image may serve a blob.
	LinkOCIBlob(ctx context.Context, repositoryID int64, image, sha256 string) error
	// UnlinkOCIBlob removes an image's link to a blob; ErrNotFound when
	// there was none.
	UnlinkOCIBlob(ctx context.Context, repositoryID int64, image, sha256 string) error
	// OCIBlobLinked reports whether an image links to a blob.
	OCIBlobLinked(ctx context.Context, repositoryID int64, image, sha256 string) (bool, error)
	// OCIBlobLinks returns up to limit images that link to a blob, in
	// repository and image order.
	OCIBlobLinks(ctx context.Context, sha256 string, limit int) ([]OCIImage, error)

	// PutOCIManifest records a manifest and the blobs and manifests it
	// references. A manifest already recorded in the image is kept as it
	// is; created reports whether m was new.
	PutOCIManifest(ctx context.Context, m *OCIManifest, refs []OCIReference) (created bool, err error)
	// OCIManifest returns a manifest of an image by its SHA-256, or
	// ErrNotFound.
	OCIManifest(ctx context.Context, repositoryID int64, image, sha256 string) (OCIManifest, error)
	// DeleteOCIManifest removes a manifest, its tags and its references, or
	// gives ErrNotFound.
	DeleteOCIManifest(ctx context.Context, repositoryID int64, image, sha256 string) error
	// OCIReferrers returns the manifests of an image whose subject is one of
	// subjects, by creation.
	OCIReferrers(ctx context.Context, repositoryID int64, image string, subjects []string) ([]OCIManifest, error)
	// OCIImageExists reports whether an image has any manifest.
	OCIImageExists(ctx context.Context, repositoryID int64, image string) (bool, error)
	// OCIImages returns up to limit images of the given repositories whose
	// full name "<repository>/<image>" sorts after after, in that order.
	OCIImages(ctx context.Context, repositoryIDs []int64, after string, limit int) ([]OCIImage, error)

	// OCITag returns the manifest a tag points to, with the Digest the tag
	// was pushed under, or ErrNotFound.
	OCITag(ctx context.Context, repositoryID int64, image, tag string) (OCIManifest, error)
	// PutOCITag points a tag at a manifest of the image, pushed under
	// digest. With immutable, a tag that points elsewhere already is not
	// moved: ErrExists.
	PutOCITag(ctx context.Context, repositoryID int64, image, tag, sha256, digest string, immutable bool) error
	// DeleteOCITag removes a tag, or gives ErrNotFound.
	DeleteOCITag(ctx context.Context, repositoryID int64, image, tag string) error
	// OCITags returns up to limit tags of an image after after, in byte
	// order.
	OCITags(ctx context.Context, repositoryID int64, image, after string, limit int) ([]string, error)
	// OCITagsOf returns the tags pointing at a manifest, in byte order.
	OCITagsOf(ctx context.Context, repositoryID int64, image, sha256 string) ([]string, error)

	// CreateOCIUpload records the image an upload session belongs to.
	CreateOCIUpload(ctx context.Context, id string, repositoryID int64, image string) error
	// OCIUpload returns the repository and image of an upload session, or
	// ErrNotFound.
	OCIUpload(ctx context.Context, id string) (repositoryID int64, image string, err error)
	// DeleteOCIUpload forgets an upload session; a missing one is no error.
	DeleteOCIUpload(ctx context.Context, id string) error
	// DeleteOCIUploadsBefore forgets the sessions created before t and
	// returns their ids.
	DeleteOCIUploadsBefore(ctx context.Context, t time.Time) ([]string, error)
}

// OCI returns the OCI statements run outside any transaction.
func (db *DB) OCI() OCIQueries { return db.q }

// WithOCITx is WithTx for OCI statements.
func (db *DB) WithOCITx(ctx context.Context, fn func(q OCIQueries) error) error {
	return db.WithTx(ctx, func(q Queries) error { return fn(q.(queries)) })
}

// OCIImage names an image of a repository.
type OCIImage struct {
	RepositoryID int64
	Repository   string
	Image        string
}

// OCIManifest is a manifest stored in an image.
type OCIManifest struct {
	RepositoryID int64
	Image        string
	// Blob holds the manifest's bytes.
	Blob blob.Info
	// Digest is the digest the manifest was first pushed under, e.g.
	// "sha256:..." or "sha512:...".
	Digest    string
	MediaType string
	// ArtifactType is what the referrers API reports: the manifest's
	// artifactType, else its config's media type.
	ArtifactType string
	// Subject is the digest of the manifest's subject, "" when none.
	Subject string
	// Annotations is the manifest's annotations as a JSON object, "" when
	// none.
	Annotations string
	CreatedAt   time.Time
}

// Kinds of OCI references.
const (
	OCIRefConfig   = "config"
	OCIRefLayer    = "layer"
	OCIRefManifest = "manifest" // a child manifest of an index
)

// OCIReference is a blob or manifest, by SHA-256, that a manifest needs.
type OCIReference struct {
	Target string
	Kind   string
}

// LinkOCIBlob (re)sets the link's time to now: a link made again, by an
// upload or a mount, is about to be used by a manifest, and garbage
// collection spares fresh links (see BlobInUseAt).
func (q queries) LinkOCIBlob(ctx context.Context, repositoryID int64, image, sha256 string) error {
	_, err := q.exec(ctx, `INSERT INTO oci_blob_links (repository_id, image, sha256, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (repository_id, image, sha256)
		DO UPDATE SET created_at = excluded.created_at`,
		repositoryID, image, sha256, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("link blob %s to %s: %w", sha256, image, err)
	}
	return nil
}

func (q queries) UnlinkOCIBlob(ctx context.Context, repositoryID int64, image, sha256 string) error {
	res, err := q.exec(ctx, `DELETE FROM oci_blob_links WHERE repository_id = ? AND image = ?
		AND sha256 = ?`, repositoryID, image, sha256)
	if err != nil {
		return fmt.Errorf("unlink blob %s from %s: %w", sha256, image, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("unlink blob %s from %s: %w", sha256, image, err)
	} else if n == 0 {
		return fmt.Errorf("blob %s in %s: %w", sha256, image, ErrNotFound)
	}
	return nil
}

func (q queries) OCIBlobLinked(ctx context.Context, repositoryID int64, image, sha256 string) (bool, error) {
	var linked bool
	err := q.row(ctx, `SELECT EXISTS (SELECT 1 FROM oci_blob_links WHERE repository_id = ?
		AND image = ? AND sha256 = ?)`, repositoryID, image, sha256).Scan(&linked)
	if err != nil {
		return false, fmt.Errorf("check blob %s in %s: %w", sha256, image, err)
	}
	return linked, nil
}

func (q queries) OCIBlobLinks(ctx context.Context, sha256 string, limit int) ([]OCIImage, error) {
	rows, err := q.query(ctx, `SELECT l.repository_id, r.name, l.image FROM oci_blob_links l
		JOIN repositories r ON r.id = l.repository_id WHERE l.sha256 = ?
		ORDER BY r.name, l.image LIMIT ?`, sha256, limit)
	if err != nil {
		return nil, fmt.Errorf("list links of blob %s: %w", sha256, err)
	}
	defer rows.Close()
	var out []OCIImage
	for rows.Next() {
		var i OCIImage
		if err := rows.Scan(&i.RepositoryID, &i.Repository, &i.Image); err != nil {
			return nil, fmt.Errorf("scan link: %w", err)
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

const ociManifestColumns = `m.repository_id, m.image, b.sha256, b.sha512, b.sha1, b.md5, b.size,
	m.digest, m.media_type, m.artifact_type, m.subject, m.annotations, m.created_at`

const ociManifestFrom = ` FROM oci_manifests m JOIN blobs b ON b.sha256 = m.sha256 `

func scanOCIManifest(s interface{ Scan(...any) error }) (OCIManifest, error) {
	var m OCIManifest
	var created int64
	err := s.Scan(&m.RepositoryID, &m.Image, &m.Blob.SHA256, &m.Blob.SHA512, &m.Blob.SHA1,
		&m.Blob.MD5, &m.Blob.Size, &m.Digest, &m.MediaType, &m.ArtifactType, &m.Subject,
		&m.Annotations, &created)
	m.CreatedAt = fromNanos(created)
	return m, err
}

// PutOCIManifest sets the manifest's push time to now, also when it was
// recorded before: garbage collection spares manifests pushed recently.
func (q queries) PutOCIManifest(ctx context.Context, m *OCIManifest, refs []OCIReference) (bool, error) {
	now := nanos(time.Now())
	var created int64
	err := q.returning(ctx, `INSERT INTO oci_manifests (repository_id, image, sha256, digest,
		media_type, artifact_type, subject, annotations, size, created_at, pushed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repository_id, image, sha256) DO UPDATE SET pushed_at = excluded.pushed_at
		RETURNING created_at`,
		[]any{m.RepositoryID, m.Image, m.Blob.SHA256, m.Digest, m.MediaType, m.ArtifactType,
			m.Subject, m.Annotations, m.Blob.Size, now, now}, &created)
	if err != nil {
		return false, fmt.Errorf("record manifest %s in %s: %w", m.Digest, m.Image, err)
	}
	if created != now {
		// Pushed before: the stored record wins, so that what pulls and
		// the referrers API report never changes.
		old, err := q.OCIManifest(ctx, m.RepositoryID, m.Image, m.Blob.SHA256)
		if err != nil {
			return false, err
		}
		*m = old
		return false, nil
	}
	m.CreatedAt = fromNanos(created)
	for _, ref := range refs {
		_, err := q.exec(ctx, `INSERT INTO oci_references (repository_id, image, manifest, target, kind)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository_id, image, manifest, target) DO NOTHING`,
			m.RepositoryID, m.Image, m.Blob.SHA256, ref.Target, ref.Kind)
		if err != nil {
			return false, fmt.Errorf("record reference of manifest %s to %s: %w", m.Digest, ref.Target, err)
		}
	}
	return true, nil
}

func (q queries) OCIManifest(ctx context.Context, repositoryID int64, image, sha256 string) (OCIManifest, error) {
	m, err := scanOCIManifest(q.row(ctx, `SELECT `+ociManifestColumns+ociManifestFrom+
		`WHERE m.repository_id = ? AND m.image = ? AND m.sha256 = ?`, repositoryID, image, sha256))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("manifest sha256:%s in %s: %w", sha256, image, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("read manifest sha256:%s in %s: %w", sha256, image, err)
	}
	return m, nil
}

func (q queries) DeleteOCIManifest(ctx context.Context, repositoryID int64, image, sha256 string) error {
	// Tags and references go with the manifest (ON DELETE CASCADE); they
	// are deleted here too so as not to depend on the database enforcing
	// foreign keys.
	for _, stmt := range []string{
		`DELETE FROM oci_tags WHERE repository_id = ? AND image = ? AND sha256 = ?`,
		`DELETE FROM oci_references WHERE repository_id = ? AND image = ? AND manifest = ?`,
	} {
		if _, err := q.exec(ctx, stmt, repositoryID, image, sha256); err != nil {
			return fmt.Errorf("delete manifest sha256:%s in %s: %w", sha256, image, err)
		}
	}
	res, err := q.exec(ctx, `DELETE FROM oci_manifests WHERE repository_id = ? AND image = ?
		AND sha256 = ?`, repositoryID, image, sha256)
	if err != nil {
		return fmt.Errorf("delete manifest sha256:%s in %s: %w", sha256, image, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete manifest sha256:%s in %s: %w", sha256, image, err)
	} else if n == 0 {
		return fmt.Errorf("manifest sha256:%s in %s: %w", sha256, image, ErrNotFound)
	}
	return nil
}

func (q queries) OCIReferrers(ctx context.Context, repositoryID int64, image string, subjects []string) ([]OCIManifest, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	args := []any{repositoryID, image}
	for _, s := range subjects {
		args = append(args, s)
	}
	rows, err := q.query(ctx, `SELECT `+ociManifestColumns+ociManifestFrom+
		`WHERE m.repository_id = ? AND m.image = ? AND m.subject IN (`+placeholders(len(subjects))+`)
		ORDER BY m.created_at, m.sha256`, args...)
	if err != nil {
		return nil, fmt.Errorf("list referrers in %s: %w", image, err)
	}
	defer rows.Close()
	var out []OCIManifest
	for rows.Next() {
		m, err := scanOCIManifest(rows)
		if err != nil {
			return nil, fmt.Errorf("scan referrer: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (q queries) OCIImageExists(ctx context.Context, repositoryID int64, image string) (bool, error) {
	var ok bool
	err := q.row(ctx, `SELECT EXISTS (SELECT 1 FROM oci_manifests WHERE repository_id = ?
		AND image = ?)`, repositoryID, image).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check image %s: %w", image, err)
	}
	return ok, nil
}

func (q queries) OCIImages(ctx context.Context, repositoryIDs []int64, after string, limit int) ([]OCIImage, error) {
	if len(repositoryIDs) == 0 {
		return nil, nil
	}
	args := []any{}
	for _, id := range repositoryIDs {
		args = append(args, id)
	}
	args = append(args, after, limit)
	rows, err := q.query(ctx, `SELECT DISTINCT m.repository_id, r.name, m.image, r.name || '/' || m.image AS full_name
		FROM oci_manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE m.repository_id IN (`+placeholders(len(repositoryIDs))+`)
		AND r.name || '/' || m.image > ? ORDER BY full_name LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []OCIImage
	for rows.Next() {
		var i OCIImage
		var full string
		if err := rows.Scan(&i.RepositoryID, &i.Repository, &i.Image, &full); err != nil {
			return nil, fmt.Errorf("scan image: %w", err)
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

func (q queries) OCITag(ctx context.Context, repositoryID int64, image, tag string) (OCIManifest, error) {
	m, err := scanOCIManifest(q.row(ctx, `SELECT `+strings.Replace(ociManifestColumns, "m.digest", "t.digest", 1)+ociManifestFrom+
		`JOIN oci_tags t ON t.repository_id = m.repository_id AND t.image = m.image
		AND t.sha256 = m.sha256 WHERE t.repository_id = ? AND t.image = ? AND t.tag = ?`,
		repositoryID, image, tag))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("tag %s of %s: %w", tag, image, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("read tag %s of %s: %w", tag, image, err)
	}
	return m, nil
}

func (q queries) PutOCITag(ctx context.Context, repositoryID int64, image, tag, sha256, digest string, immutable bool) error {
	var current string
	err := q.row(ctx, `SELECT sha256 FROM oci_tags WHERE repository_id = ? AND image = ? AND tag = ?`,
		repositoryID, image, tag).Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read tag %s of %s: %w", tag, image, err)
	case current == sha256:
		// Not a move: only the digest it is reported under may change.
	case immutable:
		return fmt.Errorf("tag %s of %s points to sha256:%s and is immutable: %w", tag, image, current, ErrExists)
	}
	_, err = q.exec(ctx, `INSERT INTO oci_tags (repository_id, image, tag, sha256, digest, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, image, tag)
		DO UPDATE SET sha256 = excluded.sha256, digest = excluded.digest, updated_at = excluded.updated_at`,
		repositoryID, image, tag, sha256, digest, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("write tag %s of %s: %w", tag, image, err)
	}
	return nil
}

func (q queries) DeleteOCITag(ctx context.Context, repositoryID int64, image, tag string) error {
	res, err := q.exec(ctx, `DELETE FROM oci_tags WHERE repository_id = ? AND image = ? AND tag = ?`,
		repositoryID, image, tag)
	if err != nil {
		return fmt.Errorf("delete tag %s of %s: %w", tag, image, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete tag %s of %s: %w", tag, image, err)
	} else if n == 0 {
		return fmt.Errorf("tag %s of %s: %w", tag, image, ErrNotFound)
	}
	return nil
}

func (q queries) OCITags(ctx context.Context, repositoryID int64, image, after string, limit int) ([]string, error) {
	return q.strings(ctx, `SELECT tag FROM oci_tags WHERE repository_id = ? AND image = ?
		AND tag > ? ORDER BY tag LIMIT ?`, repositoryID, image, after, limit)
}

func (q queries) OCITagsOf(ctx context.Context, repositoryID int64, image, sha256 string) ([]string, error) {
	return q.strings(ctx, `SELECT tag FROM oci_tags WHERE repository_id = ? AND image = ?
		AND sha256 = ? ORDER BY tag`, repositoryID, image, sha256)
}

func (q queries) CreateOCIUpload(ctx context.Context, id string, repositoryID int64, image string) error {
	_, err := q.exec(ctx, `INSERT INTO oci_uploads (id, repository_id, image, created_at)
		VALUES (?, ?, ?, ?)`, id, repositoryID, image, nanos(time.Now()))
	if err != nil {
		return fmt.Errorf("record upload %s: %w", id, err)
	}
	return nil
}

func (q queries) OCIUpload(ctx context.Context, id string) (int64, string, error) {
	var repositoryID int64
	var image string
	err := q.row(ctx, `SELECT repository_id, image FROM oci_uploads WHERE id = ?`, id).
		Scan(&repositoryID, &image)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("upload %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, "", fmt.Errorf("read upload %s: %w", id, err)
	}
	return repositoryID, image, nil
}

func (q queries) DeleteOCIUpload(ctx context.Context, id string) error {
	if _, err := q.exec(ctx, `DELETE FROM oci_uploads WHERE id = ?`, id); err != nil {
		return fmt.Errorf("forget upload %s: %w", id, err)
	}
	return nil
}

func (q queries) DeleteOCIUploadsBefore(ctx context.Context, t time.Time) ([]string, error) {
	ids, err := q.strings(ctx, `SELECT id FROM oci_uploads WHERE created_at < ?`, nanos(t))
	if err != nil {
		return nil, err
	}
	if _, err := q.exec(ctx, `DELETE FROM oci_uploads WHERE created_at < ?`, nanos(t)); err != nil {
		return nil, fmt.Errorf("forget old uploads: %w", err)
	}
	return ids, nil
}

// strings runs a query whose rows are one string each.
func (q queries) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// OCIManifestKey names a manifest of an image.
type OCIManifestKey struct {
	RepositoryID int64
	Image        string
	SHA256       string
}
