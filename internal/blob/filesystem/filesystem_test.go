package filesystem_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"arca/internal/blob"
	"arca/internal/blob/blobtest"
	"arca/internal/blob/filesystem"
)

const (
	sessionA = "0123456789abcdef0123456789abcdef"
	sessionB = "fedcba9876543210fedcba9876543210"
)

func TestDriverSuite(t *testing.T) {
	blobtest.RunDriverSuite(t, func(t *testing.T) blob.Driver {
		return newDriver(t, t.TempDir())
	})
}

func newDriver(t *testing.T, root string) *filesystem.Driver {
	t.Helper()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatalf("New(%s): %v", root, err)
	}
	return d
}

func key(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func put(t *testing.T, d blob.Driver, b []byte) string {
	t.Helper()
	tmp, err := d.Create(t.Context())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := tmp.Write(b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	k := key(b)
	if err := tmp.Commit(t.Context(), k); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return k
}

func createUpload(t *testing.T, d blob.Driver, id, data string) {
	t.Helper()
	if err := d.CreateUpload(t.Context(), id); err != nil {
		t.Fatalf("CreateUpload(%s): %v", id, err)
	}
	if _, err := d.AppendUpload(t.Context(), id, strings.NewReader(data)); err != nil {
		t.Fatalf("AppendUpload(%s): %v", id, err)
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func wantMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (err %v), want it gone", path, err)
	}
}

// snapshot maps every path under dir to its contents ("<dir>" for folders).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			out[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func TestNewCreatesLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	newDriver(t, root)
	for _, dir := range []string{"blobs", "tmp", "uploads"} {
		fi, err := os.Stat(filepath.Join(root, dir))
		if err != nil || !fi.IsDir() {
			t.Errorf("%s folder: %v", dir, err)
		}
	}
	// New on an existing root keeps what is there.
	d := newDriver(t, root)
	k := put(t, d, []byte("kept"))
	d2 := newDriver(t, root)
	if size, _, err := d2.Stat(t.Context(), k); err != nil || size != 4 {
		t.Errorf("Stat after reopening = %d, %v; want 4, nil", size, err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := filesystem.New(file); err == nil {
		t.Error("New on a regular file succeeded")
	}
}

func TestOpenReturnsOSFile(t *testing.T) {
	d := newDriver(t, t.TempDir())
	data := bytes.Repeat([]byte("sendfile "), 100_000)
	k := put(t, d, data)
	rc, err := d.Open(t.Context(), k)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	f, ok := rc.(*os.File)
	if !ok {
		t.Fatalf("Open returned %T, want *os.File", rc)
	}

	// Copy it to a TCP socket the way the HTTP server does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		received <- b
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	n, err := io.Copy(conn, f)
	conn.Close()
	if err != nil || n != int64(len(data)) {
		t.Fatalf("io.Copy to socket = %d, %v; want %d, nil", n, err, len(data))
	}
	select {
	case got := <-received:
		if !bytes.Equal(got, data) {
			t.Errorf("socket received %d bytes, want %d identical ones", len(got), len(data))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("socket received nothing")
	}
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()

	data := []byte("hello\n")
	k := put(t, d, data)
	if k != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" {
		t.Fatalf("key = %s", k)
	}
	wantFile(t, filepath.Join(root, "blobs", "58", k), data)
	if got := entries(t, filepath.Join(root, "blobs")); !slices.Equal(got, []string{"58"}) {
		t.Errorf("blobs/ holds %v, want [58]", got)
	}
	if got := entries(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after Commit holds %v, want nothing", got)
	}

	// An aborted object leaves tmp/ empty too.
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := entries(t, filepath.Join(root, "tmp")); len(got) != 1 {
		t.Errorf("tmp/ during a plain upload holds %v, want one file", got)
	}
	if _, err := tmp.Write([]byte("gone")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := tmp.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if got := entries(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after Abort holds %v, want nothing", got)
	}

	// Sessions live in uploads/<id>/{data,state}.
	createUpload(t, d, sessionA, "session")
	if err := d.SaveUploadState(ctx, sessionA, []byte("st")); err != nil {
		t.Fatalf("SaveUploadState: %v", err)
	}
	dir := filepath.Join(root, "uploads", sessionA)
	wantFile(t, filepath.Join(dir, "data"), []byte("session"))
	wantFile(t, filepath.Join(dir, "state"), []byte("st"))
	if got := entries(t, dir); !slices.Equal(got, []string{"data", "state"}) {
		t.Errorf("session folder holds %v, want [data state]", got)
	}
	if err := d.CommitUpload(ctx, sessionA, key([]byte("session"))); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	wantMissing(t, dir)
	sk := key([]byte("session"))
	wantFile(t, filepath.Join(root, "blobs", sk[:2], sk), []byte("session"))

	// Delete removes the file.
	if err := d.Delete(ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, filepath.Join(root, "blobs", "58", k))
}

// TestRemoveTempAfterCrash simulates a kill -9 during a plain upload: the
// next start finds a file in tmp/ and removes it, leaving blobs and
// resumable sessions alone.
func TestRemoveTempAfterCrash(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	k := put(t, d, []byte("committed"))
	createUpload(t, d, sessionA, "resumable")
	if err := d.SaveUploadState(ctx, sessionA, []byte("state")); err != nil {
		t.Fatalf("SaveUploadState: %v", err)
	}
	createUpload(t, d, sessionB, "")

	tmpDir := filepath.Join(root, "tmp")
	for name, data := range map[string]string{"put-1234567": "half an upl", "ping-99": ""} {
		if err := os.WriteFile(filepath.Join(tmpDir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tmpDir, "sub", "deeper"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmpDir, "sub", "deeper", "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	uploadsBefore := snapshot(t, filepath.Join(root, "uploads"))
	blobsBefore := snapshot(t, filepath.Join(root, "blobs"))

	// The restart.
	d = newDriver(t, root)
	if err := d.RemoveTemp(ctx); err != nil {
		t.Fatalf("RemoveTemp: %v", err)
	}
	if got := entries(t, tmpDir); len(got) != 0 {
		t.Errorf("tmp/ after RemoveTemp holds %v, want nothing", got)
	}
	if got := snapshot(t, filepath.Join(root, "uploads")); !mapsEqual(got, uploadsBefore) {
		t.Errorf("uploads/ changed:\n got %v\nwant %v", got, uploadsBefore)
	}
	if got := snapshot(t, filepath.Join(root, "blobs")); !mapsEqual(got, blobsBefore) {
		t.Errorf("blobs/ changed:\n got %v\nwant %v", got, blobsBefore)
	}
	if size, _, err := d.Stat(ctx, k); err != nil || size != 9 {
		t.Errorf("Stat = %d, %v; want 9, nil", size, err)
	}
	// The driver still works: tmp/ is still there.
	if err := d.Ping(ctx); err != nil {
		t.Errorf("Ping after RemoveTemp: %v", err)
	}
	put(t, d, []byte("after restart"))
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRemoveTempInFlight(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	data := []byte("in flight")
	if _, err := tmp.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := d.RemoveTemp(ctx); err != nil {
		t.Fatalf("RemoveTemp: %v", err)
	}
	if got := entries(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after RemoveTemp holds %v, want nothing", got)
	}
	k := key(data)
	if err := tmp.Commit(ctx, k); err == nil {
		t.Error("Commit of a removed temporary file succeeded")
	}
	if _, _, err := d.Stat(ctx, k); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat = %v, want ErrNotFound", err)
	}
	if err := tmp.Abort(); err != nil {
		t.Errorf("Abort after a failed Commit = %v, want nil", err)
	}
}

// TestFailedCommitLeavesNoTemp checks that a commit whose move fails leaves
// the temporary file for Abort to remove, instead of stranding it in tmp/.
func TestFailedCommitLeavesNoTemp(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	data := []byte("cannot move")
	k := key(data)
	// A file where the blob's folder should be makes the move fail.
	if err := os.WriteFile(filepath.Join(root, "blobs", k[:2]), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tmp, err := d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := tmp.Commit(ctx, k); err == nil {
		t.Fatal("Commit succeeded although the blob folder is a file")
	}
	if err := tmp.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if got := entries(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after failed Commit and Abort holds %v, want nothing", got)
	}

	// A malformed key fails before touching anything; Abort cleans up too.
	tmp, err = d.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := tmp.Commit(ctx, "../escape"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Commit with a malformed key = %v, want ErrNotFound", err)
	}
	if err := tmp.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if got := entries(t, filepath.Join(root, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after Abort holds %v, want nothing", got)
	}
}

// TestMalformedKeysStayInside feeds path tricks as keys and upload ids and
// checks that nothing inside or outside the root changes.
func TestMalformedKeysStayInside(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	d := newDriver(t, root)
	ctx := t.Context()

	// Targets a path trick could reach.
	for _, p := range []string{
		filepath.Join(outer, "x"),
		filepath.Join(root, "x"),
		filepath.Join(root, "blobs", "x"),
		filepath.Join(root, "uploads", "x"),
	} {
		if err := os.WriteFile(p, []byte("sentinel"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := put(t, d, []byte("good blob"))
	createUpload(t, d, sessionA, "good session")
	before := snapshot(t, outer)

	bad := []string{
		"../x", "../../x", "../../../x", "..", ".", "", "/", "x",
		filepath.Join(outer, "x"),
		"blobs/../../x", "uploads/../x",
		"../" + good[3:],
		good[:2] + "/../" + good[5:],
		strings.ToUpper(good),
		sessionA + "/../x",
		sessionA + "/..",
	}
	for _, k := range bad {
		if _, err := d.Open(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", k, err)
		}
		if _, _, err := d.Stat(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", k, err)
		}
		if err := d.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", k, err)
		}

		tmp, err := d.Create(ctx)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if _, err := tmp.Write([]byte("evil")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := tmp.Commit(ctx, k); err == nil {
			t.Errorf("Commit(%q) succeeded", k)
		}
		if err := tmp.Abort(); err != nil {
			t.Errorf("Abort after Commit(%q): %v", k, err)
		}

		if err := d.CommitUpload(ctx, sessionA, k); err == nil {
			t.Errorf("CommitUpload(session, %q) succeeded", k)
		}

		if err := d.CreateUpload(ctx, k); err == nil {
			t.Errorf("CreateUpload(%q) succeeded", k)
		}
		if _, err := d.AppendUpload(ctx, k, strings.NewReader("evil")); err == nil {
			t.Errorf("AppendUpload(%q) succeeded", k)
		}
		if rc, err := d.OpenUpload(ctx, k); err == nil {
			rc.Close()
			t.Errorf("OpenUpload(%q) succeeded", k)
		}
		if _, _, err := d.StatUpload(ctx, k); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("StatUpload(%q) = %v, want ErrNotFound", k, err)
		}
		if err := d.SaveUploadState(ctx, k, []byte("evil")); err == nil {
			t.Errorf("SaveUploadState(%q, state) succeeded", k)
		}
		d.SaveUploadState(ctx, k, nil) //nolint:errcheck // only its effect on disk matters
		if st, _ := d.UploadState(ctx, k); st != nil {
			t.Errorf("UploadState(%q) = %q, want nil", k, st)
		}
		if err := d.CommitUpload(ctx, k, good); err == nil {
			t.Errorf("CommitUpload(%q, good) succeeded", k)
		}
		if err := d.DeleteUpload(ctx, k); err != nil {
			t.Errorf("DeleteUpload(%q) = %v, want nil", k, err)
		}
	}

	if after := snapshot(t, outer); !mapsEqual(after, before) {
		for p, v := range after {
			if w, ok := before[p]; !ok {
				t.Errorf("%s appeared", p)
			} else if w != v {
				t.Errorf("%s changed", p)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%s disappeared", p)
			}
		}
	}
	if size, _, err := d.Stat(ctx, good); err != nil || size != 9 {
		t.Errorf("good blob: %d, %v", size, err)
	}
}

// TestWalkIgnoresForeignFiles checks that files arca did not make are not
// reported as blobs or sessions.
func TestWalkIgnoresForeignFiles(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	k := put(t, d, []byte("real"))
	createUpload(t, d, sessionA, "real")
	for _, p := range []string{
		filepath.Join(root, "blobs", "README"),
		filepath.Join(root, "blobs", k[:2], k+".tmp"),
		filepath.Join(root, "blobs", k[:2], strings.ToUpper(k)),
		filepath.Join(root, "uploads", "README"),
		filepath.Join(root, "uploads", "Not-A-Session", "data"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("foreign"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := d.Walk(ctx, func(key string, _ int64, _ time.Time) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !slices.Equal(keys, []string{k}) {
		t.Errorf("Walk = %v, want [%s]", keys, k)
	}
	var ids []string
	if err := d.WalkUploads(ctx, func(id string, _ time.Time) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		t.Fatalf("WalkUploads: %v", err)
	}
	if !slices.Equal(ids, []string{sessionA}) {
		t.Errorf("WalkUploads = %v, want [%s]", ids, sessionA)
	}
}

// TestWalkUploadsCutOffSession checks that a session folder without data,
// left by a crash inside CreateUpload, is reported as ancient so that it
// expires.
func TestWalkUploadsCutOffSession(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	if err := os.Mkdir(filepath.Join(root, "uploads", sessionB), 0o750); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	if err := d.WalkUploads(t.Context(), func(id string, modified time.Time) error {
		got[id] = modified
		return nil
	}); err != nil {
		t.Fatalf("WalkUploads: %v", err)
	}
	modified, ok := got[sessionB]
	if !ok || !modified.IsZero() {
		t.Errorf("WalkUploads = %v, want %s with the zero time", got, sessionB)
	}
	if err := d.DeleteUpload(t.Context(), sessionB); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	wantMissing(t, filepath.Join(root, "uploads", sessionB))
}

func TestSaveUploadStateLeavesNoTemporary(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	createUpload(t, d, sessionA, "x")
	for range 3 {
		if err := d.SaveUploadState(t.Context(), sessionA, []byte("state")); err != nil {
			t.Fatalf("SaveUploadState: %v", err)
		}
	}
	if got := entries(t, filepath.Join(root, "uploads", sessionA)); !slices.Equal(got, []string{"data", "state"}) {
		t.Errorf("session folder holds %v, want [data state]", got)
	}
}

func TestCreateUploadTwiceKeepsBytes(t *testing.T) {
	d := newDriver(t, t.TempDir())
	createUpload(t, d, sessionA, "precious")
	if err := d.CreateUpload(t.Context(), sessionA); err == nil {
		t.Error("CreateUpload of an existing session succeeded")
	}
	if size, _, err := d.StatUpload(t.Context(), sessionA); err != nil || size != 8 {
		t.Errorf("StatUpload = %d, %v; want 8, nil", size, err)
	}
}

// age sets the modification time of the blob file of k to at.
func age(t *testing.T, root, k string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(root, "blobs", k[:2], k), at, at); err != nil {
		t.Fatal(err)
	}
}

// TestModifiedIsTheFileTime checks that Stat and Walk report the blob file's
// modification time, and that committing the same bytes again, as a plain
// upload or a session, sets it to now without touching the bytes.
func TestModifiedIsTheFileTime(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	data := []byte("old bytes, used again")
	k := put(t, d, data)
	bystander := put(t, d, []byte("bystander"))
	long := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	age(t, root, k, long)
	age(t, root, bystander, long)

	_, m, err := d.Stat(ctx, k)
	if err != nil || !m.Equal(long) {
		t.Fatalf("Stat modified = %v, %v; want %v", m, err, long)
	}
	walked := map[string]time.Time{}
	if err := d.Walk(ctx, func(key string, _ int64, modified time.Time) error {
		walked[key] = modified
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !walked[k].Equal(long) || !walked[bystander].Equal(long) {
		t.Fatalf("Walk modified = %v, want %v for both", walked, long)
	}

	for _, commit := range []struct {
		name string
		fn   func() error
	}{
		{"Commit", func() error {
			tmp, err := d.Create(ctx)
			if err != nil {
				return err
			}
			if _, err := tmp.Write(data); err != nil {
				return err
			}
			return tmp.Commit(ctx, k)
		}},
		{"CommitUpload", func() error {
			createUpload(t, d, sessionA, string(data))
			return d.CommitUpload(ctx, sessionA, k)
		}},
	} {
		age(t, root, k, long)
		before := time.Now().Add(-time.Second) // file times may lag the clock a little
		if err := commit.fn(); err != nil {
			t.Fatalf("%s: %v", commit.name, err)
		}
		_, m, err := d.Stat(ctx, k)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if m.Before(before) || m.After(time.Now().Add(time.Second)) {
			t.Errorf("after %s of stored bytes, modified = %v, want about now", commit.name, m)
		}
		wantFile(t, filepath.Join(root, "blobs", k[:2], k), data)
		if got := entries(t, filepath.Join(root, "tmp")); len(got) != 0 {
			t.Errorf("tmp/ after %s holds %v", commit.name, got)
		}
	}
	wantMissing(t, filepath.Join(root, "uploads", sessionA))
	if _, m, err := d.Stat(ctx, bystander); err != nil || !m.Equal(long) {
		t.Errorf("bystander modified = %v, %v; want %v untouched", m, err, long)
	}
}
