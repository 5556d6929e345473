package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRawQuickStart follows the README's quick start with curl.
func TestRawQuickStart(t *testing.T) {
	in := start(t)
	out := curl(t, "-f", "-u", admin(), "-X", "POST", in.URL+"/api/v1/repositories",
		"-H", "Content-Type: application/json",
		"-d", `{"name":"files","format":"raw","type":"hosted"}`)
	if !strings.Contains(out, `"writePolicy":"allow-once"`) {
		t.Fatalf("created repository lacks the default write policy: %s", out)
	}
	file := filepath.Join(t.TempDir(), "hello.txt")
	os.WriteFile(file, []byte("hello, arca\n"), 0o644)

	if got := curlStatus(t, "-u", admin(), "-T", file, in.URL+"/repository/files/docs/hello.txt"); got != "201" {
		t.Fatalf("upload: status %s, want 201", got)
	}
	if got := curl(t, "-f", "-u", admin(), in.URL+"/repository/files/docs/hello.txt"); got != "hello, arca\n" {
		t.Fatalf("download: %q", got)
	}
	var listing struct {
		Path     string `json:"path"`
		Children []struct {
			Name, Type, SHA256, LastModified string
			Size                             int64
		} `json:"children"`
	}
	out = curl(t, "-f", "-u", admin(), "-H", "Accept: application/json", in.URL+"/repository/files/docs/")
	if err := json.Unmarshal([]byte(out), &listing); err != nil {
		t.Fatalf("listing is not JSON: %v: %s", err, out)
	}
	sum := sha256.Sum256([]byte("hello, arca\n"))
	if listing.Path != "docs/" || len(listing.Children) != 1 || listing.Children[0].Name != "hello.txt" ||
		listing.Children[0].Type != "file" || listing.Children[0].Size != 12 ||
		listing.Children[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("listing: %s", out)
	}
	if _, err := time.Parse(time.RFC3339, listing.Children[0].LastModified); err != nil {
		t.Fatalf("lastModified is not RFC 3339: %v", err)
	}
	if got := curlStatus(t, "-u", admin(), "-X", "DELETE", in.URL+"/repository/files/docs/hello.txt"); got != "204" {
		t.Fatalf("delete: status %s", got)
	}
	if got := curlStatus(t, "-u", admin(), in.URL+"/repository/files/docs/hello.txt"); got != "404" {
		t.Fatalf("after delete: status %s, want 404", got)
	}
}

// TestRawMavenRepositoryRoundTrip uploads, with a curl loop, every file of
// the local Maven repository Debian's Maven packages install, and downloads
// each one back byte-identical.
func TestRawMavenRepositoryRoundTrip(t *testing.T) {
	requireTool(t, "mvn") // the Debian package that brings /usr/share/maven-repo
	const src = "/usr/share/maven-repo"
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("%s missing although maven is installed: %v", src, err)
	}
	in := start(t)
	in.createRepo(`{"name":"maven-files","format":"raw","type":"hosted"}`)
	base := in.URL + "/repository/maven-files/"
	down := t.TempDir()
	script := `set -eu
cd "$SRC"
n=0
for f in $(find -L . -type f | sort); do
  curl -fsS -u "$CRED" -T "$f" "$BASE${f#./}"
  n=$((n+1))
done
cd "$DOWN"
for f in $(cd "$SRC" && find -L . -type f | sort); do
  mkdir -p "$(dirname "$f")"
  curl -fsS -u "$CRED" -o "$f" "$BASE${f#./}"
done
echo "$n"`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "SRC="+src, "DOWN="+down, "CRED="+admin(), "BASE="+base)
	requireTool(t, "curl")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl loop: %v\n%s", err, out)
	}
	count := 0
	err = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Stat(p) // follow links, as find -L does
		if err != nil || st.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(down, rel))
		if err != nil {
			return fmt.Errorf("downloaded %s: %w", rel, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs after the round trip", rel)
		}
		count++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != fmt.Sprint(count) || count < 50 {
		t.Fatalf("uploaded %s files, compared %d", got, count)
	}
	t.Logf("%d files uploaded and downloaded byte-identical", count)
}

