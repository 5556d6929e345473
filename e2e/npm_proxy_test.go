package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNpmProxy installs with the real npm through an npm proxy repository
// of a second arca's hosted repository: the packages install, each tarball
// is fetched from the upstream once however many fresh installs follow,
// and a version published upstream afterwards installs at once, well
// within metadataMaxAge.
func TestNpmProxy(t *testing.T) {
	requireTool(t, "npm")
	up := start(t)
	_, token := createToken(t, up, admin(), "npm", "")
	pub := newNpmClient(t, up, "npm-hosted", false, token)
	work := t.TempDir()

	pkg := filepath.Join(work, "pkg")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		writePackage(t, pkg, "proxied-arca", v, "installed through a proxy")
		pub.run(pkg, "npm", "publish")
	}
	scoped := filepath.Join(work, "scoped")
	writePackage(t, scoped, "@team/proxied", "0.1.0", "a scoped package through a proxy")
	pub.run(scoped, "npm", "publish")

	down := start(t)
	down.createRepo(fmt.Sprintf(`{"name":"npm-proxy","format":"npm","type":"proxy","anonymousRead":true,
		"proxy":{"url":"%s/repository/npm-hosted/","username":"admin","password":%q,"metadataMaxAge":"30m"}}`,
		up.URL, adminPassword))
	c := &npmClient{t: t, in: down, home: t.TempDir(), registry: down.URL + "/repository/npm-proxy/"}
	if err := os.WriteFile(filepath.Join(c.home, ".npmrc"), []byte("registry="+c.registry+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// install runs npm install in a new project with a new cache, so that
	// everything it needs comes from the proxy.
	install := func(specs ...string) string {
		t.Helper()
		proj := t.TempDir()
		if err := os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"proj","version":"1.0.0","private":true}`), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run(proj, "npm", append([]string{"install", "--cache", t.TempDir()}, specs...)...)
		return proj
	}

	// The publisher's own reads of the packument are not the proxy's.
	packument := "/repository/npm-hosted/proxied-arca"
	published := upstreamRequests(up, "GET", packument, 200)

	proj := install("proxied-arca", "@team/proxied")
	for _, f := range []string{"proxied-arca/index.js", "@team/proxied/index.js"} {
		if _, err := os.Stat(filepath.Join(proj, "node_modules", f)); err != nil {
			t.Errorf("npm install through the proxy did not install %s: %v", f, err)
		}
	}
	lock, err := os.ReadFile(filepath.Join(proj, "package-lock.json"))
	if err != nil || !strings.Contains(string(lock), c.registry+"proxied-arca/-/proxied-arca-1.1.0.tgz") ||
		!strings.Contains(string(lock), c.registry+"@team/proxied/-/proxied-0.1.0.tgz") {
		t.Errorf("package-lock.json does not resolve from the proxy: %v\n%s", err, lock)
	}
	install("proxied-arca", "@team/proxied")

	tarballs := []string{
		"/repository/npm-hosted/proxied-arca/-/proxied-arca-1.1.0.tgz",
		"/repository/npm-hosted/@team/proxied/-/proxied-0.1.0.tgz",
	}
	for _, p := range tarballs {
		if n := upstreamRequests(up, "GET", p, 200); n != 1 {
			t.Errorf("upstream served %s %d times for two fresh installs, want 1", p, n)
		}
	}
	if n := settledRequests(up, "GET", packument, 200, published+1) - published; n != 1 {
		t.Errorf("upstream served the packument %d times for two installs within metadataMaxAge, want 1", n)
	}

	// A version published upstream now is found at once by a client that
	// asks for it by name. npm resolves versions from the packument alone,
	// and never says which one it wants; it names one when it installs
	// from a lockfile, which fetches the tarball straight away: the proxy
	// then asks the upstream again for the packument that lacks it.
	writePackage(t, pkg, "proxied-arca", "1.2.0", "installed through a proxy")
	pub.run(pkg, "npm", "publish")
	var upDoc struct {
		Versions map[string]struct {
			Dist struct {
				Integrity string `json:"integrity"`
			} `json:"dist"`
		} `json:"versions"`
	}
	before := upstreamRequests(up, "GET", packument, 200)
	if err := json.NewDecoder(up.do("GET", packument, nil, false).Body).Decode(&upDoc); err != nil {
		t.Fatal(err)
	}
	integrity := upDoc.Versions["1.2.0"].Dist.Integrity
	// This read of the test's own counts upstream too, once logged.
	published = settledRequests(up, "GET", packument, 200, before+1)
	proj = t.TempDir()
	for file, content := range map[string]string{
		"package.json": `{"name":"proj","version":"1.0.0","private":true,"dependencies":{"proxied-arca":"1.2.0"}}`,
		"package-lock.json": fmt.Sprintf(`{"name":"proj","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{
			"":{"name":"proj","version":"1.0.0","dependencies":{"proxied-arca":"1.2.0"}},
			"node_modules/proxied-arca":{"version":"1.2.0","resolved":%q,"integrity":%q}}}`,
			c.registry+"proxied-arca/-/proxied-arca-1.2.0.tgz", integrity),
	} {
		if err := os.WriteFile(filepath.Join(proj, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.run(proj, "npm", "ci", "--cache", t.TempDir())
	b, err := os.ReadFile(filepath.Join(proj, "node_modules", "proxied-arca", "package.json"))
	if err != nil || !strings.Contains(string(b), `"version":"1.2.0"`) {
		t.Errorf("npm ci of proxied-arca@1.2.0 through the proxy: %v\n%s", err, b)
	}
	if n := settledRequests(up, "GET", packument, 200, published+1) - published; n != 1 {
		t.Errorf("the new version cost %d upstream packument requests, want 1", n)
	}
	// Every client sees the new version from then on.
	proj = install("proxied-arca@1.2.0")
	if _, err := os.Stat(filepath.Join(proj, "node_modules", "proxied-arca", "index.js")); err != nil {
		t.Errorf("npm install proxied-arca@1.2.0 after the refetch: %v", err)
	}
	if n := upstreamRequests(up, "GET", "/repository/npm-hosted/proxied-arca/-/proxied-arca-1.2.0.tgz", 200); n != 1 {
		t.Errorf("upstream served the 1.2.0 tarball %d times, want 1", n)
	}

	// The client's other reads answer from the proxy's copy.
	if got := strings.TrimSpace(c.run(work, "npm", "view", "proxied-arca", "version")); got != "1.2.0" {
		t.Errorf("npm view proxied-arca version: %q, want 1.2.0", got)
	}
	if got := c.run(work, "npm", "view", "@team/proxied", "dist.tarball"); !strings.Contains(got, c.registry+"@team/proxied/-/proxied-0.1.0.tgz") {
		t.Errorf("npm view @team/proxied dist.tarball: %s", got)
	}
	if got := c.run(work, "npm", "dist-tag", "ls", "proxied-arca"); !strings.Contains(got, "latest: 1.2.0") {
		t.Errorf("npm dist-tag ls through the proxy: %s", got)
	}
	c.run(work, "npm", "ping")
	// Writes are refused.
	if resp := down.do("PUT", "/repository/npm-proxy/proxied-arca", strings.NewReader(`{}`), false,
		"Content-Type", "application/json"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("publish to the proxy = %d, want 405", resp.StatusCode)
	}
}
