package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// accessCounts counts an instance's access-log lines by "METHOD path
// status".
func accessCounts(t *testing.T, in *instance) map[string]int {
	t.Helper()
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(settledLogs(in)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Method != "" {
			out[fmt.Sprintf("%s %s %d", line.Method, line.Path, line.Status)]++
		}
	}
	return out
}

// TestOCIProxy pulls an image with crane through an oci proxy repository
// of another arca, whose repository is private: the proxy logs in through
// the upstream's token flow, fetches each blob once however often it is
// pulled, and serves the same digest. The same proxy then answers as a
// registry mirror, for image names that name no repository.
func TestOCIProxy(t *testing.T) {
	up := start(t)
	up.createRepo(`{"name":"containers","format":"oci","type":"hosted"}`)
	c := newOCIClient(t)
	dir := t.TempDir()
	c.run(dir, "crane", "auth", "login", up.Addr, "-u", "admin", "-p", adminPassword)
	layer := filepath.Join(dir, "layer.tar")
	writeTar(t, layer, map[string]string{"proxied.txt": "pulled through the proxy\n"})
	c.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", up.Addr+"/containers/team/app:1.0")
	want := strings.TrimSpace(c.run(dir, "crane", "digest", "--insecure", up.Addr+"/containers/team/app:1.0"))

	config := filepath.Join(t.TempDir(), "arca.yaml")
	if err := os.WriteFile(config, []byte("ociMirror:\n  defaultRepository: hub\n  namespaces:\n    registry.example: hub\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	px := start(t, "--config", config)
	px.createRepo(fmt.Sprintf(`{"name":"hub","format":"oci","type":"proxy",
		"proxy":{"url":%q,"namespace":"containers","username":"admin","password":%q}}`, up.URL, adminPassword))
	pc := newOCIClient(t)
	pc.run(dir, "crane", "auth", "login", px.Addr, "-u", "admin", "-p", adminPassword)

	ref := px.Addr + "/hub/team/app:1.0"
	if got := strings.TrimSpace(pc.run(dir, "crane", "digest", "--insecure", ref)); got != want {
		t.Fatalf("digest through the proxy %s, want %s", got, want)
	}
	for i := 0; i < 2; i++ {
		pc.run(dir, "crane", "pull", "--insecure", ref, filepath.Join(dir, fmt.Sprintf("pull%d.tar", i)))
	}
	if out := pc.run(dir, "crane", "export", "--insecure", ref, "-"); !strings.Contains(out, "pulled through the proxy") {
		t.Fatal("the image pulled through the proxy lacks its layer's file")
	}

	counts := accessCounts(t, up)
	blobGETs := map[string]int{}
	tokens := 0
	for k, n := range counts {
		if rest, ok := strings.CutPrefix(k, "GET /v2/containers/team/app/blobs/"); ok {
			blobGETs[strings.Fields(rest)[0]] += n
		}
		if strings.HasPrefix(k, "GET /v2/token 200") {
			tokens += n
		}
		if strings.HasPrefix(k, "GET /v2/containers/team/app/manifests/1.0 ") {
			t.Errorf("the upstream got %d manifest GETs by tag (%s); the tag is resolved with HEAD", n, k)
		}
	}
	if len(blobGETs) != 2 {
		t.Errorf("upstream blob GETs %v, want the config and the layer", blobGETs)
	}
	for d, n := range blobGETs {
		if n != 1 {
			t.Errorf("blob %s fetched %d times from the upstream, want once", d, n)
		}
	}
	if tokens == 0 {
		t.Errorf("the proxy never got a token from the upstream's /v2/token")
	}

	// Mirror mode: "team" names no repository of the proxy's arca, so
	// the whole name goes to the repository the ns parameter picks.
	headers := curl(t, "-u", admin(), "-D", "-", "-o", "/dev/null",
		"-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
		px.URL+"/v2/team/app/manifests/1.0?ns=registry.example")
	if !strings.Contains(headers, " 200") || !strings.Contains(strings.ToLower(headers), "docker-content-digest: "+want) {
		t.Fatalf("mirrored manifest by ns: %s", headers)
	}
	// Without ns, the default repository answers, for blobs too.
	resp := px.do("GET", "/v2/team/app/manifests/"+want, nil, false,
		"Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != want {
		t.Fatalf("mirrored manifest by default: %s %q", resp.Status, resp.Header.Get("Docker-Content-Digest"))
	}
	for d := range blobGETs {
		if resp := px.do("GET", "/v2/team/app/blobs/"+d, nil, false); resp.StatusCode != 200 {
			t.Errorf("mirrored blob %s: %s", d, resp.Status)
		}
	}
	if n := accessCounts(t, px)["GET /v2/team/app/manifests/1.0 200"]; n != 1 {
		t.Errorf("the proxy's log shows %d mirrored manifest GETs answered 200, want 1", n)
	}
	// The mirror added no upstream blob GET: it served the cache.
	for k, n := range accessCounts(t, up) {
		if rest, ok := strings.CutPrefix(k, "GET /v2/containers/team/app/blobs/"); ok && n != blobGETs[strings.Fields(rest)[0]] {
			t.Errorf("after mirrored pulls, %s counted %d times", k, n)
		}
	}
	// A second image with the same layer: the proxy has the layer's bytes
	// already and asks the upstream only for what is new.
	c.run(dir, "crane", "append", "--insecure", "-f", layer, "-t", up.Addr+"/containers/team/other:1.0")
	pc.run(dir, "crane", "pull", "--insecure", px.Addr+"/hub/team/other:1.0", filepath.Join(dir, "other.tar"))
	shared := 0
	for k, n := range accessCounts(t, up) {
		if rest, ok := strings.CutPrefix(k, "GET /v2/containers/team/other/blobs/"); ok && blobGETs[strings.Fields(rest)[0]] > 0 {
			shared += n
		}
	}
	if shared != 0 {
		t.Errorf("blobs team/app had already brought were fetched %d times for team/other", shared)
	}
	if out := pc.run(dir, "crane", "export", "--insecure", px.Addr+"/hub/team/other:1.0", "-"); !strings.Contains(out, "pulled through the proxy") {
		t.Error("the second image lacks the shared layer's file")
	}

	// A proxy takes no pushes; crane sees the registry's error.
	if resp := px.do("POST", "/v2/hub/team/app/blobs/uploads/", nil, false); resp.StatusCode != 405 {
		t.Errorf("push to the proxy: %s, want 405", resp.Status)
	}
}