// blobFiles counts the committed blob files in a data folder.
func blobFiles(t *testing.T, data string) int {
	t.Helper()
	n := 0
	filepath.Walk(filepath.Join(data, "blobs", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestRawSameBytesStoredOnce checks content addressing across repositories.
func TestRawSameBytesStoredOnce(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"one","format":"raw","type":"hosted"}`)
	in.createRepo(`{"name":"two","format":"raw","type":"hosted"}`)
	file := filepath.Join(t.TempDir(), "data.bin")
	os.WriteFile(file, bytes.Repeat([]byte("same bytes "), 10000), 0o644)
	for _, p := range []string{"/repository/one/a/data.bin", "/repository/two/b/copy.bin"} {
		if got := curlStatus(t, "-u", admin(), "-T", file, in.URL+p); got != "201" {
			t.Fatalf("upload %s: %s", p, got)
		}
	}
	if n := blobFiles(t, in.Data); n != 1 {
		t.Fatalf("%d blob files on disk, want 1", n)
	}
	if got := curlStatus(t, "-u", admin(), "-X", "DELETE", in.URL+"/repository/one/a/data.bin"); got != "204" {
		t.Fatalf("delete: %s", got)
	}
	got := curl(t, "-f", "-u", admin(), in.URL+"/repository/two/b/copy.bin")
	want, _ := os.ReadFile(file)
	if got != string(want) {
		t.Fatal("the other repository's copy is gone or damaged")
	}
}

// slowBody yields zeros in small pieces, with pauses, until its total.
type slowBody struct {
	left    int64
	started chan struct{}
}

func (s *slowBody) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if s.started != nil {
		close(s.started)
		s.started = nil
	}
	n := min(int64(len(p)), 256<<10, s.left)
	clear(p[:n])
	s.left -= n
	time.Sleep(2 * time.Millisecond)
	return int(n), nil
}

// TestRawKillDuringUpload kills the server with SIGKILL in the middle of a
// large upload, restarts it, and checks that the cut-off file is invisible
// and its temporary data gone.
func TestRawKillDuringUpload(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	body := &slowBody{left: 512 << 20, started: make(chan struct{})}
	started := body.started
	req, _ := http.NewRequest("PUT", in.URL+"/repository/files/big.bin", body)
	req.ContentLength = body.left
	req.SetBasicAuth("admin", adminPassword)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("upload finished with %s", resp.Status)
		}
		errc <- err
	}()
	<-started
	tmp := filepath.Join(in.Data, "blobs", "tmp")
	deadline := time.Now().Add(10 * time.Second)
	for !hasBytes(tmp) {
		if time.Now().After(deadline) {
			t.Fatal("no temporary upload data appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.Kill()
	if err := <-errc; err == nil {
		t.Fatal("the upload did not fail although the server was killed")
	}
	if !hasBytes(tmp) {
		t.Fatal("the kill left no temporary data, so the test proves nothing")
	}

	in.Start()
	if got := curlStatus(t, "-u", admin(), in.URL+"/repository/files/big.bin"); got != "404" {
		t.Fatalf("cut-off file: status %s, want 404", got)
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 0 {
		t.Fatalf("temporary data left after restart: %d entries", len(entries))
	}
	if n := blobFiles(t, in.Data); n != 0 {
		t.Fatalf("%d blob files committed from a cut-off upload", n)
	}
	if got := curlStatus(t, in.URL+"/readyz"); got != "200" {
		t.Fatalf("readyz after restart: %s", got)
	}
}

// hasBytes reports whether a folder holds a non-empty file.
func hasBytes(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// TestRawAnonymousRead checks the 401 challenge and anonymousRead.
func TestRawAnonymousRead(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"private","format":"raw","type":"hosted"}`)
	in.createRepo(`{"name":"public","format":"raw","type":"hosted","anonymousRead":true}`)
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("content"), 0o644)
	for _, repo := range []string{"private", "public"} {
		curl(t, "-f", "-u", admin(), "-T", file, in.URL+"/repository/"+repo+"/f.txt")
	}

	headers := curl(t, "-D", "-", "-o", "/dev/null", in.URL+"/repository/private/f.txt")
	if !strings.HasPrefix(headers, "HTTP/1.1 401") || !strings.Contains(headers, `Www-Authenticate: Basic realm="arca"`) {
		t.Fatalf("anonymous GET on a private repository:\n%s", headers)
	}
	if got := curlStatus(t, "-u", "admin:wrong", in.URL+"/repository/private/f.txt"); got != "401" {
		t.Fatalf("wrong password: %s, want 401", got)
	}
	if got := curl(t, "-f", in.URL+"/repository/public/f.txt"); got != "content" {
		t.Fatalf("anonymous GET on a public repository: %q", got)
	}
	if got := curlStatus(t, in.URL+"/repository/public/missing.txt"); got != "404" {
		t.Fatalf("anonymous GET of a missing file: %s, want 404", got)
	}
	if got := curlStatus(t, "-T", file, in.URL+"/repository/public/g.txt"); got != "401" {
		t.Fatalf("anonymous PUT on a public repository: %s, want 401", got)
	}
	if got := curlStatus(t, in.URL+"/repository/nope/f.txt"); got != "404" {
		t.Fatalf("unknown repository: %s, want 404", got)
	}
}

