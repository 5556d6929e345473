package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// blobKeys returns the SHA-256 of every committed blob file, sorted.
func blobKeys(t *testing.T, data string) []string {
	t.Helper()
	var keys []string
	err := filepath.Walk(filepath.Join(data, "blobs", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			keys = append(keys, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type gcReport struct {
	DryRun     *bool    `json:"dryRun"`
	BlobsFreed int      `json:"blobsFreed"`
	BytesFreed int64    `json:"bytesFreed"`
	Blobs      []string `json:"blobs"`
}

// TestGarbageCollection uploads into two repositories, with bytes shared
// between and within them, removes some paths, an overwritten version and a
// whole repository, and checks that gc frees exactly the blobs nothing uses
// any more, and that everything else still downloads unchanged.
func TestGarbageCollection(t *testing.T) {
	in := &instance{t: t, Data: filepath.Join(t.TempDir(), "data"),
		Env: []string{"ARCA_ADMIN_PASSWORD=" + adminPassword, "ARCA_GC_GRACE_PERIOD=0s"}}
	in.Start()
	t.Cleanup(in.Stop)
	in.createRepo(`{"name":"one","format":"raw","type":"hosted","writePolicy":"allow"}`)
	in.createRepo(`{"name":"two","format":"raw","type":"hosted"}`)
	in.createRepo(`{"name":"three","format":"raw","type":"hosted"}`)

	content := map[string]string{}
	for _, name := range []string{"only-one", "shared", "twice", "only-two", "old", "new", "kept", "both-gone", "in-three"} {
		content[name] = strings.Repeat(name+" bytes\n", len(name)*37)
	}
	uploads := []struct{ path, content string }{
		{"/repository/one/a.txt", "only-one"},   // deleted: freed
		{"/repository/one/b.txt", "shared"},     // deleted here, kept in two
		{"/repository/two/b.txt", "shared"},     //
		{"/repository/one/c1.txt", "twice"},     // one of two paths deleted: kept
		{"/repository/one/c2.txt", "twice"},     //
		{"/repository/two/d.txt", "only-two"},   // deleted: freed
		{"/repository/one/e.txt", "old"},        // overwritten below: freed
		{"/repository/one/f.txt", "kept"},       // untouched: kept
		{"/repository/one/g.txt", "both-gone"},  // deleted in both: freed
		{"/repository/two/g.txt", "both-gone"},  //
		{"/repository/three/h.txt", "in-three"}, // its repository is deleted: freed
	}
	for _, u := range uploads {
		in.putFile(u.path, content[u.content])
	}
	in.putFile("/repository/one/e.txt", content["new"])
	for _, p := range []string{"/repository/one/a.txt", "/repository/one/b.txt", "/repository/one/c1.txt",
		"/repository/two/d.txt", "/repository/one/g.txt", "/repository/two/g.txt"} {
		if resp := in.do("DELETE", p, nil, false); resp.StatusCode != 204 {
			t.Fatalf("DELETE %s: %s", p, resp.Status)
		}
	}
	if resp := in.do("DELETE", "/api/v1/repositories/three", nil, false); resp.StatusCode != 204 {
		t.Fatalf("delete repository three: %s", resp.Status)
	}

	var want []string
	var wantBytes int64
	for _, name := range []string{"only-one", "only-two", "old", "both-gone", "in-three"} {
		want = append(want, sha256Hex(content[name]))
		wantBytes += int64(len(content[name]))
	}
	slices.Sort(want)
	before := blobKeys(t, in.Data)
	if len(before) != len(content) {
		t.Fatalf("%d blob files before gc, want %d", len(before), len(content))
	}

	// A dry run lists them and removes nothing.
	var r gcReport
	decodeCLI(t, in.cliOK(asAdminEnv, "gc", "--dry-run", "-o", "json"), &r)
	slices.Sort(r.Blobs)
	if r.DryRun == nil || !*r.DryRun || r.BlobsFreed != len(want) || r.BytesFreed != wantBytes ||
		!reflect.DeepEqual(r.Blobs, want) {
		t.Fatalf("dry run report %+v (dryRun %v),\nwant %d blobs, %d bytes: %v", r, r.DryRun, len(want), wantBytes, want)
	}
	if got := blobKeys(t, in.Data); !reflect.DeepEqual(got, before) {
		t.Fatalf("a dry run changed the blob files: %d before, %d after", len(before), len(got))
	}
	out := in.cliOK(asAdminEnv, "gc", "--dry-run")
	if !strings.Contains(out, "5 blobs would be freed") || !strings.Contains(out, want[0]) {
		t.Errorf("dry run table:\n%s", out)
	}

	// The real run frees exactly those.
	r = gcReport{}
	decodeCLI(t, in.cliOK(asAdminEnv, "gc", "-o", "json"), &r)
	slices.Sort(r.Blobs)
	if r.DryRun == nil || *r.DryRun || r.BlobsFreed != len(want) || r.BytesFreed != wantBytes ||
		!reflect.DeepEqual(r.Blobs, want) {
		t.Fatalf("gc report %+v, want %d blobs, %d bytes: %v", r, len(want), wantBytes, want)
	}
	after := blobKeys(t, in.Data)
	var freed []string
	for _, k := range before {
		if !slices.Contains(after, k) {
			freed = append(freed, k)
		}
	}
	if !reflect.DeepEqual(freed, want) || len(after) != len(before)-len(want) {
		t.Fatalf("gc removed the blob files %v, want %v (%d files left)", freed, want, len(after))
	}

	// Everything still in use downloads byte-identical.
	for p, name := range map[string]string{
		"/repository/two/b.txt": "shared", "/repository/one/c2.txt": "twice",
		"/repository/one/e.txt": "new", "/repository/one/f.txt": "kept",
	} {
		if got := curl(t, "-f", "-u", admin(), in.URL+p); got != content[name] {
			t.Errorf("%s after gc: %d bytes, not the %d uploaded", p, len(got), len(content[name]))
		}
	}
	for _, p := range []string{"/repository/one/a.txt", "/repository/two/d.txt", "/repository/one/c1.txt"} {
		if got := curlStatus(t, "-u", admin(), in.URL+p); got != "404" {
			t.Errorf("%s after gc: %s, want 404", p, got)
		}
	}

	// Nothing is left to free; freed bytes can be uploaded again.
	out = in.cliOK(asAdminEnv, "gc")
	if !strings.Contains(out, "0 blobs freed") {
		t.Errorf("second gc:\n%s", out)
	}
	in.putFile("/repository/one/a-again.txt", content["only-one"])
	if got := curl(t, "-f", "-u", admin(), in.URL+"/repository/one/a-again.txt"); got != content["only-one"] {
		t.Error("bytes freed by gc and uploaded again do not download unchanged")
	}

	// gc is for admins only.
	in.createUser("reader", "reader-password", false, "one:read,write,delete,admin")
	res := in.cli([]string{"ARCA_USER=reader", "ARCA_PASSWORD=reader-password"}, "gc", "--dry-run")
	wantCLIError(t, res, "not an admin", "403")
}
