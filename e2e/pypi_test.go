package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
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

// systemPython is Debian's Python, the one with the python3-build,
// python3-setuptools, python3-wheel, python3-venv and python3-pip packages
// that scripts/test.sh installs: the tests build and install offline with
// them.
const systemPython = "/usr/bin/python3"

// requireSystemPython returns systemPython when it has those modules; like
// requireTool, it skips the test when they are missing, and fails it under
// CI.
func requireSystemPython(t *testing.T) string {
	t.Helper()
	err := exec.Command(systemPython, "-c", "import build, setuptools, wheel, venv, pip").Run()
	if err == nil {
		if m, _ := filepath.Glob("/usr/share/python-wheels/pip-*.whl"); len(m) == 0 {
			err = fmt.Errorf("no pip wheel for venv in /usr/share/python-wheels")
		}
	}
	if err == nil {
		return systemPython
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s with build, setuptools, wheel, venv and pip is missing (%v): the test script installs it", systemPython, err)
	}
	t.Skipf("%s with build, setuptools, wheel, venv and pip is missing (%v); scripts/test.sh installs it", systemPython, err)
	return ""
}

// pypiBuild builds a small pure-Python project, named My_Cool.Pkg with the
// package my_cool_pkg, into an sdist and a wheel with python -m build,
// offline, and returns their paths.
func pypiBuild(t *testing.T, home, dir, version string) (sdist, wheel string) {
	t.Helper()
	py := requireSystemPython(t)
	src := filepath.Join(dir, "src-"+version)
	for name, content := range map[string]string{
		"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "My_Cool.Pkg"
version = "` + version + `"
description = "an arca <e2e> project"
readme = "README.txt"
requires-python = ">=3.7"
license = {text = "MIT"}

[tool.setuptools]
packages = ["my_cool_pkg"]
`,
		"README.txt":              "Hello from arca.\n",
		"my_cool_pkg/__init__.py": fmt.Sprintf("VALUE = %q\n", "My_Cool.Pkg "+version),
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", "dist", ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "HOME="+home, "PIP_NO_INDEX=1", "PIP_CONFIG_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python -m build: %v\n%s", err, out)
	}
	sdists, _ := filepath.Glob(filepath.Join(src, "dist", "*.tar.gz"))
	wheels, _ := filepath.Glob(filepath.Join(src, "dist", "*.whl"))
	if len(sdists) != 1 || len(wheels) != 1 {
		t.Fatalf("python -m build made sdists %v and wheels %v", sdists, wheels)
	}
	return sdists[0], wheels[0]
}

// fileSHA256 is the hex SHA-256 of a file.
func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// pyVenv makes a fresh virtual environment with Debian's Python in dir.
func pyVenv(t *testing.T, home, dir string) string {
	t.Helper()
	pyOK(t, home, requireSystemPython(t), "-m", "venv", dir)
	return dir
}

// pyRun runs a Python client (a tool on PATH, or an absolute path) with a
// HOME of its own and returns its
// combined output and error.
func pyRun(t *testing.T, home, tool string, args ...string) (string, error) {
	t.Helper()
	path := tool
	if !filepath.IsAbs(tool) {
		path = requireTool(t, tool)
	}
	cmd := exec.Command(path, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PIP_") { // the machine's pip settings (find-links) stay out
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+home, "TWINE_NON_INTERACTIVE=1",
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

// TestPyPIClients builds a project named My_Cool.Pkg into an sdist and a
// wheel, uploads them with twine (password; a second version with an API
// token), checks the refusals of a re-upload and of wrong digests, the
// simple API's PEP 503 and PEP 691/700 shapes, then installs and
// downloads with pip in a fresh virtual environment: by name and version,
// with --require-hashes, and through the PEP 658 metadata file.
func TestPyPIClients(t *testing.T) {
	requireTool(t, "twine")
	requireSystemPython(t)
	in := start(t)
	in.createRepo(`{"name":"py","format":"pypi","type":"hosted"}`)
	_, token := createToken(t, in, admin(), "pypi", "")
	home, work := t.TempDir(), t.TempDir()
	upload := in.URL + "/repository/py/"

	sdist, wheel := pypiBuild(t, home, work, "1.0")
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
	wheelSHA, sdistSHA := fileSHA256(t, wheel), fileSHA256(t, sdist)
	checkSimpleJSON(t, in, map[string]string{
		filepath.Base(wheel): wheelSHA, filepath.Base(sdist): sdistSHA, filepath.Base(wheel11): fileSHA256(t, wheel11)})
	wheelURL := checkSimpleHTML(t, in, filepath.Base(wheel), wheelSHA)
	if h := curl(t, "-u", admin(), "-sI", wheelURL); !strings.Contains(strings.ToLower(h), "x-checksum-sha256: "+wheelSHA) {
		t.Fatalf("download headers:\n%s", h)
	}

	// pip, in a fresh virtual environment, with credentials in the index
	// URL: install by name and version, checking the hash it was given.
	index := strings.Replace(in.URL, "://", "://admin:"+adminPassword+"@", 1) + "/repository/py/simple/"
	venv := pyVenv(t, home, filepath.Join(work, "venv"))
	pip, python := filepath.Join(venv, "bin", "pip"), filepath.Join(venv, "bin", "python")
	pyOK(t, home, pip, "install", "--no-cache-dir", "--index-url", index, "My_Cool.Pkg==1.0")
	installed := func(want string) {
		t.Helper()
		show := pyOK(t, home, pip, "show", "my-cool-pkg")
		if !strings.Contains(show, "Version: 1.0\n") {
			t.Fatalf("pip show my-cool-pkg:\n%s", show)
		}
		if got := strings.TrimSpace(pyOK(t, home, python, "-c", "import my_cool_pkg; print(my_cool_pkg.VALUE)")); got != want {
			t.Fatalf("import my_cool_pkg: %q, want %q", got, want)
		}
	}
	installed("My_Cool.Pkg 1.0")
	// pip reads the wheel's PEP 658 metadata file rather than the wheel to
	// resolve. Debian 12's pip 23.0 knows only PEP 658's names, which PEP
	// 714 keeps in HTML alone (that pip fails on them in JSON): a proxy that
	// asks for HTML has it take that path.
	pyOK(t, home, pip, "uninstall", "-y", "my-cool-pkg")
	htmlIndex := strings.Replace(htmlOnlyProxy(t, in.URL), "://", "://admin:"+adminPassword+"@", 1) + "/repository/py/simple/"
	// (pip 23.0 also compares the metadata file's Name with the requested
	// name as written: setuptools writes My-Cool.Pkg.)
	pyOK(t, home, pip, "install", "--no-cache-dir", "--index-url", htmlIndex, "My-Cool.Pkg==1.0")
	installed("My_Cool.Pkg 1.0")
	if logs := in.Logs(); !strings.Contains(logs, filepath.Base(wheel)+".metadata") {
		t.Errorf("pip fetched no .metadata file for %s; log:\n%s", filepath.Base(wheel), logs)
	}
	// Again with --require-hashes from a requirements file.
	pyOK(t, home, pip, "uninstall", "-y", "my-cool-pkg")
	req := filepath.Join(work, "requirements.txt")
	if err := os.WriteFile(req, []byte("my-cool-pkg==1.0 --hash=sha256:"+wheelSHA+" --hash=sha256:"+sdistSHA+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pyOK(t, home, pip, "install", "--no-cache-dir", "--index-url", index, "--require-hashes", "-r", req)
	installed("My_Cool.Pkg 1.0")
	// A wrong hash is refused.
	if err := os.WriteFile(req, []byte("my-cool-pkg==1.0 --hash=sha256:"+strings.Repeat("0", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := pyRun(t, home, pip, "install", "--no-cache-dir", "--force-reinstall", "--index-url", index,
		"--require-hashes", "-r", req); err == nil || !strings.Contains(out, "HASHES") {
		t.Fatalf("install with a wrong hash: %v\n%s", err, out)
	}
	// pip download: the wheel, as uploaded.
	dl := filepath.Join(work, "download")
	pyOK(t, home, pip, "download", "--no-cache-dir", "--no-deps", "--index-url", index, "-d", dl, "my-cool-pkg==1.0")
	if got := fileSHA256(t, filepath.Join(dl, filepath.Base(wheel))); got != wheelSHA {
		t.Errorf("downloaded %s: sha256 %s, want %s", filepath.Base(wheel), got, wheelSHA)
	}
}

// htmlOnlyProxy is a proxy to arca that asks for the simple API's HTML
// whatever the client accepts.
func htmlOnlyProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Accept", "text/html")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkSimpleJSON checks the PEP 691 JSON project page of my-cool-pkg in
// repository py, with PEP 700's fields: every file with its name, URL,
// SHA-256, requires-python, yanked flag, size and upload time.
func checkSimpleJSON(t *testing.T, in *instance, files map[string]string) {
	t.Helper()
	js := curl(t, "-u", admin(), "-H", "Accept: application/vnd.pypi.simple.v1+json", in.URL+"/repository/py/simple/my-cool-pkg/")
	// The field names, as PEP 691 and PEP 700 spell them.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &raw); err != nil {
		t.Fatalf("JSON page: %v\n%s", err, js)
	}
	for _, k := range []string{"meta", "name", "files", "versions"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("JSON page has no %q: %s", k, js)
		}
	}
	var rawFiles []map[string]json.RawMessage
	if err := json.Unmarshal(raw["files"], &rawFiles); err != nil {
		t.Fatal(err)
	}
	for _, f := range rawFiles {
		// PEP 714: the JSON carries core-metadata, never the old
		// dist-info-metadata that pip 22.3 to 23.0 fail on.
		if _, ok := f["dist-info-metadata"]; ok {
			t.Fatalf("JSON file has dist-info-metadata, which PEP 714 forbids in JSON (pip 22.3 to 23.0 fail on it): %s", js)
		}
		for _, k := range []string{"filename", "url", "hashes", "requires-python", "yanked", "size", "upload-time"} {
			if _, ok := f[k]; !ok {
				t.Fatalf("JSON file has no %q: %s", k, js)
			}
		}
	}
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
	if page.Name != "my-cool-pkg" || len(page.Files) != len(files) || strings.Join(page.Versions, ",") != "1.0,1.1" ||
		page.Meta["api-version"] != "1.1" {
		t.Fatalf("JSON page: %s", js)
	}
	for _, f := range page.Files {
		sha, ok := files[f.Filename]
		if _, err := time.Parse(time.RFC3339, f.UploadTime); !ok || f.Hashes["sha256"] != sha || f.Size <= 0 ||
			f.RequiresPython != ">=3.7" || f.Yanked != false || err != nil ||
			!strings.HasPrefix(f.URL, in.URL+"/repository/py/packages/my-cool-pkg/") {
			t.Fatalf("JSON file %+v (upload-time: %v)\n%s", f, err, js)
		}
	}
}

// pep503Anchor is one file link of a PEP 503 project page.
var pep503Anchor = regexp.MustCompile(`<a href="([^"#]+)#sha256=([0-9a-f]{64})"([^>]*)>([^<]+)</a>`)

// checkSimpleHTML checks the PEP 503 HTML project page of my-cool-pkg in
// repository py: an HTML5 document with an anchor per file whose href ends
// in #sha256=, the wheel's with its requires-python and PEP 658 metadata
// attributes. It returns the wheel's URL.
func checkSimpleHTML(t *testing.T, in *instance, wheel, sha string) string {
	t.Helper()
	page := curl(t, "-u", admin(), in.URL+"/repository/py/simple/my-cool-pkg/")
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(page)), "<!doctype html>") {
		t.Fatalf("HTML page is not HTML5:\n%s", page)
	}
	anchors := pep503Anchor.FindAllStringSubmatch(page, -1)
	if len(anchors) != 3 || strings.Count(page, "<a ") != 3 {
		t.Fatalf("HTML page has %d file anchors:\n%s", len(anchors), page)
	}
	for _, a := range anchors {
		if a[4] != path.Base(a[1]) {
			t.Fatalf("anchor text %q is not its file name %q:\n%s", a[4], path.Base(a[1]), page)
		}
		if a[4] != wheel {
			continue
		}
		if a[2] != sha || !strings.Contains(a[3], `data-requires-python="&gt;=3.7"`) ||
			!strings.Contains(a[3], `data-dist-info-metadata="sha256=`) {
			t.Fatalf("wheel anchor %q", a[0])
		}
		u := a[1]
		if !strings.HasPrefix(u, "http") {
			base, err := url.Parse(in.URL + "/repository/py/simple/my-cool-pkg/")
			if err != nil {
				t.Fatal(err)
			}
			ref, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			u = base.ResolveReference(ref).String()
		}
		return u
	}
	t.Fatalf("HTML page has no anchor for %s:\n%s", wheel, page)
	return ""
}

