package oci_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestGoContainerRegistryClient drives the registry with the client that
// crane is built on: images, an index, copies across repositories (blob
// mounts), tags and referrers.
func TestGoContainerRegistryClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, containersRepo, otherRepo)
	host := strings.TrimPrefix(e.ts.URL, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: "secret"})
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref("containers/team/app:1.0"), img, auth); err != nil {
		t.Fatalf("push image: %v", err)
	}
	want, _ := img.Digest()
	got, err := remote.Image(ref("containers/team/app:1.0"), auth)
	if err != nil {
		t.Fatalf("pull image: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled digest %s, pushed %s", d, want)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("layers: %v, %v", len(layers), err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		// Reading to the end verifies the layer's digest.
		buf := make([]byte, 1<<16)
		for {
			if _, err := rc.Read(buf); err != nil {
				break
			}
		}
		rc.Close()
	}

	// A multi-platform index.
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref("containers/team/app:multi"), idx, auth); err != nil {
		t.Fatalf("push index: %v", err)
	}
	gotIdx, err := remote.Index(ref("containers/team/app:multi"), auth)
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	wantIdx, _ := idx.Digest()
	if d, _ := gotIdx.Digest(); d != wantIdx {
		t.Errorf("pulled index %s, pushed %s", d, wantIdx)
	}

	// A copy into another arca repository mounts the blobs.
	desc, err := remote.Get(ref("containers/team/app:1.0"), auth)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := desc.Image()
	if err := remote.Write(ref("other/copy:1.0"), src, auth); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if _, err := remote.Image(ref("other/copy:1.0"), auth); err != nil {
		t.Fatalf("pull copy: %v", err)
	}

	tags, err := remote.List(ref("containers/team/app:x").Context(), auth)
	if err != nil || !slices.Equal(tags, []string{"1.0", "multi"}) {
		t.Errorf("tags = %v, %v", tags, err)
	}

	// An artifact attached to the image, found through the referrers API.
	sig := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.example.sig.config")
	sig = mutate.Subject(sig, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: want, Size: mustSize(t, img)}).(v1.Image)
	sigDigest, _ := sig.Digest()
	if err := remote.Write(ref("containers/team/app@"+sigDigest.String()), sig, auth); err != nil {
		t.Fatalf("push referrer: %v", err)
	}
	refs, err := remote.Referrers(ref("containers/team/app@"+want.String()).Context().Digest(want.String()), auth)
	if err != nil {
		t.Fatalf("referrers: %v", err)
	}
	m, err := refs.IndexManifest()
	if err != nil || len(m.Manifests) != 1 || m.Manifests[0].Digest != sigDigest ||
		m.Manifests[0].ArtifactType != "application/vnd.example.sig.config" {
		t.Errorf("referrers = %+v, %v", m, err)
	}

	if err := remote.Delete(ref("containers/team/app:multi"), auth); err != nil {
		t.Errorf("delete tag: %v", err)
	}
	if _, err := remote.Head(ref("containers/team/app:multi"), auth); err == nil {
		t.Error("deleted tag still there")
	}
}

func mustSize(t *testing.T, img v1.Image) int64 {
	n, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
