package repo

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"arca/internal/blob"
)

func TestManifestBlobsFromSources(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.svc.RegisterFormat("oci", nil)
	dest := e.create(t, `{"name":"dest","format":"oci","type":"hosted"}`)
	other := e.create(t, `{"name":"other","format":"oci","type":"hosted"}`)
	layer := []byte("layer bytes")
	info, err := e.svc.PutOCIBlob(ctx, other, "team/app", bytes.NewReader(layer), blob.NoExpectation)
	if err != nil {
		t.Fatal(err)
	}
	put := func(image string, sources ...*Repository) error {
		body := []byte(`{"schemaVersion":2,"n":"` + image + `"}`)
		_, err := e.svc.PutOCIManifest(ctx, dest, body, PutOCIManifestOptions{
			Image: image, Digest: "sha256:" + blob.DigestBytes(body).SHA256, MediaType: "application/vnd.oci.image.manifest.v1+json",
			Refs:    []OCIRef{{Algorithm: blob.SHA256, Hex: info.SHA256, Kind: OCIRefLayer}},
			Sources: sources,
		})
		return err
	}
	var missing *MissingError
	// Without sources, or from a source that holds the blob under another
	// image, the layer is missing.
	if err := put("team/app"); !errors.As(err, &missing) {
		t.Errorf("no sources: %v, want a MissingError", err)
	}
	if err := put("team/else", other); !errors.As(err, &missing) {
		t.Errorf("a source holding the blob for another image: %v, want a MissingError", err)
	}
	// A source holding it for the same image lends it: the image links it.
	if err := put("team/app", other); err != nil {
		t.Fatalf("with the source: %v", err)
	}
	if _, err := e.svc.OCIBlob(ctx, dest, "team/app", blob.SHA256, info.SHA256); err != nil {
		t.Errorf("the layer is not linked into the image: %v", err)
	}
	// A proxy holding the bytes under any path lends them too.
	px := e.create(t, `{"name":"px","format":"oci","type":"proxy","proxy":{"url":"http://127.0.0.1:1/"}}`)
	if _, err := e.svc.PutAsset(ctx, px, bytes.NewReader(layer), PutOptions{Path: "x/blobs/y", Expect: blob.NoExpectation, Origin: &Origin{}}); err != nil {
		t.Fatal(err)
	}
	if err := put("team/third", px); err != nil {
		t.Errorf("with a proxy source: %v", err)
	}
}