// TestPyPIAnonymousRead installs from an anonymousRead repository without
// credentials and checks that uploading still needs them.
func TestPyPIAnonymousRead(t *testing.T) {
	requireTool(t, "twine")
	requireSystemPython(t)
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
	venv := pyVenv(t, home, filepath.Join(work, "venv"))
	pyOK(t, home, filepath.Join(venv, "bin", "pip"), "install", "--no-cache-dir", "--index-url", in.URL+"/repository/pub/simple/",
		"demo-pkg==0.1")
	if out := pyOK(t, home, filepath.Join(venv, "bin", "python"), "-c", "import demo_pkg; print(demo_pkg.VALUE)"); strings.TrimSpace(out) != "demo-pkg 0.1" {
		t.Fatalf("import demo_pkg: %q", out)
	}
}

// TestPyPIYank yanks a release with the CLI: pip skips it unless pinned
// exactly (PEP 592), the JSON API flags it; then unyanks and deletes it.
func TestPyPIYank(t *testing.T) {
	requireTool(t, "twine")
	requireSystemPython(t)
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
	venv := pyVenv(t, home, filepath.Join(work, "venv"))
	pip := filepath.Join(venv, "bin", "pip")
	installed := func() string {
		out := pyOK(t, home, filepath.Join(venv, "bin", "python"), "-c", "import yank_demo; print(yank_demo.VALUE)")
		return strings.TrimSpace(out)
	}
	pyOK(t, home, pip, "install", "--no-cache-dir", "--index-url", index, "yank-demo")
	if got := installed(); got != "yank-demo 0.1" {
		t.Errorf("unpinned install got %q, want the unyanked 0.1", got)
	}
	pyOK(t, home, pip, "install", "--no-cache-dir", "--index-url", index, "yank-demo==0.2")
	if got := installed(); got != "yank-demo 0.2" {
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
