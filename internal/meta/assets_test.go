package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"arca/internal/blob"
)

// mustAsset stores an asset at path pointing to b, recording b first.
func mustAsset(t *testing.T, q Queries, repositoryID int64, path string, b blob.Info) Asset {
	t.Helper()
	ctx := context.Background()
	if err := q.PutBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	a := Asset{RepositoryID: repositoryID, Path: path, Blob: b, ContentType: "application/octet-stream", Uploader: "tester"}
	if err := q.PutAsset(ctx, &a); err != nil {
		t.Fatalf("PutAsset(%s): %v", path, err)
	}
	return a
}

func TestPutBlobIdempotentAndBlobByDigest(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.Queries()
	b := infoOf("hello")
	other := infoOf("other")
	for range 2 {
		if err := q.PutBlob(ctx, b); err != nil {
			t.Fatalf("PutBlob: %v", err)
		}
	}
	if err := q.PutBlob(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM blobs WHERE sha256 = ?`, b.SHA256); n != 1 {
		t.Errorf("%d rows for one blob", n)
	}

	for _, alg := range []blob.Algorithm{blob.SHA256, blob.SHA512, blob.SHA1, blob.MD5} {
		t.Run(string(alg), func(t *testing.T) {
			got, err := q.BlobByDigest(ctx, alg, b.Get(alg))
			if err != nil {
				t.Fatal(err)
			}
			if got != b {
				t.Errorf("BlobByDigest(%s) = %+v, want %+v", alg, got, b)
			}
			if _, err := q.BlobByDigest(ctx, alg, infoOf("absent").Get(alg)); !errors.Is(err, ErrNotFound) {
				t.Errorf("absent digest: %v, want ErrNotFound", err)
			}
		})
	}
	for _, alg := range []blob.Algorithm{"sha384", "", "sha256 OR 1=1 --"} {
		if _, err := q.BlobByDigest(ctx, alg, b.SHA256); !errors.Is(err, ErrNotFound) {
			t.Errorf("BlobByDigest(%q): %v, want ErrNotFound", alg, err)
		}
	}
}

func TestPutAssetInsertThenReplace(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	r := mustRepo(t, q, "files")
	b1, b2 := infoOf("one"), infoOf("two")
	for _, b := range []blob.Info{b1, b2} {
		if err := q.PutBlob(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	comp, err := q.Component(ctx, r.ID, "lib", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	fetched := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	first := Asset{RepositoryID: r.ID, Path: "dir/file", ComponentID: comp, Blob: b1,
		ContentType: "text/plain", Uploader: "alice", OriginURL: "https://up/file",
		OriginETag: `"e1"`, OriginLastModified: "Mon, 01 Jan 2024 00:00:00 GMT", FetchedAt: fetched}
	if err := q.PutAsset(ctx, &first); err != nil {
		t.Fatal(err)
	}
	if first.ID == 0 || first.CreatedAt.IsZero() || !first.CreatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("inserted asset: %+v", first)
	}
	got, err := q.Asset(ctx, r.ID, "dir/file")
	if err != nil {
		t.Fatal(err)
	}
	if got != first {
		t.Errorf("Asset = %+v\nwant    %+v", got, first)
	}

	time.Sleep(2 * time.Millisecond)
	second := Asset{RepositoryID: r.ID, Path: "dir/file", Blob: b2, ContentType: "application/x", Uploader: "bob"}
	if err := q.PutAsset(ctx, &second); err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID {
		t.Errorf("replace changed the id: %d -> %d", first.ID, second.ID)
	}
	if !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("replace changed CreatedAt: %v -> %v", first.CreatedAt, second.CreatedAt)
	}
	if !second.UpdatedAt.After(first.UpdatedAt) {
		t.Errorf("UpdatedAt not advanced: %v -> %v", first.UpdatedAt, second.UpdatedAt)
	}
	got, err = q.Asset(ctx, r.ID, "dir/file")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != first.ID || got.Blob != b2 || got.ContentType != "application/x" || got.Uploader != "bob" ||
		!got.CreatedAt.Equal(first.CreatedAt) || !got.UpdatedAt.Equal(second.UpdatedAt) ||
		got.ComponentID != 0 || got.OriginURL != "" || !got.FetchedAt.IsZero() {
		t.Errorf("after replace: %+v", got)
	}
	if _, err := q.Asset(ctx, r.ID, "dir"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Asset(dir): %v, want ErrNotFound", err)
	}

	// A path must point to a recorded blob.
	bad := Asset{RepositoryID: r.ID, Path: "x", Blob: infoOf("unrecorded")}
	if err := q.PutAsset(ctx, &bad); err == nil {
		t.Error("PutAsset accepted a blob that is not recorded")
	}
}

func TestDeleteAsset(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	r := mustRepo(t, q, "files")
	b := infoOf("content")
	put := mustAsset(t, q, r.ID, "a/b", b)

	old, err := q.DeleteAsset(ctx, r.ID, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if old.ID != put.ID || old.Path != "a/b" || old.Blob != b || old.Uploader != "tester" {
		t.Errorf("DeleteAsset returned %+v, want %+v", old, put)
	}
	if _, err := q.Asset(ctx, r.ID, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Asset after delete: %v, want ErrNotFound", err)
	}
	if _, err := q.DeleteAsset(ctx, r.ID, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteAsset: %v, want ErrNotFound", err)
	}
	if _, err := q.BlobByDigest(ctx, blob.SHA256, b.SHA256); err != nil {
		t.Errorf("deleting the asset removed the blob row: %v", err)
	}
}

func TestAssetsUnder(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	r := mustRepo(t, q, "files")
	other := mustRepo(t, q, "other")
	paths := []string{
		"b/y", "a/2/x", "a", "a/1", "a-b/x", "ab/x", "%/x", "_/y", "a%/z", "a_/z",
		"a%", "%", "x\xff/1", "x\xff\xff",
	}
	for i, p := range paths {
		mustAsset(t, q, r.ID, p, infoOf(p))
		if i%2 == 0 {
			mustAsset(t, q, other.ID, p, infoOf(p))
		}
	}
	mustAsset(t, q, other.ID, "a/only-other", infoOf("o"))

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", slices.Sorted(slices.Values(paths))},
		{"a/", []string{"a/1", "a/2/x"}},
		{"a", []string{"a", "a%", "a%/z", "a-b/x", "a/1", "a/2/x", "a_/z", "ab/x"}},
		{"a%", []string{"a%", "a%/z"}},
		{"a_", []string{"a_/z"}},
		{"%", []string{"%", "%/x"}},
		{"_", []string{"_/y"}},
		{"b/", []string{"b/y"}},
		{"a/2/x", []string{"a/2/x"}},
		{"x\xff", []string{"x\xff/1", "x\xff\xff"}},
		{"c", nil},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			var got []string
			err := q.AssetsUnder(ctx, r.ID, tc.prefix, func(a Asset) error {
				if a.RepositoryID != r.ID || a.Blob != infoOf(a.Path) {
					t.Errorf("asset %q has wrong fields: %+v", a.Path, a)
				}
				got = append(got, a.Path)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("AssetsUnder(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}

	stop := errors.New("stop")
	calls := 0
	err := q.AssetsUnder(ctx, r.ID, "", func(Asset) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn error: got %v after %d calls, want stop after 1", err, calls)
	}
}

func TestFolderEntries(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	r := mustRepo(t, q, "files")
	other := mustRepo(t, q, "other")
	paths := []string{"a.txt", "dir-x", "dir/one", "dir/sub/two", "dir.y", "dir0file", "e/f", "x\xff/1", "x\xff\xff"}
	// More files than a batch, in a folder and beside folders, so that
	// reading goes on across batches and past folders.
	for i := range folderBatch + 44 {
		paths = append(paths, fmt.Sprintf("big/%04d", i), fmt.Sprintf("dir/sub/deep/%04d", i))
	}
	for _, p := range paths {
		mustAsset(t, q, r.ID, p, infoOf(p))
	}
	mustAsset(t, q, other.ID, "c/only-other", infoOf("o"))
	list := func(folder string) []string {
		t.Helper()
		var got []string
		err := q.FolderEntries(ctx, r.ID, folder, func(dir string, a *Asset) error {
			if a == nil {
				got = append(got, dir+"/")
			} else {
				if a.RepositoryID != r.ID || a.Blob != infoOf(a.Path) {
					t.Errorf("asset %q has wrong fields: %+v", a.Path, a)
				}
				got = append(got, strings.TrimPrefix(a.Path, folder))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := list(""), []string{"a.txt", "big/", "dir-x", "dir.y", "dir/", "dir0file", "e/", "x\xff/", "x\xff\xff"}; !slices.Equal(got, want) {
		t.Errorf("root = %q, want %q", got, want)
	}
	if got, want := list("dir/"), []string{"one", "sub/"}; !slices.Equal(got, want) {
		t.Errorf("dir/ = %q, want %q", got, want)
	}
	if got, want := list("dir/sub/"), []string{"deep/", "two"}; !slices.Equal(got, want) {
		t.Errorf("dir/sub/ = %q, want %q", got, want)
	}
	if got := list("big/"); len(got) != folderBatch+44 || got[0] != "0000" || got[len(got)-1] != fmt.Sprintf("%04d", folderBatch+43) {
		t.Errorf("big/ lists %d files from %q", len(got), got[:1])
	}
	if got := list("c/"); len(got) != 0 {
		t.Errorf("another repository's folder: %q", got)
	}
}

func TestBlobLinks(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	ra := mustRepo(t, q, "ra")
	rb := mustRepo(t, q, "rb")
	x := infoOf("x")

	linked := func(r Repository) bool {
		t.Helper()
		ok, err := q.BlobLinked(ctx, r.ID, x.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	inUse := func() bool {
		t.Helper()
		ok, err := q.BlobInUse(ctx, x.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	if err := q.PutBlob(ctx, x); err != nil {
		t.Fatal(err)
	}
	if linked(ra) || inUse() {
		t.Fatal("a fresh blob is linked or in use")
	}

	mustAsset(t, q, ra.ID, "one", x)
	if !inUse() {
		t.Error("a blob an asset points to is not in use")
	}
	mustAsset(t, q, ra.ID, "two", x)
	for range 2 {
		if err := q.LinkBlob(ctx, ra.ID, x.SHA256); err != nil {
			t.Fatalf("LinkBlob: %v", err)
		}
	}
	if !linked(ra) || linked(rb) {
		t.Fatalf("links: ra %v, rb %v; want true, false", linked(ra), linked(rb))
	}

	// The link stays while another asset of the repository uses the blob.
	if _, err := q.DeleteAsset(ctx, ra.ID, "one"); err != nil {
		t.Fatal(err)
	}
	if err := q.UnlinkBlobIfUnused(ctx, ra.ID, x.SHA256); err != nil {
		t.Fatal(err)
	}
	if !linked(ra) {
		t.Error("unlinked although asset two still uses the blob")
	}

	// Another repository's asset does not keep ra's link.
	mustAsset(t, q, rb.ID, "elsewhere", x)
	if _, err := q.DeleteAsset(ctx, ra.ID, "two"); err != nil {
		t.Fatal(err)
	}
	if err := q.UnlinkBlobIfUnused(ctx, ra.ID, x.SHA256); err != nil {
		t.Fatal(err)
	}
	if linked(ra) {
		t.Error("link kept although no asset of ra uses the blob")
	}
	if !inUse() {
		t.Error("blob used by rb's asset reported unused")
	}

	// A link alone keeps a blob in use.
	if _, err := q.DeleteAsset(ctx, rb.ID, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if inUse() {
		t.Error("blob with neither asset nor link is in use")
	}
	if err := q.LinkBlob(ctx, rb.ID, x.SHA256); err != nil {
		t.Fatal(err)
	}
	if !inUse() {
		t.Error("linked blob reported unused")
	}
	if err := q.UnlinkBlobIfUnused(ctx, rb.ID, x.SHA256); err != nil {
		t.Fatal(err)
	}
	if inUse() {
		t.Error("blob still in use after its last link went")
	}
	if err := q.DeleteBlob(ctx, x.SHA256); err != nil {
		t.Fatal(err)
	}
	if _, err := q.BlobByDigest(ctx, blob.SHA256, x.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("blob after DeleteBlob: %v", err)
	}
}

func TestDeleteRepositoryCascades(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	q := db.Queries()
	gone := mustRepo(t, q, "gone")
	kept := mustRepo(t, q, "kept")
	shared, own := infoOf("shared"), infoOf("own")
	for _, r := range []Repository{gone, kept} {
		comp, err := q.Component(ctx, r.ID, "lib", "1")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []blob.Info{shared, own} {
			if err := q.PutBlob(ctx, b); err != nil {
				t.Fatal(err)
			}
			a := Asset{RepositoryID: r.ID, Path: b.SHA256, ComponentID: comp, Blob: b}
			if err := q.PutAsset(ctx, &a); err != nil {
				t.Fatal(err)
			}
			if err := q.LinkBlob(ctx, r.ID, b.SHA256); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := q.DeleteRepository(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"assets", "components", "repository_blobs"} {
		if n := count(t, db, `SELECT COUNT(*) FROM `+table+` WHERE repository_id = ?`, gone.ID); n != 0 {
			t.Errorf("%d %s rows of the deleted repository remain", n, table)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM `+table+` WHERE repository_id = ?`, kept.ID); n == 0 {
			t.Errorf("%s rows of the other repository went too", table)
		}
	}
	if n := count(t, db, `SELECT COUNT(*) FROM blobs`); n != 2 {
		t.Errorf("%d blob rows, want 2 (blobs stay for garbage collection)", n)
	}
	if a, err := q.Asset(ctx, kept.ID, shared.SHA256); err != nil || a.ComponentID == 0 {
		t.Errorf("other repository's asset: %+v, %v", a, err)
	}
}

