package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"arca/internal/blob"
	"arca/internal/repo"
)

// ociRepository creates an oci repository with the given "oci" section.
func (e *env) ociRepository(t *testing.T, name, section string) *repo.Repository {
	t.Helper()
	e.svc.RegisterFormat("oci", nil)
	r := &repo.Repository{Name: name, Format: "oci", Type: repo.Hosted, Online: true, WritePolicy: repo.AllowOnce}
	if section != "" {
		r.Sections = map[string]json.RawMessage{"oci": json.RawMessage(section)}
	}
	if err := e.svc.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// ociBlob uploads s to an image and returns its SHA-256.
func (e *env) ociBlob(t *testing.T, r *repo.Repository, image, s string) string {
	t.Helper()
	info, err := e.svc.PutOCIBlob(context.Background(), r, image, strings.NewReader(s), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	return info.SHA256
}

// ociManifest stores a manifest of the given content and references in an
// image, tagged with tags; subject may be "".
func (e *env) ociManifest(t *testing.T, r *repo.Repository, image, content, subject string, refs []repo.OCIRef, tags ...string) string {
	t.Helper()
	_, err := e.svc.PutOCIManifest(context.Background(), r, []byte(content), repo.PutOCIManifestOptions{
		Image: image, Digest: "sha256:" + sum(content), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Subject: subject, Refs: refs, Tags: tags,
	})
	if err != nil {
		t.Fatalf("PutOCIManifest(%s): %v", content, err)
	}
	return sum(content)
}

func layerRef(sha string) repo.OCIRef {
	return repo.OCIRef{Algorithm: blob.SHA256, Hex: sha, Kind: repo.OCIRefLayer}
}

func childRef(sha string) repo.OCIRef {
	return repo.OCIRef{Algorithm: blob.SHA256, Hex: sha, Kind: repo.OCIRefManifest}
}

func TestOCIManifestsKeepTheirBlobs(t *testing.T) {
	e := newEnv(t)
	c := New(e.db, e.blobs, 0, quietLog())
	r := e.ociRepository(t, "containers", "")
	layer := e.ociBlob(t, r, "app", "layer")
	orphan := e.ociBlob(t, r, "app", "uploaded, never used")
	m := e.ociManifest(t, r, "app", "manifest", "", []repo.OCIRef{layerRef(layer)})
	// Deleting the image's link does not free a blob a manifest needs.
	if err := e.svc.DeleteOCIBlob(context.Background(), r, "app", layer); err != nil {
		t.Fatal(err)
	}
	rep := run(t, c, false)
	wantReport(t, rep, map[string]int64{orphan: int64(len("uploaded, never used"))})
	if !e.stored(t, layer) || !e.stored(t, m) {
		t.Error("a manifest's blobs were freed")
	}
	if rep.ManifestsDeleted != 0 {
		t.Errorf("manifests deleted without gcUntagged: %v", rep.Manifests)
	}
	// Without gcUntagged, untagged manifests stay.
	e.ociManifest(t, r, "app", "untagged", "", nil)
	if rep := run(t, c, false); rep.ManifestsDeleted != 0 || !e.stored(t, sum("untagged")) {
		t.Errorf("untagged manifest collected without gcUntagged: %+v", rep)
	}
	// Deleting the manifest frees it and its layer.
	if err := e.svc.DeleteOCIManifest(context.Background(), r, "app", m, false); err != nil {
		t.Fatal(err)
	}
	wantReport(t, run(t, c, false), map[string]int64{layer: 5, m: int64(len("manifest"))})
}

func TestOCIFreshLinksAreKept(t *testing.T) {
	e := newEnv(t)
	c := New(e.db, e.blobs, time.Hour, quietLog())
	r := e.ociRepository(t, "containers", "")
	layer := e.ociBlob(t, r, "app", "layer pushed long ago")
	e.age(t, layer, time.Now().Add(-2*time.Hour))
	// The link is fresh: a push may be about to use the blob.
	wantReport(t, run(t, c, false), nil)
	if !e.stored(t, layer) {
		t.Error("a freshly linked blob was freed")
	}
}

func TestOCIGCUntagged(t *testing.T) {
	e := newEnv(t)
	c := New(e.db, e.blobs, 0, quietLog())
	r := e.ociRepository(t, "containers", `{"gcUntagged":true}`)
	plain := e.ociRepository(t, "plain", "")
	ctx := context.Background()

	shared := e.ociBlob(t, r, "app", "shared layer")
	only3 := e.ociBlob(t, r, "app", "layer of m3 only")
	m1 := e.ociManifest(t, r, "app", "m1", "", []repo.OCIRef{layerRef(shared)}, "1")
	m2 := e.ociManifest(t, r, "app", "m2", "", nil, "2")
	m3 := e.ociManifest(t, r, "app", "m3", "", []repo.OCIRef{layerRef(shared), layerRef(only3)})
	idx := e.ociManifest(t, r, "app", "index", "", []repo.OCIRef{childRef(m1), childRef(m3)})
	tagged := e.ociManifest(t, r, "app", "tagged index", "", []repo.OCIRef{childRef(m3)}, "multi")
	sig := e.ociManifest(t, r, "app", "signature of m2", "sha256:"+m2, nil)
	sigsig := e.ociManifest(t, r, "app", "signature of the signature", "sha256:"+sig, nil)
	lost := e.ociManifest(t, r, "app", "signature of nothing", "sha256:"+sum("nothing"), nil)
	keptElsewhere := e.ociManifest(t, plain, "app", "untagged elsewhere", "", nil)

	names := func(shas ...string) []string {
		var out []string
		for _, s := range shas {
			out = append(out, "containers/app@sha256:"+s)
		}
		slices.Sort(out)
		return out
	}
	// Kept: m1 and m2 (tagged), the tagged index and m3 through it, the
	// signature of m2 and its own signature. Not: the untagged index, the
	// referrer of a missing subject.
	var changed []int64
	c.OnChange(func(id int64) { changed = append(changed, id) })
	dry := run(t, c, true)
	if len(changed) != 0 {
		t.Errorf("a dry run reported changes to %v", changed)
	}
	want := names(idx, lost)
	if !slices.Equal(dry.Manifests, want) || dry.ManifestsDeleted != 2 {
		t.Errorf("dry run manifests = %v, want %v", dry.Manifests, want)
	}
	wantReport(t, dry, map[string]int64{idx: 5, lost: int64(len("signature of nothing"))})
	rep := run(t, c, false)
	if !slices.Equal(rep.Manifests, want) {
		t.Errorf("manifests deleted = %v, want %v", rep.Manifests, want)
	}
	if !slices.Equal(changed, []int64{r.ID}) {
		t.Errorf("changes reported for %v, want only %d (containers)", changed, r.ID)
	}
	wantReport(t, rep, map[string]int64{idx: 5, lost: int64(len("signature of nothing"))})
	for _, sha := range []string{m1, m2, m3, tagged, sig, sigsig, shared, only3, keptElsewhere} {
		if !e.stored(t, sha) {
			t.Errorf("blob %s of a kept manifest was freed", sha)
		}
	}

	// Untagging m2 and the index lets their dependants go too: m3 and its
	// own layer, the signature chain; the shared layer stays with m1.
	for _, tag := range []string{"2", "multi"} {
		if err := e.svc.DeleteOCITag(ctx, r, "app", tag, false); err != nil {
			t.Fatal(err)
		}
	}
	rep = run(t, c, false)
	want = names(m2, m3, tagged, sig, sigsig)
	if !slices.Equal(rep.Manifests, want) {
		t.Errorf("manifests deleted = %v, want %v", rep.Manifests, want)
	}
	freed := map[string]int64{only3: int64(len("layer of m3 only"))}
	for sha, content := range map[string]string{m2: "m2", m3: "m3", tagged: "tagged index", sig: "signature of m2", sigsig: "signature of the signature"} {
		freed[sha] = int64(len(content))
	}
	wantReport(t, rep, freed)
	if !e.stored(t, shared) || !e.stored(t, m1) {
		t.Error("m1 or its layer was freed")
	}
	if _, err := e.svc.OCIManifestByTag(ctx, r, "app", "1"); err != nil {
		t.Errorf("tag 1: %v", err)
	}
}

func TestOCIGCUntaggedSparesRecentPushes(t *testing.T) {
	e := newEnv(t)
	c := New(e.db, e.blobs, time.Hour, quietLog())
	r := e.ociRepository(t, "containers", `{"gcUntagged":true}`)
	layer := e.ociBlob(t, r, "app", "layer")
	m := e.ociManifest(t, r, "app", "untagged but new", "", []repo.OCIRef{layerRef(layer)})
	rep := run(t, c, false)
	if rep.ManifestsDeleted != 0 || !e.stored(t, m) || !e.stored(t, layer) {
		t.Errorf("a manifest pushed within the grace period was collected: %+v", rep)
	}
}

// TestOCIPushDuringGC pushes images while collections with no grace period
// run back to back: everything a finished push tagged stays pullable.
func TestOCIPushDuringGC(t *testing.T) {
	e := newEnv(t)
	c := New(e.db, e.blobs, 0, quietLog())
	r := e.ociRepository(t, "containers", `{"gcUntagged":true}`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, err := c.Run(ctx, false); err != nil && ctx.Err() == nil {
				t.Errorf("Run: %v", err)
				return
			}
		}
	}()
	type pushed struct{ tag, manifest, layer string }
	var all []pushed
	for i := range 30 {
		layer := e.ociBlob(t, r, "app", fmt.Sprintf("layer %d", i%5))
		// A failed push (its blob collected between upload and manifest)
		// is the client's to retry; a successful one must stay whole.
		content := fmt.Sprintf("manifest %d", i)
		_, err := e.svc.PutOCIManifest(ctx, r, []byte(content), repo.PutOCIManifestOptions{
			Image: "app", Digest: "sha256:" + sum(content), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Refs: []repo.OCIRef{layerRef(layer)}, Tags: []string{fmt.Sprint(i)},
		})
		if err == nil {
			all = append(all, pushed{fmt.Sprint(i), sum(content), layer})
		}
	}
	cancel()
	<-done
	run(t, c, false)
	if len(all) == 0 {
		t.Fatal("no push succeeded")
	}
	for _, p := range all {
		m, err := e.svc.OCIManifestByTag(context.Background(), r, "app", p.tag)
		if err != nil || m.Blob.SHA256 != p.manifest {
			t.Errorf("tag %s: %v", p.tag, err)
		}
		if !e.stored(t, p.manifest) || !e.stored(t, p.layer) {
			t.Errorf("push %s lost its bytes", p.tag)
		}
	}
}
