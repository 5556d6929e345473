package meta

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"arca/internal/blob"
)

// mustManifest records a manifest of content s in an image, with refs.
func mustManifest(t *testing.T, q OCIQueries, repositoryID int64, image, s, subject string, refs ...OCIReference) OCIManifest {
	t.Helper()
	ctx := context.Background()
	b := infoOf(s)
	if err := q.PutBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	m := OCIManifest{RepositoryID: repositoryID, Image: image, Blob: b, Digest: "sha256:" + b.SHA256,
		MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/x", Subject: subject}
	created, err := q.PutOCIManifest(ctx, &m, refs)
	if err != nil || !created {
		t.Fatalf("PutOCIManifest(%s) = %v, %v", s, created, err)
	}
	return m
}

func TestOCIMigrationTables(t *testing.T) {
	db := openTest(t)
	for _, table := range []string{"oci_manifests", "oci_tags", "oci_references", "oci_blob_links", "oci_uploads"} {
		if n := count(t, db, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table); n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
}

func TestOCIBlobLinks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.OCI()
	r := mustRepo(t, q, "containers")
	b := infoOf("layer")
	if err := q.PutBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := q.LinkOCIBlob(ctx, r.ID, "team/app", b.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := q.OCIBlobLinked(ctx, r.ID, "team/app", b.SHA256); err != nil || !ok {
		t.Errorf("OCIBlobLinked = %v, %v", ok, err)
	}
	if ok, _ := q.OCIBlobLinked(ctx, r.ID, "team/other", b.SHA256); ok {
		t.Error("linked to another image")
	}
	holders, err := q.OCIBlobLinks(ctx, b.SHA256, 10)
	if err != nil || len(holders) != 1 || holders[0].Repository != "containers" || holders[0].Image != "team/app" {
		t.Errorf("OCIBlobLinks = %+v, %v", holders, err)
	}
	if used, _ := q.BlobInUse(ctx, b.SHA256); !used {
		t.Error("a linked blob is not in use")
	}
	if err := q.UnlinkOCIBlob(ctx, r.ID, "team/app", b.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := q.UnlinkOCIBlob(ctx, r.ID, "team/app", b.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("unlinking twice = %v", err)
	}
	if used, _ := q.BlobInUse(ctx, b.SHA256); used {
		t.Error("an unlinked blob is in use")
	}
}

func TestOCIManifestsAndTags(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.OCI()
	r := mustRepo(t, q, "containers")
	config := infoOf("config")
	if err := q.PutBlob(ctx, config); err != nil {
		t.Fatal(err)
	}
	m := mustManifest(t, q, r.ID, "app", "manifest", "", OCIReference{Target: config.SHA256, Kind: OCIRefConfig})

	// A second push keeps the first record.
	again := OCIManifest{RepositoryID: r.ID, Image: "app", Blob: m.Blob, Digest: "sha512:" + m.Blob.SHA512, MediaType: "other"}
	if created, err := q.PutOCIManifest(ctx, &again, nil); err != nil || created || again.Digest != m.Digest || again.MediaType != m.MediaType {
		t.Errorf("second PutOCIManifest = %v, %v, %+v", created, err, again)
	}
	got, err := q.OCIManifest(ctx, r.ID, "app", m.Blob.SHA256)
	if err != nil || got.Digest != m.Digest || got.Blob != m.Blob || got.CreatedAt.IsZero() {
		t.Errorf("OCIManifest = %+v, %v", got, err)
	}
	if _, err := q.OCIManifest(ctx, r.ID, "other", m.Blob.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("manifest of another image: %v", err)
	}
	if ok, _ := q.OCIImageExists(ctx, r.ID, "app"); !ok {
		t.Error("image does not exist")
	}

	// Tags, immutable or not.
	for _, tag := range []string{"v1", "latest", "a"} {
		if err := q.PutOCITag(ctx, r.ID, "app", tag, m.Blob.SHA256, m.Digest, false); err != nil {
			t.Fatal(err)
		}
	}
	other := mustManifest(t, q, r.ID, "app", "other manifest", "")
	if err := q.PutOCITag(ctx, r.ID, "app", "latest", other.Blob.SHA256, other.Digest, true); !errors.Is(err, ErrExists) {
		t.Errorf("moving an immutable tag = %v", err)
	}
	if err := q.PutOCITag(ctx, r.ID, "app", "latest", m.Blob.SHA256, "sha512:"+m.Blob.SHA512, true); err != nil {
		t.Errorf("re-pushing an immutable tag under another digest = %v", err)
	}
	if tm, err := q.OCITag(ctx, r.ID, "app", "latest"); err != nil || tm.Digest != "sha512:"+m.Blob.SHA512 || tm.Blob.SHA256 != m.Blob.SHA256 {
		t.Errorf("OCITag = %+v, %v", tm, err)
	}
	if err := q.PutOCITag(ctx, r.ID, "app", "latest", other.Blob.SHA256, other.Digest, false); err != nil {
		t.Errorf("moving a tag = %v", err)
	}
	if tags, err := q.OCITags(ctx, r.ID, "app", "", 10); err != nil || !slices.Equal(tags, []string{"a", "latest", "v1"}) {
		t.Errorf("OCITags = %v, %v", tags, err)
	}
	if tags, _ := q.OCITags(ctx, r.ID, "app", "a", 1); !slices.Equal(tags, []string{"latest"}) {
		t.Errorf("OCITags after a = %v", tags)
	}
	if tags, _ := q.OCITagsOf(ctx, r.ID, "app", m.Blob.SHA256); !slices.Equal(tags, []string{"a", "v1"}) {
		t.Errorf("OCITagsOf = %v", tags)
	}
	if err := q.DeleteOCITag(ctx, r.ID, "app", "a"); err != nil {
		t.Fatal(err)
	}
	if err := q.DeleteOCITag(ctx, r.ID, "app", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a tag twice = %v", err)
	}

	// The manifest and its references keep their blobs; deleting it takes
	// its tags and references along.
	for _, sha := range []string{m.Blob.SHA256, config.SHA256} {
		if used, _ := q.BlobInUse(ctx, sha); !used {
			t.Errorf("blob %s of a manifest is not in use", sha)
		}
	}
	if err := q.DeleteOCIManifest(ctx, r.ID, "app", m.Blob.SHA256); err != nil {
		t.Fatal(err)
	}
	if _, err := q.OCITag(ctx, r.ID, "app", "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag of a deleted manifest: %v", err)
	}
	for _, sha := range []string{m.Blob.SHA256, config.SHA256} {
		if used, _ := q.BlobInUse(ctx, sha); used {
			t.Errorf("blob %s of a deleted manifest is in use", sha)
		}
	}
	if err := q.DeleteOCIManifest(ctx, r.ID, "app", m.Blob.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a manifest twice = %v", err)
	}
}

func TestOCIReferrersAndImages(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.OCI()
	a := mustRepo(t, q, "a")
	b := mustRepo(t, q, "a-b")
	subject := mustManifest(t, q, a.ID, "app", "subject", "")
	r1 := mustManifest(t, q, a.ID, "app", "sig", subject.Digest)
	r2 := mustManifest(t, q, a.ID, "app", "sbom", "sha512:"+subject.Blob.SHA512)
	mustManifest(t, q, a.ID, "other", "sig elsewhere", subject.Digest)
	got, err := q.OCIReferrers(ctx, a.ID, "app", []string{subject.Digest, "sha512:" + subject.Blob.SHA512})
	if err != nil || len(got) != 2 || got[0].Digest != r1.Digest || got[1].Digest != r2.Digest {
		t.Errorf("OCIReferrers = %+v, %v", got, err)
	}
	if got, _ := q.OCIReferrers(ctx, a.ID, "app", []string{"sha256:none"}); len(got) != 0 {
		t.Errorf("referrers of nothing = %+v", got)
	}
	mustManifest(t, q, b.ID, "x", "in a-b", "")
	images, err := q.OCIImages(ctx, []int64{a.ID, b.ID}, "", 10)
	var names []string
	for _, i := range images {
		names = append(names, i.Repository+"/"+i.Image)
	}
	// Sorted by the full name: "a-b/x" < "a/app" since '-' < '/'.
	if err != nil || !slices.Equal(names, []string{"a-b/x", "a/app", "a/other"}) {
		t.Errorf("OCIImages = %v, %v", names, err)
	}
	if images, _ := q.OCIImages(ctx, []int64{a.ID, b.ID}, "a/app", 1); len(images) != 1 || images[0].Image != "other" {
		t.Errorf("OCIImages after a/app = %+v", images)
	}
	if images, _ := q.OCIImages(ctx, []int64{b.ID}, "", 10); len(images) != 1 {
		t.Errorf("OCIImages of a-b = %+v", images)
	}

	// Deleting the repository deletes its images.
	if err := q.DeleteRepository(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM oci_manifests WHERE repository_id = ?`, a.ID); n != 0 {
		t.Errorf("%d manifests left of a deleted repository", n)
	}
}

func TestOCIUploads(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.OCI()
	r := mustRepo(t, q, "containers")
	if err := q.CreateOCIUpload(ctx, "u1", r.ID, "app"); err != nil {
		t.Fatal(err)
	}
	if id, image, err := q.OCIUpload(ctx, "u1"); err != nil || id != r.ID || image != "app" {
		t.Errorf("OCIUpload = %d, %q, %v", id, image, err)
	}
	if _, _, err := q.OCIUpload(ctx, "u2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown upload: %v", err)
	}
	if ids, err := q.DeleteOCIUploadsBefore(ctx, time.Now().Add(-time.Hour)); err != nil || len(ids) != 0 {
		t.Errorf("nothing old: %v, %v", ids, err)
	}
	if ids, err := q.DeleteOCIUploadsBefore(ctx, time.Now().Add(time.Hour)); err != nil || !slices.Equal(ids, []string{"u1"}) {
		t.Errorf("DeleteOCIUploadsBefore = %v, %v", ids, err)
	}
	if err := q.DeleteOCIUpload(ctx, "u1"); err != nil {
		t.Errorf("deleting a missing upload: %v", err)
	}
}

func TestForgetBlobIfUnusedAtStaleLinks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.OCI()
	r := mustRepo(t, q, "containers")
	layer, kept := infoOf("stale layer"), infoOf("referenced layer")
	for _, b := range []blob.Info{layer, kept} {
		if err := q.PutBlob(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := q.LinkOCIBlob(ctx, r.ID, "app", b.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	mustManifest(t, q, r.ID, "app", "manifest", "", OCIReference{Target: kept.SHA256, Kind: OCIRefLayer})

	// Links made after the cut-off keep the blob.
	before := time.Now().Add(-time.Minute)
	if used, _ := db.BlobInUseAt(ctx, layer.SHA256, before); !used {
		t.Error("a fresh link does not count")
	}
	if unused, err := db.ForgetBlobIfUnusedAt(ctx, layer.SHA256, before); err != nil || unused {
		t.Errorf("ForgetBlobIfUnusedAt with a fresh link = %v, %v", unused, err)
	}
	// Older ones do not, unless a manifest needs the blob.
	after := time.Now().Add(time.Minute)
	if used, _ := db.BlobInUseAt(ctx, layer.SHA256, after); used {
		t.Error("a stale link counts")
	}
	if unused, err := db.ForgetBlobIfUnusedAt(ctx, kept.SHA256, after); err != nil || unused {
		t.Errorf("a referenced blob: %v, %v", unused, err)
	}
	if unused, err := db.ForgetBlobIfUnusedAt(ctx, layer.SHA256, after); err != nil || !unused {
		t.Errorf("a blob with a stale link only: %v, %v", unused, err)
	}
	if ok, _ := q.OCIBlobLinked(ctx, r.ID, "app", layer.SHA256); ok {
		t.Error("the stale link survived its blob")
	}
	if n := count(t, db, `SELECT COUNT(*) FROM blobs WHERE sha256 = ?`, layer.SHA256); n != 0 {
		t.Error("the blob's record survived")
	}
	// The plain form counts every link.
	if unused, _ := db.ForgetBlobIfUnused(ctx, kept.SHA256); unused {
		t.Error("ForgetBlobIfUnused freed a linked blob")
	}
}
