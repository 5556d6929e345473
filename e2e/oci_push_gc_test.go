package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gzipLayer is an image layer written to a file: a gzipped tar, which crane
// pushes as it is, so that the blob stored is exactly the file.
type gzipLayer struct {
	Path   string
	SHA256 string // hex, of the file: the layer's digest
	Size   int64
	Bytes  []byte
}

// makeGzipLayer writes a gzipped tar holding one file of n random bytes. It
// is safe to call from any goroutine.
func makeGzipLayer(path string, n int) (gzipLayer, error) {
	content := make([]byte, n)
	rand.Read(content) //nolint:errcheck // crypto/rand.Read never fails
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return gzipLayer{}, err
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "payload.bin", Mode: 0o644, Size: int64(n),
		Typeflag: tar.TypeReg}); err != nil {
		return gzipLayer{}, err
	}
	tw.Write(content) //nolint:errcheck // a bytes.Buffer does not fail
	if err := tw.Close(); err != nil {
		return gzipLayer{}, err
	}
	if err := zw.Close(); err != nil {
		return gzipLayer{}, err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return gzipLayer{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return gzipLayer{Path: path, SHA256: hex.EncodeToString(sum[:]), Size: int64(buf.Len()),
		Bytes: buf.Bytes()}, nil
}

func newGzipLayer(t *testing.T, dir, name string, n int) gzipLayer {
	t.Helper()
	l, err := makeGzipLayer(filepath.Join(dir, name+".tar.gz"), n)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// craneTry runs crane with the client's configuration and returns its
// output and error instead of failing the test, so that goroutines may call
// it.
func craneTry(c *ociClient, crane string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(crane, args...)
	cmd.Env = c.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// blobFilesSized returns the committed blob files of the given size.
func blobFilesSized(t *testing.T, data string, size int64) []string {
	t.Helper()
	var found []string
	err := filepath.Walk(filepath.Join(data, "blobs", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() && fi.Size() == size {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// uploadLeftovers returns the files of the blob store outside committed
// blobs: unfinished uploads and temporary files.
func uploadLeftovers(t *testing.T, data string) []string {
	t.Helper()
	root := filepath.Join(data, "blobs")
	var left []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() && p == filepath.Join(root, "blobs") {
			return filepath.SkipDir
		}
		if !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// ociManifest is the part of an image manifest the tests read.
type ociManifest struct {
	Config struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"layers"`
}

// pushedImage is an image pushed by crane append, as the registry serves it.
type pushedImage struct {
	Ref      string
	Digest   string // sha256:...
	Raw      string // the manifest's bytes
	Manifest ociManifest
}

// craneAppend pushes the layers as a new image tagged ref and reads back its
// manifest.
func craneAppend(c *ociClient, dir, ref string, layers ...gzipLayer) pushedImage {
	c.t.Helper()
	args := []string{"append", "--insecure"}
	for _, l := range layers {
		args = append(args, "-f", l.Path)
	}
	c.run(dir, "crane", append(args, "-t", ref)...)
	return fetchImage(c, dir, ref)
}

// fetchImage reads an image's manifest and digest.
func fetchImage(c *ociClient, dir, ref string) pushedImage {
	c.t.Helper()
	img := pushedImage{Ref: ref, Digest: strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", ref))}
	img.Raw = c.run(dir, "crane", "manifest", "--insecure", ref)
	if "sha256:"+sha256Hex(img.Raw) != img.Digest {
		img.Raw = strings.TrimSuffix(img.Raw, "\n")
	}
	if "sha256:"+sha256Hex(img.Raw) != img.Digest {
		c.t.Fatalf("%s: the manifest served does not have the digest %s", ref, img.Digest)
	}
	if err := json.Unmarshal([]byte(img.Raw), &img.Manifest); err != nil {
		c.t.Fatalf("%s: manifest: %v\n%s", ref, err, img.Raw)
	}
	return img
}

// TestOCIPushConcurrentSameLayer has eight crane clients push the same layer
// at once, to tags of one image and to other images of the same repository:
// all succeed, every tag names the layer, and one blob file holds it.
func TestOCIPushConcurrentSameLayer(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	crane := requireTool(t, "crane")
	c.run(dir, "crane", "auth", "login", reg, "-u", "admin", "-p", adminPassword)
	layer := newGzipLayer(t, dir, "same", 2<<20)

	const clients = 8
	refs := make([]string, clients)
	for i := range refs {
		if i%2 == 0 {
			refs[i] = fmt.Sprintf("%s/containers/team/app:t%d", reg, i) // one image, many tags
		} else {
			refs[i] = fmt.Sprintf("%s/containers/team/app%d:v%d", reg, i, i) // an image each
		}
	}
	type result struct {
		stderr string
		err    error
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i, ref := range refs {
		wg.Go(func() {
			<-startGate
			_, stderr, err := craneTry(c, crane, "append", "--insecure", "-f", layer.Path, "-t", ref)
			results[i] = result{stderr, err}
		})
	}
	close(startGate)
	wg.Wait()
	uploaded := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("push %d to %s: %v\n%s", i, refs[i], r.err, r.stderr)
		}
		if strings.Contains(r.stderr, "pushed blob: sha256:"+layer.SHA256) {
			uploaded++
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d of %d clients uploaded the layer; the others found it stored", uploaded, clients)

	if files := blobFilesSized(t, in.Data, layer.Size); len(files) != 1 {
		t.Errorf("%d blob files of the layer's size %d, want 1: %v", len(files), layer.Size, files)
	} else if filepath.Base(files[0]) != layer.SHA256 {
		t.Errorf("the blob file of the layer's size is %s, want %s", files[0], layer.SHA256)
	}
	if left := uploadLeftovers(t, in.Data); len(left) != 0 {
		t.Errorf("files left in the upload areas: %v", left)
	}
	for _, ref := range refs {
		img := fetchImage(c, dir, ref)
		if len(img.Manifest.Layers) != 1 || img.Manifest.Layers[0].Digest != "sha256:"+layer.SHA256 {
			t.Errorf("%s has the layers %+v, want only sha256:%s", ref, img.Manifest.Layers, layer.SHA256)
		}
	}
	got := c.run(dir, "crane", "blob", "--insecure", imageOf(refs[clients-1])+"@sha256:"+layer.SHA256)
	if got != string(layer.Bytes) {
		t.Errorf("the layer pulls back as %d bytes, not the %d pushed", len(got), layer.Size)
	}
}

// ociGCReport is the JSON report of arca gc, with its OCI part.
type ociGCReport struct {
	DryRun           *bool    `json:"dryRun"`
	BlobsFreed       int      `json:"blobsFreed"`
	BytesFreed       int64    `json:"bytesFreed"`
	Blobs            []string `json:"blobs"`
	ManifestsDeleted int      `json:"manifestsDeleted"`
	Manifests        []string `json:"manifests"`
}

// TestOCIGCDeletedTags pushes three images, A and C sharing a layer, deletes
// A's tag in a repository that collects untagged manifests and an image's
// tag in one that does not, and checks that gc --dry-run lists, and gc
// frees, exactly A's manifest, config and own layer, while B and C still
// pull byte-identical and the untagged manifest of the other repository
// stays.
func TestOCIGCDeletedTags(t *testing.T) {
	in := &instance{t: t, Data: filepath.Join(t.TempDir(), "data"),
		Env: []string{"ARCA_ADMIN_PASSWORD=" + adminPassword, "ARCA_GC_GRACE_PERIOD=0s"}}
	in.Start()
	t.Cleanup(in.Stop)
	in.createRepo(`{"name":"collected","format":"oci","type":"hosted","oci":{"gcUntagged":true}}`)
	in.createRepo(`{"name":"kept","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	c.run(dir, "crane", "auth", "login", reg, "-u", "admin", "-p", adminPassword)

	layers := map[string]gzipLayer{}
	for i, name := range []string{"shared", "only-a", "only-b", "only-c", "only-k"} {
		layers[name] = newGzipLayer(t, dir, name, 200<<10+i*1000)
	}
	repoImg := reg + "/collected/team/app"
	a := craneAppend(c, dir, repoImg+":a", layers["shared"], layers["only-a"])
	b := craneAppend(c, dir, repoImg+":b", layers["only-b"])
	cc := craneAppend(c, dir, repoImg+":c", layers["shared"], layers["only-c"])
	k := craneAppend(c, dir, reg+"/kept/team/app:k", layers["only-k"])

	// 5 layers, 4 configs, 4 manifests, each stored once.
	before := blobKeys(t, in.Data)
	if len(before) != 13 {
		t.Fatalf("%d blob files after the pushes, want 13", len(before))
	}

	// DELETE /v2/<name>/manifests/<tag> removes the tag only.
	c.run(dir, "crane", "delete", "--insecure", repoImg+":a")
	c.run(dir, "crane", "delete", "--insecure", reg+"/kept/team/app:k")
	for _, ref := range []string{repoImg + ":a", reg + "/kept/team/app:k"} {
		if _, stderr, err := craneTry(c, requireTool(t, "crane"), "manifest", "--insecure", ref); err == nil ||
			!strings.Contains(stderr, "MANIFEST_UNKNOWN") {
			t.Errorf("deleted tag %s: err %v, stderr %q; want MANIFEST_UNKNOWN", ref, err, stderr)
		}
	}
	for _, img := range []pushedImage{a, k} {
		ref := imageOf(img.Ref) + "@" + img.Digest
		if got := c.run(dir, "crane", "manifest", "--insecure", ref); strings.TrimSuffix(got, "\n") != img.Raw {
			t.Errorf("%s is not served by digest after its tag was deleted: %q", ref, got)
		}
	}

	hexOf := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	want := []string{layers["only-a"].SHA256, hexOf(a.Manifest.Config.Digest), hexOf(a.Digest)}
	slices.Sort(want)
	wantBytes := layers["only-a"].Size + a.Manifest.Config.Size + int64(len(a.Raw))
	wantManifests := []string{"collected/team/app@" + a.Digest}
	check := func(what string, r ociGCReport, dryRun bool) {
		t.Helper()
		slices.Sort(r.Blobs)
		if r.DryRun == nil || *r.DryRun != dryRun || r.BlobsFreed != len(want) || r.BytesFreed != wantBytes ||
			!reflect.DeepEqual(r.Blobs, want) || r.ManifestsDeleted != 1 || !reflect.DeepEqual(r.Manifests, wantManifests) {
			t.Fatalf("%s report %+v (dryRun %v),\nwant %d blobs, %d bytes: %v, manifests %v", what, r, r.DryRun,
				len(want), wantBytes, want, wantManifests)
		}
	}

	// The dry run lists exactly A's blobs and manifest, and removes nothing.
	var r ociGCReport
	decodeCLI(t, in.cliOK(asAdminEnv, "gc", "--dry-run", "-o", "json"), &r)
	check("dry run", r, true)
	if got := blobKeys(t, in.Data); !reflect.DeepEqual(got, before) {
		t.Fatalf("a dry run changed the blob files: %d before, %d after", len(before), len(got))
	}
	aByDigest := repoImg + "@" + a.Digest
	if got := c.run(dir, "crane", "manifest", "--insecure", aByDigest); strings.TrimSuffix(got, "\n") != a.Raw {
		t.Fatalf("a dry run deleted the manifest %s", aByDigest)
	}

	// The real run frees exactly those.
	r = ociGCReport{}
	decodeCLI(t, in.cliOK(asAdminEnv, "gc", "-o", "json"), &r)
	check("gc", r, false)
	after := blobKeys(t, in.Data)
	var freed []string
	for _, key := range before {
		if !slices.Contains(after, key) {
			freed = append(freed, key)
		}
	}
	if !reflect.DeepEqual(freed, want) || len(after) != len(before)-len(want) {
		t.Fatalf("gc removed the blob files %v, want %v (%d files left)", freed, want, len(after))
	}
	if !slices.Contains(after, layers["shared"].SHA256) {
		t.Fatal("gc removed the layer C shares with A")
	}
	crane := requireTool(t, "crane")
	if _, stderr, err := craneTry(c, crane, "manifest", "--insecure", aByDigest); err == nil ||
		!strings.Contains(stderr, "MANIFEST_UNKNOWN") {
		t.Errorf("the collected manifest %s: err %v, stderr %q; want MANIFEST_UNKNOWN", aByDigest, err, stderr)
	}
	if _, stderr, err := craneTry(c, crane, "blob", "--insecure", repoImg+"@sha256:"+layers["only-a"].SHA256); err == nil ||
		!strings.Contains(stderr, "BLOB_UNKNOWN") {
		t.Errorf("A's freed layer: err %v, stderr %q; want BLOB_UNKNOWN", err, stderr)
	}

	// B and C pull whole and byte-identical; so does the untagged image of
	// the repository that keeps untagged manifests.
	kByDigest := reg + "/kept/team/app@" + k.Digest
	c.run(dir, "crane", "pull", "--insecure", "--format", "oci", b.Ref, cc.Ref, kByDigest, filepath.Join(dir, "pulled"))
	for _, pull := range []struct {
		img    pushedImage
		ref    string
		layers []string
	}{
		{b, b.Ref, []string{"only-b"}},
		{cc, cc.Ref, []string{"shared", "only-c"}},
		{k, kByDigest, []string{"only-k"}},
	} {
		if got := fetchImage(c, dir, pull.ref); got.Raw != pull.img.Raw {
			t.Errorf("%s: the manifest changed", pull.ref)
		}
		cfg := c.run(dir, "crane", "config", "--insecure", pull.ref)
		if "sha256:"+sha256Hex(cfg) != pull.img.Manifest.Config.Digest {
			t.Errorf("%s: the config does not have its digest %s", pull.ref, pull.img.Manifest.Config.Digest)
		}
		image := imageOf(pull.ref)
		for _, name := range pull.layers {
			l := layers[name]
			if got := c.run(dir, "crane", "blob", "--insecure", image+"@sha256:"+l.SHA256); got != string(l.Bytes) {
				t.Errorf("%s: layer %s pulls back as %d bytes, not the %d pushed", pull.ref, name, len(got), l.Size)
			}
			p := filepath.Join(dir, "pulled", "blobs", "sha256", l.SHA256)
			if sha256File(t, p) != l.SHA256 {
				t.Errorf("%s: crane pull wrote layer %s wrong", pull.ref, name)
			}
		}
	}

	// Nothing is left to free.
	r = ociGCReport{}
	decodeCLI(t, in.cliOK(asAdminEnv, "gc", "-o", "json"), &r)
	if r.BlobsFreed != 0 || r.ManifestsDeleted != 0 {
		t.Errorf("second gc: %+v", r)
	}
}

// TestOCIGCDuringPushes pushes new images with crane for a few seconds
// while garbage collection runs again and again with no grace period, in a
// repository that collects untagged manifests. Every push that succeeded
// must pull whole afterwards; a push that failed must have failed cleanly
// and succeed when retried.
func TestOCIGCDuringPushes(t *testing.T) {
	in := &instance{t: t, Data: filepath.Join(t.TempDir(), "data"),
		Env: []string{"ARCA_ADMIN_PASSWORD=" + adminPassword, "ARCA_GC_GRACE_PERIOD=0s"}}
	in.Start()
	t.Cleanup(in.Stop)
	in.createRepo(`{"name":"busy","format":"oci","type":"hosted","oci":{"gcUntagged":true}}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	reg := in.Addr
	crane := requireTool(t, "crane")
	c.run(dir, "crane", "auth", "login", reg, "-u", "admin", "-p", adminPassword)

	// A base layer that every image shares; the first image keeps it.
	base := newGzipLayer(t, dir, "base", 64<<10)
	craneAppend(c, dir, reg+"/busy/app:base", base)

	type push struct {
		tag    string
		layer  gzipLayer
		err    error
		stderr string
	}
	var (
		mu     sync.Mutex
		pushes []*push
		seq    atomic.Int64
	)
	deadline := time.Now().Add(4 * time.Second)
	stopGC := make(chan struct{})
	var gcRuns, gcFreed atomic.Int64
	gcErrs := make(chan string, 100)
	var gcWG, pushWG sync.WaitGroup
	gcWG.Go(func() {
		client := &http.Client{Timeout: 30 * time.Second}
		for {
			select {
			case <-stopGC:
				return
			default:
			}
			req, _ := http.NewRequest("POST", in.URL+"/api/v1/gc", strings.NewReader(`{"dryRun":false}`))
			req.SetBasicAuth("admin", adminPassword)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				gcErrs <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				gcErrs <- fmt.Sprintf("POST /api/v1/gc: %s: %s", resp.Status, body)
				return
			}
			var r ociGCReport
			json.Unmarshal(body, &r) //nolint:errcheck // only counted
			gcRuns.Add(1)
			gcFreed.Add(int64(r.BlobsFreed))
		}
	})
	for w := range 3 {
		pushWG.Go(func() {
			for time.Now().Before(deadline) {
				n := seq.Add(1)
				p := &push{tag: fmt.Sprintf("p%d", n)}
				var err error
				if p.layer, err = makeGzipLayer(filepath.Join(dir, p.tag+".tar.gz"), 16<<10+int(n)); err != nil {
					p.err = err
				} else {
					args := []string{"append", "--insecure"}
					if w != 0 { // one pusher's images have a single layer
						args = append(args, "-f", base.Path)
					}
					args = append(args, "-f", p.layer.Path, "-t", reg+"/busy/app:"+p.tag)
					_, p.stderr, p.err = craneTry(c, crane, args...)
				}
				mu.Lock()
				pushes = append(pushes, p)
				mu.Unlock()
			}
		})
	}
	pushWG.Wait()
	close(stopGC)
	gcWG.Wait()
	close(gcErrs)
	for e := range gcErrs {
		t.Errorf("gc during pushes: %s", e)
	}

	var failed []*push
	for _, p := range pushes {
		if p.err != nil {
			failed = append(failed, p)
		}
	}
	t.Logf("%d pushes (%d failed) during %d gc runs that freed %d blobs", len(pushes), len(failed),
		gcRuns.Load(), gcFreed.Load())
	if gcRuns.Load() < 2 || len(pushes)-len(failed) < 3 {
		t.Fatalf("too little overlap: %d gc runs, %d pushes succeeded", gcRuns.Load(), len(pushes)-len(failed))
	}
	// With no grace period a blob uploaded but not yet named by a manifest
	// is fair game, so a push may fail; it must fail cleanly and go through
	// when tried again.
	for i, p := range failed {
		if i < 3 {
			t.Logf("push %s failed during gc: %v: %s", p.tag, p.err, lastLine(p.stderr))
		}
		if !strings.Contains(p.stderr, "MANIFEST_BLOB_UNKNOWN") && !strings.Contains(p.stderr, "BLOB_UNKNOWN") {
			t.Errorf("push %s failed with an unexpected error: %v\n%s", p.tag, p.err, p.stderr)
		}
		args := []string{"append", "--insecure", "-f", p.layer.Path, "-t", reg + "/busy/app:" + p.tag}
		if _, stderr, err := craneTry(c, crane, args...); err != nil {
			t.Errorf("push %s again after gc: %v\n%s", p.tag, err, stderr)
		}
	}

	// A last run at rest frees what the failed pushes left.
	var last ociGCReport
	decodeCLI(t, in.cliOK(asAdminEnv, "gc", "-o", "json"), &last)
	t.Logf("the last gc freed %d blobs", last.BlobsFreed)

	// Every tag pulls whole (crane checks every blob's digest), names the
	// layer pushed, and that layer is intact.
	refs := []string{reg + "/busy/app:base"}
	wantLayer := map[string]gzipLayer{reg + "/busy/app:base": base}
	for _, p := range pushes {
		refs = append(refs, reg+"/busy/app:"+p.tag)
		wantLayer[reg+"/busy/app:"+p.tag] = p.layer
	}
	layout := filepath.Join(dir, "pulled")
	args := append([]string{"pull", "--insecure", "--format", "oci", "--annotate-ref"}, refs...)
	if _, stderr, err := craneTry(c, crane, append(args, layout)...); err != nil {
		// Name the images that do not pull.
		for _, ref := range refs {
			if _, stderr, err := craneTry(c, crane, "pull", "--insecure", ref, filepath.Join(dir, "one.tar")); err != nil {
				t.Errorf("%s does not pull after gc: %v: %s", ref, err, lastLine(stderr))
			}
		}
		t.Fatalf("pulling every pushed image: %v: %s", err, lastLine(stderr))
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	readLayoutBlob := func(digest string) []byte {
		b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	indexJSON, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(indexJSON, &index); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, d := range index.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		l, ok := wantLayer[ref]
		if !ok {
			t.Errorf("the pulled layout holds %s (%s), not pushed", ref, d.Digest)
			continue
		}
		seen++
		var m ociManifest
		if err := json.Unmarshal(readLayoutBlob(d.Digest), &m); err != nil || len(m.Layers) == 0 {
			t.Errorf("%s: manifest %v", ref, err)
			continue
		}
		if last := m.Layers[len(m.Layers)-1]; last.Digest != "sha256:"+l.SHA256 {
			t.Errorf("%s names the layer %s, not the pushed sha256:%s", ref, last.Digest, l.SHA256)
		} else if !bytes.Equal(readLayoutBlob(last.Digest), l.Bytes) {
			t.Errorf("%s: its layer did not pull back intact", ref)
		}
	}
	if seen != len(refs) {
		t.Errorf("the pulled layout holds %d of the %d images", seen, len(refs))
	}

	// What the store keeps is exactly what the images need.
	es, err := os.ReadDir(filepath.Join(layout, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var needed []string
	for _, e := range es {
		needed = append(needed, e.Name())
	}
	slices.Sort(needed)
	if stored := blobKeys(t, in.Data); !reflect.DeepEqual(stored, needed) {
		var extra, missing []string
		for _, k := range stored {
			if !slices.Contains(needed, k) {
				extra = append(extra, k)
			}
		}
		for _, k := range needed {
			if !slices.Contains(stored, k) {
				missing = append(missing, k)
			}
		}
		t.Errorf("the store holds %d blobs, the images need %d: unneeded %v, missing %v", len(stored),
			len(needed), extra, missing)
	}
}

// imageOf returns the image of a reference HOST:PORT/NAME:TAG or
// HOST:PORT/NAME@DIGEST.
func imageOf(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	return ref[:strings.LastIndex(ref, ":")]
}

// lastLine returns the last non-empty line of a client's output.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