// TestRawRangeAndConditional checks Range, ETag and Last-Modified with curl.
func TestRawRangeAndConditional(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	file := filepath.Join(t.TempDir(), "digits.txt")
	os.WriteFile(file, []byte("0123456789"), 0o644)
	curl(t, "-f", "-u", admin(), "-T", file, in.URL+"/repository/files/digits.txt")
	u := in.URL + "/repository/files/digits.txt"

	if got := curl(t, "-f", "-u", admin(), "-r", "2-5", u); got != "2345" {
		t.Fatalf("range 2-5: %q", got)
	}
	if got := curlStatus(t, "-u", admin(), "-r", "2-5", u); got != "206" {
		t.Fatalf("range status %s, want 206", got)
	}
	if got := curlStatus(t, "-u", admin(), "-r", "50-60", u); got != "416" {
		t.Fatalf("unsatisfiable range: %s, want 416", got)
	}
	sum := sha256.Sum256([]byte("0123456789"))
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if got := curlStatus(t, "-u", admin(), "-H", "If-None-Match: "+etag, u); got != "304" {
		t.Fatalf("If-None-Match: %s, want 304", got)
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	if got := curlStatus(t, "-u", admin(), "-H", "If-Modified-Since: "+future, u); got != "304" {
		t.Fatalf("If-Modified-Since: %s, want 304", got)
	}
	headers := curl(t, "-f", "-I", "-u", admin(), u)
	for _, want := range []string{"Content-Length: 10", "Etag: " + etag,
		"X-Checksum-Sha256: " + etag[1:65], "X-Checksum-Sha1: 87acec17cd9dcd20a716cc2cf67417b71c8a7016",
		"X-Checksum-Md5: 781e5e245d69b566979b86e28d23f2c7", "Last-Modified: ", "Content-Type: text/plain"} {
		if !strings.Contains(headers, want) {
			t.Errorf("HEAD lacks %q:\n%s", want, headers)
		}
	}
}

// TestRawChecksumHeaders checks that announced checksums are verified and
// that a mismatch stores nothing.
func TestRawChecksumHeaders(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("checked\n"), 0o644)
	sum := sha256.Sum256([]byte("checked\n"))
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)
	if got := curlStatus(t, "-u", admin(), "-H", "X-Checksum-Sha256: "+bad, "-T", file,
		in.URL+"/repository/files/bad.txt"); got != "400" {
		t.Fatalf("mismatching checksum: %s, want 400", got)
	}
	if got := curlStatus(t, "-u", admin(), in.URL+"/repository/files/bad.txt"); got != "404" {
		t.Fatalf("after a mismatch the path answers %s, want 404", got)
	}
	if n := blobFiles(t, in.Data); n != 0 {
		t.Fatalf("a mismatching upload committed %d blob files", n)
	}
	if got := curlStatus(t, "-u", admin(), "-H", "X-Checksum-Sha256: "+good, "-T", file,
		in.URL+"/repository/files/good.txt"); got != "201" {
		t.Fatalf("matching checksum: %s, want 201", got)
	}
	if got := curlStatus(t, "-u", admin(), "-T", file, in.URL+"/repository/files/good.txt"); got != "409" {
		t.Fatalf("overwrite under allow-once: %s, want 409", got)
	}
}