func TestComponent(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	r := mustRepo(t, q, "files")
	o := mustRepo(t, q, "other")
	id1, err := q.Component(ctx, r.ID, "lib", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := q.Component(ctx, r.ID, "lib", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	if id1 == 0 || id1 != id2 {
		t.Errorf("Component twice gave %d and %d", id1, id2)
	}
	ids := map[int64]bool{id1: true}
	for _, c := range []struct {
		repo          int64
		name, version string
	}{{r.ID, "lib", "2.0"}, {r.ID, "other", "1.0"}, {o.ID, "lib", "1.0"}} {
		id, err := q.Component(ctx, c.repo, c.name, c.version)
		if err != nil {
			t.Fatal(err)
		}
		if ids[id] {
			t.Errorf("Component(%d, %s, %s) reused id %d", c.repo, c.name, c.version, id)
		}
		ids[id] = true
	}
}

func TestTouchAsset(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	r := mustRepo(t, q, "files")
	a := mustAsset(t, q, r.ID, "f", infoOf("f"))
	if !a.LastDownloadedAt.IsZero() {
		t.Fatalf("new asset already downloaded at %v", a.LastDownloadedAt)
	}
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011, time.UTC)
	if err := q.TouchAsset(ctx, a.ID, at); err != nil {
		t.Fatal(err)
	}
	got, err := q.Asset(ctx, r.ID, "f")
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastDownloadedAt.Equal(at) {
		t.Errorf("LastDownloadedAt = %v, want %v", got.LastDownloadedAt, at)
	}
	if !got.UpdatedAt.Equal(a.UpdatedAt) {
		t.Errorf("TouchAsset changed UpdatedAt: %v -> %v", a.UpdatedAt, got.UpdatedAt)
	}
	// Replacing the asset keeps its download time.
	b := infoOf("g")
	if err := q.PutBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	re := Asset{RepositoryID: r.ID, Path: "f", Blob: b}
	if err := q.PutAsset(ctx, &re); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Asset(ctx, r.ID, "f"); !got.LastDownloadedAt.Equal(at) {
		t.Errorf("replace reset LastDownloadedAt to %v", got.LastDownloadedAt)
	}
}
