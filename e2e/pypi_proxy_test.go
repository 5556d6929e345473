package e2e

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pypiGets counts an instance's successful GET requests by path, from its
// JSON access log lines.
func pypiGets(in *instance) map[string]int {
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(in.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Method string  `json:"method"`
			Path   string  `json:"path"`
			Status float64 `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Method != "GET" || line.Status != 200 {
			continue
		}
		counts[line.Path]++
	}
	return counts
}

// TestPyPIProxy installs with pip through a PyPI proxy repository of
// another arca's hosted repository, which needs credentials: the install
// works, a second install in a fresh virtual environment takes every file
// from the proxy's cache (each fetched upstream once), and a version
// uploaded upstream afterwards is found at once, because pip asks that
// index pages be revalidated (Cache-Control: max-age=0).
func TestPyPIProxy(t *testing.T) {
	requireTool(t, "twine")
	requireSystemPython(t)
	up := start(t)
	up.createRepo(`{"name":"py","format":"pypi","type":"hosted"}`)
	home, work := t.TempDir(), t.TempDir()
	uploadURL := up.URL + "/repository/py/"
	publish := func(version string) string {
		t.Helper()
		wheel := pypiWheel(t, work, "proxy_demo-"+version+"-py3-none-any.whl", "proxy-demo", version, "proxy_demo")
		pyOK(t, home, "twine", "upload", "--disable-progress-bar", "--repository-url", uploadURL,
			"-u", "admin", "-p", adminPassword, wheel)
		return filepath.Base(wheel)
	}
	publish("1.0")
	latest := publish("1.1")

	px := start(t)
	// negativeCacheTTL also spaces the revalidations that clients ask for:
	// one second lets the last install below ask again.
	def, err := json.Marshal(map[string]any{"name": "pyp", "format": "pypi", "type": "proxy", "anonymousRead": true,
		"proxy": map[string]any{"url": up.URL + "/repository/py/", "username": "admin", "password": adminPassword,
			"negativeCacheTTL": "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	px.createRepo(string(def))
	index := px.URL + "/repository/pyp/simple/"

	install := func(venvName string, args ...string) string {
		t.Helper()
		venv := pyVenv(t, home, filepath.Join(work, venvName))
		pyOK(t, home, filepath.Join(venv, "bin", "pip"), append([]string{"install", "--no-cache-dir",
			"--index-url", index}, args...)...)
		return strings.TrimSpace(pyOK(t, home, filepath.Join(venv, "bin", "python"), "-c",
			"import proxy_demo; print(proxy_demo.VALUE)"))
	}
	if got := install("venv1", "proxy-demo"); got != "proxy-demo 1.1" {
		t.Fatalf("first install: %q", got)
	}
	if got := install("venv2", "Proxy_Demo"); got != "proxy-demo 1.1" {
		t.Fatalf("second install: %q", got)
	}
	upstream := pypiGets(up)
	wheelPath := "/repository/py/packages/proxy-demo/1.1/" + latest
	files := 0
	for p, n := range upstream {
		if !strings.HasPrefix(p, "/repository/py/packages/") {
			continue
		}
		files++
		if n != 1 {
			t.Errorf("upstream served %s %d times, want once", p, n)
		}
	}
	if upstream[wheelPath] != 1 || files == 0 {
		t.Errorf("upstream served %s %d times; file GETs: %v", wheelPath, upstream[wheelPath], upstream)
	}
	if n := pypiGets(px)["/repository/pyp/packages/proxy-demo/1.1/"+latest]; n != 2 {
		t.Errorf("the proxy served %s %d times, want 2", latest, n)
	}
	if strings.Contains(px.Logs(), `"status":502`) {
		t.Errorf("the proxy answered 502:\n%s", px.Logs())
	}

	// A release uploaded upstream now is installable through the proxy at
	// once, although the page was cached moments ago.
	time.Sleep(1100 * time.Millisecond)
	newest := publish("2.0")
	if got := install("venv3", "proxy-demo==2.0"); got != "proxy-demo 2.0" {
		t.Fatalf("install of the new release: %q", got)
	}
	if n := pypiGets(up)["/repository/py/packages/proxy-demo/2.0/"+newest]; n != 1 {
		t.Errorf("upstream served %s %d times, want once", newest, n)
	}
}
