package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
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
// index pages be revalidated (Cache-Control: max-age=0). The proxy's
// JSON API lists the upstream's releases, with file URLs that download
// through the proxy.
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
	first := publish("1.0")
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

	checkProxyJSONAPI(t, px, filepath.Join(work, first))
	if n := pypiGets(up)["/repository/py/packages/proxy-demo/1.0/"+first]; n != 1 {
		t.Errorf("upstream served %s %d times, want once", first, n)
	}
}

// checkProxyJSONAPI reads the JSON API of proxy-demo through the proxy
// "pyp" of px: every release published upstream, info and file URLs
// pointing at the proxy, and the wheel at wheelPath (version 1.0, which
// pip never installed) downloading through its listed URL with the bytes
// uploaded.
func checkProxyJSONAPI(t *testing.T, px *instance, wheelPath string) {
	t.Helper()
	base := px.URL + "/repository/pyp/"
	resp := px.do("GET", "/repository/pyp/pypi/Proxy_Demo/json", nil, true)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"pypi/proxy-demo/json" || resp.Header.Get("ETag") == "" {
		t.Fatalf("JSON API through the proxy: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	var doc struct {
		Info     map[string]any `json:"info"`
		Releases map[string][]struct {
			Filename string            `json:"filename"`
			URL      string            `json:"url"`
			Digests  map[string]string `json:"digests"`
		} `json:"releases"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if doc.Info["version"] != "2.0" || doc.Info["release_url"] != base+"pypi/proxy-demo/2.0/" ||
		len(doc.Releases) != 3 || len(doc.Releases["1.0"]) != 1 {
		t.Fatalf("JSON API through the proxy: %s", body)
	}
	f := doc.Releases["1.0"][0]
	if f.Filename != filepath.Base(wheelPath) || f.URL != base+"packages/proxy-demo/1.0/"+f.Filename ||
		f.Digests["sha256"] != fileSHA256(t, wheelPath) {
		t.Fatalf("1.0 in the JSON API: %+v", f)
	}
	want, err := os.ReadFile(wheelPath)
	if err != nil {
		t.Fatal(err)
	}
	resp = px.do("GET", strings.TrimPrefix(f.URL, px.URL), nil, true)
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("download of %s through its JSON API URL: %d, %d bytes, %v", f.Filename, resp.StatusCode, len(got), err)
	}
}
