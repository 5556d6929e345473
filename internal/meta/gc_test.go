package meta

import (
	"context"
	"errors"
	"testing"
)

func TestForgetBlobIfUnused(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.Queries()
	ra := mustRepo(t, q, "ra")
	rb := mustRepo(t, q, "rb")
	byAsset, byLink, byBoth, free, bystander := infoOf("asset"), infoOf("link"), infoOf("both"), infoOf("free"), infoOf("bystander")

	mustAsset(t, q, ra.ID, "a", byAsset)
	if err := q.PutBlob(ctx, byLink); err != nil {
		t.Fatal(err)
	}
	if err := q.LinkBlob(ctx, rb.ID, byLink.SHA256); err != nil {
		t.Fatal(err)
	}
	mustAsset(t, q, rb.ID, "b", byBoth)
	if err := q.LinkBlob(ctx, rb.ID, byBoth.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := q.PutBlob(ctx, free); err != nil {
		t.Fatal(err)
	}
	if err := q.PutBlob(ctx, bystander); err != nil {
		t.Fatal(err)
	}

	recorded := func(sha string) bool {
		t.Helper()
		return count(t, db, `SELECT COUNT(*) FROM blobs WHERE sha256 = ?`, sha) == 1
	}
	forget := func(sha string) bool {
		t.Helper()
		unused, err := db.ForgetBlobIfUnused(ctx, sha)
		if err != nil {
			t.Fatalf("ForgetBlobIfUnused(%s): %v", sha, err)
		}
		return unused
	}

	// Referenced blobs are used and keep their records.
	for name, b := range map[string]string{"asset": byAsset.SHA256, "link": byLink.SHA256, "both": byBoth.SHA256} {
		if forget(b) {
			t.Errorf("blob used by %s reported unused", name)
		}
		if !recorded(b) {
			t.Errorf("blob used by %s lost its record", name)
		}
	}

	// A recorded blob nothing refers to is unused and forgotten, and only
	// that one.
	if !forget(free.SHA256) {
		t.Error("an unreferenced blob reported used")
	}
	if recorded(free.SHA256) {
		t.Error("an unused blob kept its record")
	}
	if _, err := q.BlobByDigest(ctx, "sha256", free.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("BlobByDigest of a forgotten blob = %v, want ErrNotFound", err)
	}
	if !recorded(bystander.SHA256) {
		t.Error("another blob's record went too")
	}

	// A blob without any record (a crash between commit and transaction)
	// is unused; asking again is the same.
	if !forget(free.SHA256) {
		t.Error("a blob without a record reported used")
	}
	if !forget(infoOf("never recorded").SHA256) {
		t.Error("a never-recorded blob reported used")
	}

	// Once its last reference goes, a blob is unused.
	if _, err := q.DeleteAsset(ctx, ra.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if !forget(byAsset.SHA256) || recorded(byAsset.SHA256) {
		t.Error("a blob whose only asset was deleted is not forgotten")
	}
	// A link alone keeps a blob; the asset alone too.
	if _, err := q.DeleteAsset(ctx, rb.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if forget(byBoth.SHA256) || !recorded(byBoth.SHA256) {
		t.Error("a blob still linked was forgotten")
	}
	if err := q.UnlinkBlobIfUnused(ctx, rb.ID, byBoth.SHA256); err != nil {
		t.Fatal(err)
	}
	if !forget(byBoth.SHA256) || recorded(byBoth.SHA256) {
		t.Error("a blob neither linked nor pointed to is not forgotten")
	}
	if forget(byLink.SHA256) || !recorded(byLink.SHA256) {
		t.Error("a linked blob was forgotten")
	}

	// A failing transaction reports nothing unused.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := q.PutBlob(ctx, free); err != nil {
		t.Fatal(err)
	}
	if unused, err := db.ForgetBlobIfUnused(cancelled, free.SHA256); err == nil || unused {
		t.Errorf("ForgetBlobIfUnused with a cancelled context = %v, %v; want false, an error", unused, err)
	}
	if !recorded(free.SHA256) {
		t.Error("a failed call forgot the blob")
	}
}
