package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPyPIGroup installs with pip through a PyPI group of a hosted
// repository (first) and a proxy of another arca's hosted repository: a
// release only the hosted member has and one only behind the proxy are
// both installable; where both have a file of the same name the hosted
// member's is served; twine uploads through the group land in its write
// member, and a group without one answers 405.
func TestPyPIGroup(t *testing.T) {
	requireTool(t, "twine")
	requireSystemPython(t)
	home, work := t.TempDir(), t.TempDir()
	upDir, localDir := filepath.Join(work, "up"), filepath.Join(work, "local")
	for _, d := range []string{upDir, localDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	twine := func(repoURL, wheel string) (string, error) {
		t.Helper()
		return pyRun(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", repoURL,
			"-u", "admin", "-p", adminPassword, wheel)
	}

	// Upstream: 1.0, and a 2.0 whose wheel holds another module than
	// the hosted member's 2.0 of the same file name.
	up := start(t)
	up.createRepo(`{"name":"py","format":"pypi","type":"hosted"}`)
	for _, w := range []struct{ version, module string }{{"1.0", "group_demo"}, {"2.0", "upstream_only"}} {
		wheel := pypiWheel(t, upDir, "group_demo-"+w.version+"-py3-none-any.whl", "group-demo", w.version, w.module)
		if out, err := twine(up.URL+"/repository/py/", wheel); err != nil {
			t.Fatalf("twine upload upstream %s: %v\n%s", w.version, err, out)
		}
	}

	in := start(t)
	def, err := json.Marshal(map[string]any{"name": "remote", "format": "pypi", "type": "proxy", "anonymousRead": true,
		"proxy": map[string]any{"url": up.URL + "/repository/py/", "username": "admin", "password": adminPassword}})
	if err != nil {
		t.Fatal(err)
	}
	in.createRepo(`{"name":"local","format":"pypi","type":"hosted","anonymousRead":true}`)
	in.createRepo(string(def))
	in.createRepo(`{"name":"all","format":"pypi","type":"group","anonymousRead":true,
		"group":{"members":["local","remote"],"writeMember":"local"}}`)
	in.createRepo(`{"name":"ro","format":"pypi","type":"group","anonymousRead":true,"group":{"members":["local","remote"]}}`)
	group := in.URL + "/repository/all/"

	// The hosted member: 2.0 (shadowing upstream's file) and 3.0, the
	// latter uploaded through the group.
	local2 := pypiWheel(t, localDir, "group_demo-2.0-py3-none-any.whl", "group-demo", "2.0", "group_demo")
	if out, err := twine(in.URL+"/repository/local/", local2); err != nil {
		t.Fatalf("twine upload to local: %v\n%s", err, out)
	}
	local3 := pypiWheel(t, localDir, "group_demo-3.0-py3-none-any.whl", "group-demo", "3.0", "group_demo")
	if out, err := twine(group, local3); err != nil {
		t.Fatalf("twine upload through the group: %v\n%s", err, out)
	}
	localPage := curl(t, in.URL+"/repository/local/simple/group-demo/")
	if !strings.Contains(localPage, "group_demo-3.0-py3-none-any.whl") {
		t.Errorf("the upload through the group is not in local:\n%s", localPage)
	}
	if upPage := curl(t, "-u", admin(), up.URL+"/repository/py/simple/group-demo/"); strings.Contains(upPage, "3.0") {
		t.Errorf("the upload through the group reached upstream:\n%s", upPage)
	}

	// A group without writeMember refuses uploads, in plain text.
	local4 := pypiWheel(t, localDir, "group_demo-4.0-py3-none-any.whl", "group-demo", "4.0", "group_demo")
	if out, err := twine(in.URL+"/repository/ro/", local4); err == nil || !strings.Contains(out, "405") {
		t.Errorf("twine upload to a group without writeMember: %v\n%s", err, out)
	}
	resp := in.do("POST", "/repository/ro/", strings.NewReader("x"), false, "Content-Type", "multipart/form-data; boundary=x")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(body), "writeMember") {
		t.Errorf("POST to a group without writeMember: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	// The merged page: every version, links to the group only, and the
	// hosted member's hash for the shared file name.
	page := curl(t, "-H", "Accept: application/vnd.pypi.simple.v1+json", group+"simple/group-demo/")
	var doc struct {
		Versions []string `json:"versions"`
		Files    []struct {
			Filename string            `json:"filename"`
			URL      string            `json:"url"`
			Hashes   map[string]string `json:"hashes"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(page), &doc); err != nil {
		t.Fatalf("group page: %v\n%s", err, page)
	}
	if strings.Join(doc.Versions, ",") != "1.0,2.0,3.0" || len(doc.Files) != 3 {
		t.Errorf("group page versions %v, %d files:\n%s", doc.Versions, len(doc.Files), page)
	}
	for _, f := range doc.Files {
		if !strings.HasPrefix(f.URL, group+"packages/group-demo/") {
			t.Errorf("%s links to %s, not the group", f.Filename, f.URL)
		}
		if f.Filename == filepath.Base(local2) && f.Hashes["sha256"] != fileSHA256(t, local2) {
			t.Errorf("%s has sha256 %s, not the hosted member's", f.Filename, f.Hashes["sha256"])
		}
	}
	if html := curl(t, group+"simple/group-demo/"); !strings.Contains(html, group+"packages/group-demo/2.0/group_demo-2.0-py3-none-any.whl#sha256="+fileSHA256(t, local2)) {
		t.Errorf("group HTML page:\n%s", html)
	}

	install := func(venvName, req, module string) string {
		t.Helper()
		venv := pyVenv(t, home, filepath.Join(work, venvName))
		pyOK(t, home, filepath.Join(venv, "bin", "pip"), "install", "--no-cache-dir", "--index-url", group+"simple/", req)
		return strings.TrimSpace(pyOK(t, home, filepath.Join(venv, "bin", "python"), "-c",
			"import "+module+"; print("+module+".VALUE)"))
	}
	// Only behind the proxy.
	if got := install("v1", "group-demo==1.0", "group_demo"); got != "group-demo 1.0" {
		t.Errorf("install of 1.0: %q", got)
	}
	// Both members have the file: the hosted member's, with its module.
	if got := install("v2", "group-demo==2.0", "group_demo"); got != "group-demo 2.0" {
		t.Errorf("install of 2.0: %q", got)
	}
	// Only in the hosted member, and the latest.
	if got := install("v3", "Group_Demo", "group_demo"); got != "group-demo 3.0" {
		t.Errorf("install of the latest: %q", got)
	}
	if strings.Contains(in.Logs(), `"status":502`) {
		t.Errorf("the group answered 502:\n%s", in.Logs())
	}
}
