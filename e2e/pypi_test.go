package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pypiDist writes a pure-Python wheel of a one-module project, crafted by
// hand (a wheel is a zip with a .dist-info folder holding METADATA, WHEEL and
// RECORD), and returns its path.
func pypiWheel(t *testing.T, dir, filename, name, version, module string) string {
	t.Helper()
	distInfo := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(name)) + "-" + version + ".dist-info"
	files := []struct{ name, content string }{
		{module + "/__init__.py", fmt.Sprintf("VALUE = %q\n", name+" "+version)},
		{distInfo + "/METADATA", pkgInfo(name, version)},
		{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: arca-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.content)) //nolint:errcheck // a bytes.Buffer
		sum := sha256.Sum256([]byte(f.content))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.content))
	}
	record.WriteString(distInfo + "/RECORD,,\n")
	w, err := zw.Create(distInfo + "/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(record.String())) //nolint:errcheck // a bytes.Buffer
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filename)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkgInfo(name, version string) string {
	return "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version +
		"\nSummary: an arca <e2e> project\nRequires-Python: >=3.7\nLicense: MIT\n\nHello from arca.\n"
}

// pypiSdist writes an sdist (a .tar.gz with name-version/PKG-INFO).
func pypiSdist(t *testing.T, dir, name, version string) string {
	t.Helper()
	base := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(name)) + "-" + version
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for file, content := range map[string]string{
		base + "/PKG-INFO": pkgInfo(name, version),
		base + "/setup.py": "from setuptools import setup\nsetup()\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(content)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content)) //nolint:errcheck // a bytes.Buffer
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, base+".tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pyRun runs a Python client with a HOME of its own and returns its
// combined output and error.
func pyRun(t *testing.T, home, tool string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(requireTool(t, tool), args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "TWINE_NON_INTERACTIVE=1",
		"PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring", "PIP_CONFIG_FILE=/dev/null",
		"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func pyOK(t *testing.T, home, tool string, args ...string) string {
	t.Helper()
	out, err := pyRun(t, home, tool, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// TestPyPIClients uploads a wheel and an sdist with twine (password and API
// token), installs the wheel with pip, checking its hash, and checks the
// refusals of a re-upload and of a wrong digest.
func TestPyPIClients(t *testing.T) {
	requireTool(t, "twine")
	requireTool(t, "python3")
	in := start(t)
	in.createRepo(`{"name":"py","format":"pypi","type":"hosted"}`)
	_, token := createToken(t, in, admin(), "pypi", "")
	home, work := t.TempDir(), t.TempDir()
	upload := in.URL + "/repository/py/"

	wheel := pypiWheel(t, work, "My_Cool.Pkg-1.0-py3-none-any.whl", "My_Cool.Pkg", "1.0", "my_cool_pkg")
	sdist := pypiSdist(t, work, "My_Cool.Pkg", "1.0")
	pyOK(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", upload,
		"-u", "admin", "-p", adminPassword, wheel, sdist)
	wheel11 := pypiWheel(t, work, "my_cool_pkg-1.1-py3-none-any.whl", "my-cool-pkg", "1.1", "my_cool_pkg")
	pyOK(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", upload,
		"-u", "__token__", "-p", token, wheel11)

	// The same file again: 400, and twine shows why.
	out, err := pyRun(t, home, "twine", "upload", "--verbose", "--disable-progress-bar", "--repository-url", upload,
		"-u", "admin", "-p", adminPassword, wheel)
	if err == nil || !strings.Contains(out, "400") || !strings.Contains(out, "File already exists") {
		t.Fatalf("re-upload: err %v, output:\n%s", err, out)
	}

	// A wrong digest: 400 with the reason.
	other := pypiWheel(t, work, "my_cool_pkg-2.0-py3-none-any.whl", "my-cool-pkg", "2.0", "my_cool_pkg")
	body := curl(t, "-u", admin(), "-w", " %{http_code}", "-F", ":action=file_upload", "-F", "protocol_version=1",
		"-F", "name=my-cool-pkg", "-F", "version=2.0", "-F", "sha256_digest="+strings.Repeat("0", 64),
		"-F", "content=@"+other, upload)
	if !strings.HasSuffix(body, " 400") || !strings.Contains(body, "sha256_digest") {
		t.Fatalf("wrong digest: %s", body)
	}
	// A version that the file name contradicts: 400.
	body = curl(t, "-u", admin(), "-w", " %{http_code}", "-F", ":action=file_upload",
		"-F", "name=my-cool-pkg", "-F", "version=3.0", "-F", "content=@"+other, upload)
	if !strings.HasSuffix(body, " 400") || !strings.Contains(body, "version") {
		t.Fatalf("wrong version: %s", body)
	}

	// The simple API: a non-normalized name redirects, JSON by Accept.
	if code := curlStatus(t, "-u", admin(), in.URL+"/repository/py/simple/My_Cool.Pkg/"); code != "301" {
		t.Fatalf("non-normalized project page: %s", code)
	}
	js := curl(t, "-u", admin(), "-H", "Accept: application/vnd.pypi.simple.v1+json", in.URL+"/repository/py/simple/my-cool-pkg/")
	var page struct {
		Meta     map[string]string `json:"meta"`
		Name     string            `json:"name"`
		Versions []string          `json:"versions"`
		Files    []struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python"`
			Yanked         any               `json:"yanked"`
			Size           int64             `json:"size"`
			UploadTime     string            `json:"upload-time"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(js), &page); err != nil {
		t.Fatalf("JSON page: %v\n%s", err, js)
	}
	if page.Name != "my-cool-pkg" || len(page.Files) != 3 || strings.Join(page.Versions, ",") != "1.0,1.1" ||
		page.Meta["api-version"] != "1.1" {
		t.Fatalf("JSON page: %s", js)
	}
	raw, _ := os.ReadFile(wheel)
	sum := sha256.Sum256(raw)
	wheelSHA := hex.EncodeToString(sum[:])
	f0 := page.Files[0]
	if f0.Filename != "My_Cool.Pkg-1.0-py3-none-any.whl" || f0.Hashes["sha256"] != wheelSHA || f0.Size != int64(len(raw)) ||
		f0.RequiresPython != ">=3.7" || f0.Yanked != false || !strings.HasPrefix(f0.URL, in.URL+"/repository/py/packages/my-cool-pkg/1.0/") {
		t.Fatalf("JSON file: %+v", f0)
	}
	htmlPage := curl(t, "-u", admin(), in.URL+"/repository/py/simple/my-cool-pkg/")
	if !strings.Contains(htmlPage, `#sha256=`+wheelSHA+`" data-requires-python="&gt;=3.7" data-dist-info-metadata="sha256=`) {
		t.Fatalf("HTML page:\n%s", htmlPage)
	}
	if h := curl(t, "-u", admin(), "-sI", f0.URL); !strings.Contains(strings.ToLower(h), "x-checksum-sha256: "+wheelSHA) {
		t.Fatalf("download headers:\n%s", h)
	}

	// pip installs from the index, with credentials in its URL, checking the
	// hash it was given.
	index := strings.Replace(in.URL, "://", "://admin:"+adminPassword+"@", 1) + "/repository/py/simple/"
	req := filepath.Join(work, "requirements.txt")
	if err := os.WriteFile(req, []byte("my-cool-pkg==1.0 --hash=sha256:"+wheelSHA+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(work, "site")
	pyOK(t, home, "python3", "-m", "pip", "install", "--no-cache-dir", "--only-binary", ":all:", "--index-url", index,
		"--target", target, "--require-hashes", "-r", req)
	target2 := filepath.Join(work, "site2")
	pyOK(t, home, "python3", "-m", "pip", "install", "--no-cache-dir", "--only-binary", ":all:", "--index-url", index,
		"--target", target2, "My_Cool.Pkg")
	// pip read the wheels' PEP 658 metadata files.
	if logs := in.Logs(); !strings.Contains(logs, "my_cool_pkg-1.1-py3-none-any.whl.metadata") {
		t.Errorf("pip fetched no .metadata file; log:\n%s", logs)
	}
	for dir, want := range map[string]string{target: "My_Cool.Pkg 1.0", target2: "my-cool-pkg 1.1"} {
		cmd := exec.Command(requireTool(t, "python3"), "-c", "import my_cool_pkg; print(my_cool_pkg.VALUE)")
		cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("import from %s: %v %q, want %q", dir, err, out, want)
		}
	}
}

// TestPyPIAnonymousRead installs from an anonymousRead repository without
// credentials and checks that uploading still needs them.
func TestPyPIAnonymousRead(t *testing.T) {
	requireTool(t, "twine")
	requireTool(t, "python3")
	in := start(t)
	in.createRepo(`{"name":"pub","format":"pypi","type":"hosted","anonymousRead":true}`)
	home, work := t.TempDir(), t.TempDir()
	wheel := pypiWheel(t, work, "demo_pkg-0.1-py3-none-any.whl", "demo-pkg", "0.1", "demo_pkg")
	if out, err := pyRun(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", in.URL+"/repository/pub/",
		"-u", "admin", "-p", "wrong", wheel); err == nil {
		t.Fatalf("upload with a wrong password succeeded:\n%s", out)
	}
	pyOK(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", in.URL+"/repository/pub/",
		"-u", "admin", "-p", adminPassword, wheel)
	resp := in.do("GET", "/repository/pub/simple/", nil, true, "Accept", "application/vnd.pypi.simple.v1+json")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.pypi.simple.v1+json" {
		t.Fatalf("index: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	target := filepath.Join(work, "site")
	pyOK(t, home, "python3", "-m", "pip", "install", "--no-cache-dir", "--index-url", in.URL+"/repository/pub/simple/",
		"--target", target, "demo-pkg==0.1")
	if _, err := os.Stat(filepath.Join(target, "demo_pkg", "__init__.py")); err != nil {
		t.Fatal(err)
	}
}

// TestPyPIYank yanks a release with the CLI: pip skips it unless pinned
// exactly (PEP 592), the JSON API flags it; then unyanks and deletes it.
func TestPyPIYank(t *testing.T) {
	requireTool(t, "twine")
	requireTool(t, "python3")
	in := start(t)
	in.createRepo(`{"name":"pub","format":"pypi","type":"hosted","anonymousRead":true}`)
	home, work := t.TempDir(), t.TempDir()
	for _, v := range []string{"0.1", "0.2"} {
		wheel := pypiWheel(t, work, "yank_demo-"+v+"-py3-none-any.whl", "yank-demo", v, "yank_demo")
		pyOK(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", in.URL+"/repository/pub/",
			"-u", "admin", "-p", adminPassword, wheel)
	}
	in.cliOK(asAdminEnv, "pypi", "yank", "pub", "Yank_Demo", "0.2", "--reason", "broken build")
	html := curl(t, in.URL+"/repository/pub/simple/yank-demo/")
	if !strings.Contains(html, `data-yanked="broken build">yank_demo-0.2-py3-none-any.whl`) {
		t.Fatalf("simple page:\n%s", html)
	}
	var doc struct {
		Info     map[string]any `json:"info"`
		Releases map[string][]struct {
			Yanked       bool   `json:"yanked"`
			YankedReason string `json:"yanked_reason"`
		} `json:"releases"`
	}
	js := curl(t, in.URL+"/repository/pub/pypi/yank-demo/json")
	if err := json.Unmarshal([]byte(js), &doc); err != nil || doc.Info["version"] != "0.1" ||
		!doc.Releases["0.2"][0].Yanked || doc.Releases["0.2"][0].YankedReason != "broken build" {
		t.Fatalf("JSON API: %v\n%s", err, js)
	}
	index := in.URL + "/repository/pub/simple/"
	installed := func(target string) string {
		cmd := exec.Command(requireTool(t, "python3"), "-c", "import yank_demo; print(yank_demo.VALUE)")
		cmd.Env = append(os.Environ(), "PYTHONPATH="+target)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("import from %s: %v %s", target, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	t1, t2 := filepath.Join(work, "site1"), filepath.Join(work, "site2")
	pyOK(t, home, "python3", "-m", "pip", "install", "--no-cache-dir", "--index-url", index, "--target", t1, "yank-demo")
	pyOK(t, home, "python3", "-m", "pip", "install", "--no-cache-dir", "--index-url", index, "--target", t2, "yank-demo==0.2")
	if got := installed(t1); got != "yank-demo 0.1" {
		t.Errorf("unpinned install got %q, want the unyanked 0.1", got)
	}
	if got := installed(t2); got != "yank-demo 0.2" {
		t.Errorf("pinned install got %q, want the yanked 0.2", got)
	}

	in.cliOK(asAdminEnv, "pypi", "unyank", "pub", "yank-demo", "0.2")
	if html := curl(t, in.URL+"/repository/pub/simple/yank-demo/"); strings.Contains(html, "data-yanked") {
		t.Fatalf("simple page after unyank:\n%s", html)
	}
	in.cliOK(asAdminEnv, "pypi", "delete", "pub", "yank-demo", "0.2")
	if code := curlStatus(t, in.URL+"/repository/pub/packages/yank-demo/0.2/yank_demo-0.2-py3-none-any.whl"); code != "404" {
		t.Fatalf("deleted file: %s", code)
	}
	if res := in.cli(asAdminEnv, "pypi", "delete", "pub", "yank-demo", "0.2"); res.Code == 0 {
		t.Fatalf("second delete succeeded: %s", res.Stdout)
	}
	// Without credentials the CLI is refused.
	if res := in.cli(nil, "pypi", "yank", "pub", "yank-demo", "0.1"); res.Code == 0 {
		t.Fatalf("anonymous yank succeeded: %s", res.Stdout)
	}
}
