package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
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

// npmClient runs npm, yarn and pnpm against one repository of an instance,
// with a HOME, .npmrc and caches of their own.
type npmClient struct {
	t        *testing.T
	in       *instance
	home     string
	registry string // the repository's URL, ending in "/"
}

// newNpmClient creates an npm repository (anonymousRead as given) and a
// client home whose .npmrc points at it, with token as the credentials
// when it is not "".
func newNpmClient(t *testing.T, in *instance, repoName string, anonymousRead bool, token string) *npmClient {
	t.Helper()
	in.createRepo(fmt.Sprintf(`{"name":%q,"format":"npm","type":"hosted","anonymousRead":%t}`, repoName, anonymousRead))
	c := &npmClient{t: t, in: in, home: t.TempDir(), registry: in.URL + "/repository/" + repoName + "/"}
	rc := "registry=" + c.registry + "\n"
	if token != "" {
		rc += "//" + in.Addr + "/repository/" + repoName + "/:_authToken=" + token + "\n"
	}
	if err := os.WriteFile(filepath.Join(c.home, ".npmrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *npmClient) env() []string {
	return append(os.Environ(),
		"HOME="+c.home,
		"npm_config_cache="+filepath.Join(c.home, "npm-cache"),
		"npm_config_update_notifier=false",
		"npm_config_fund=false",
		"YARN_CACHE_FOLDER="+filepath.Join(c.home, "yarn-cache"),
		"XDG_DATA_HOME="+filepath.Join(c.home, "xdg-data"),
		"XDG_CACHE_HOME="+filepath.Join(c.home, "xdg-cache"),
		"XDG_CONFIG_HOME="+filepath.Join(c.home, "xdg-config"),
		"CI=true",
	)
}

// try runs a client and returns its combined output and error.
func (c *npmClient) try(dir, tool string, args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(requireTool(c.t, tool), args...)
	cmd.Env = c.env()
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs a client and fails the test when it exits non-zero.
func (c *npmClient) run(dir, tool string, args ...string) string {
	c.t.Helper()
	out, err := c.try(dir, tool, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// writePackage writes a package's folder for npm publish.
func writePackage(t *testing.T, dir, name, version, description string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pj := fmt.Sprintf(`{"name":%q,"version":%q,"description":%q,"keywords":["arca-e2e"],"main":"index.js","license":"MIT"}`,
		name, version, description)
	for file, content := range map[string]string{
		"package.json": pj,
		"index.js":     fmt.Sprintf("module.exports = %q;\n", name+"@"+version),
		"README.md":    "# " + name + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNpmClient publishes, installs and manages packages with the real npm,
// then installs them with yarn and pnpm.
func TestNpmClient(t *testing.T) {
	requireTool(t, "npm")
	in := start(t)
	_, token := createToken(t, in, admin(), "npm", "")
	c := newNpmClient(t, in, "npm-hosted", false, token)
	work := t.TempDir()

	// Publish: an unscoped package in three versions, one under --tag next,
	// and a scoped one.
	hello := filepath.Join(work, "hello")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		writePackage(t, hello, "hello-arca", v, "says hello from arca")
		c.run(hello, "npm", "publish")
	}
	writePackage(t, hello, "hello-arca", "2.0.0-beta.1", "says hello from arca")
	c.run(hello, "npm", "publish", "--tag", "next")
	util := filepath.Join(work, "util")
	writePackage(t, util, "@team/util", "0.1.0", "a scoped helper")
	c.run(util, "npm", "publish")

	// A version is published once.
	writePackage(t, hello, "hello-arca", "1.0.0", "says hello from arca")
	out, err := c.try(hello, "npm", "publish")
	if err == nil || !strings.Contains(out, "previously published") {
		t.Errorf("re-publish of 1.0.0: %v, want a refusal saying why:\n%s", err, out)
	}

	if got := strings.TrimSpace(c.run(work, "npm", "view", "hello-arca", "version")); got != "1.1.0" {
		t.Errorf("npm view hello-arca version: %q, want 1.1.0", got)
	}
	if got := c.run(work, "npm", "view", "hello-arca", "dist-tags", "--json"); !strings.Contains(got, `"next": "2.0.0-beta.1"`) {
		t.Errorf("dist-tags after publish --tag next: %s", got)
	}
	if got := c.run(work, "npm", "view", "@team/util", "dist.tarball"); !strings.Contains(got, c.registry+"@team/util/-/util-0.1.0.tgz") {
		t.Errorf("tarball URL of @team/util: %s", got)
	}

	// Install into a fresh project with a lockfile, then again with npm ci.
	proj := filepath.Join(work, "proj")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"proj","version":"1.0.0","private":true}`), 0o644)
	c.run(proj, "npm", "install", "hello-arca", "@team/util")
	lock, err := os.ReadFile(filepath.Join(proj, "package-lock.json"))
	if err != nil || !strings.Contains(string(lock), c.registry+"hello-arca/-/hello-arca-1.1.0.tgz") {
		t.Errorf("package-lock.json does not resolve hello-arca from arca: %v\n%s", err, lock)
	}
	os.RemoveAll(filepath.Join(proj, "node_modules"))
	c.run(proj, "npm", "ci")
	if _, err := os.Stat(filepath.Join(proj, "node_modules", "@team", "util", "index.js")); err != nil {
		t.Errorf("npm ci did not install @team/util: %v", err)
	}

	// dist-tags.
	c.run(work, "npm", "dist-tag", "add", "hello-arca@1.0.0", "stable")
	if got := c.run(work, "npm", "dist-tag", "ls", "hello-arca"); !strings.Contains(got, "stable: 1.0.0") {
		t.Errorf("dist-tag ls after add: %s", got)
	}
	c.run(work, "npm", "dist-tag", "rm", "hello-arca", "stable")
	if got := c.run(work, "npm", "dist-tag", "ls", "hello-arca"); strings.Contains(got, "stable") {
		t.Errorf("dist-tag ls after rm: %s", got)
	}

	// deprecate and un-deprecate.
	c.run(work, "npm", "deprecate", "hello-arca@1.0.0", "use 1.1")
	if got := c.run(work, "npm", "view", "hello-arca@1.0.0", "deprecated"); !strings.Contains(got, "use 1.1") {
		t.Errorf("deprecated after npm deprecate: %q", got)
	}
	c.run(work, "npm", "deprecate", "hello-arca@1.0.0", "")
	if got := strings.TrimSpace(c.run(work, "npm", "view", "hello-arca@1.0.0", "deprecated")); got != "" {
		t.Errorf("deprecated after un-deprecate: %q", got)
	}

	// Unpublish one version: gone, tarball too, and never published again.
	c.run(work, "npm", "unpublish", "hello-arca@1.0.0")
	if got := c.run(work, "npm", "view", "hello-arca", "versions", "--json"); strings.Contains(got, `"1.0.0"`) {
		t.Errorf("versions after unpublish: %s", got)
	}
	if got := curlStatus(t, "-H", "Authorization: Bearer "+token, c.registry+"hello-arca/-/hello-arca-1.0.0.tgz"); got != "404" {
		t.Errorf("tarball of an unpublished version: %s, want 404", got)
	}
	// npm sends it (the version is no longer listed): arca refuses.
	if out, err := c.try(hello, "npm", "publish", "--tag", "old"); err == nil || !strings.Contains(out, "403") ||
		!strings.Contains(out, "published only once") {
		t.Errorf("publish of an unpublished version: %v, want 403:\n%s", err, out)
	}

	if got := c.run(work, "npm", "search", "--json", "arca-e2e"); !strings.Contains(got, "hello-arca") || !strings.Contains(got, "@team/util") {
		t.Errorf("npm search: %s", got)
	}
	if got := strings.TrimSpace(c.run(work, "npm", "whoami")); got != "admin" {
		t.Errorf("npm whoami: %q, want admin", got)
	}
	c.run(work, "npm", "ping")
	if out, err := c.try(work, "npm", "owner", "add", "bob", "hello-arca"); err == nil || !strings.Contains(out, "not supported") {
		t.Errorf("npm owner add: %v, want a clear refusal:\n%s", err, out)
	}

	t.Run("yarn", func(t *testing.T) {
		c := *c
		c.t = t
		dir := filepath.Join(t.TempDir(), "yarn")
		os.MkdirAll(dir, 0o755)
		// yarn 1 sends the token to a registry other than the public one only
		// with always-auth, which npm 11 no longer knows: set it for the
		// project alone.
		os.WriteFile(filepath.Join(dir, ".npmrc"), []byte("always-auth=true\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"y","version":"1.0.0","private":true,"dependencies":{"hello-arca":"^1.1.0","@team/util":"0.1.0"}}`), 0o644)
		c.run(dir, "yarn", "install", "--non-interactive")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@team", "util", "index.js")); err != nil {
			t.Errorf("yarn did not install @team/util: %v", err)
		}
	})
	t.Run("pnpm", func(t *testing.T) {
		c := *c
		c.t = t
		dir := filepath.Join(t.TempDir(), "pnpm")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"p","version":"1.0.0","private":true,"dependencies":{"hello-arca":"^1.1.0","@team/util":"0.1.0"}}`), 0o644)
		c.run(dir, "pnpm", "install", "--store-dir", filepath.Join(c.home, "pnpm-store"))
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "hello-arca", "index.js")); err != nil {
			t.Errorf("pnpm did not install hello-arca: %v", err)
		}
	})
}

// TestNpmLogin logs in with npm login on a terminal, then asks npm whoami.
func TestNpmLogin(t *testing.T) {
	requireTool(t, "npm")
	script := requireTool(t, "script")
	in := start(t)
	// npm login sends no credentials; the login endpoint checks the ones in
	// its body, so it works on a private repository too.
	c := newNpmClient(t, in, "npm-login", false, "")
	cmd := exec.Command(script, "-qec", "npm login --auth-type=legacy", "/dev/null")
	cmd.Env = c.env()
	cmd.Dir = c.home
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type step struct{ prompt, answer string }
	for _, s := range []step{{"Username:", "admin"}, {"Password:", adminPassword}} {
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), s.prompt) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(stdin, s.answer+"\r")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("npm login: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("npm login hangs:\n%s", out.String())
	}
	if got := strings.TrimSpace(c.run(c.home, "npm", "whoami")); got != "admin" {
		t.Errorf("npm whoami after npm login: %q, want admin", got)
	}
}

// TestNpmPublishChecks sends crafted publish documents: a wrong integrity
// is refused with 400, a body over the limit with 413, and two concurrent
// publishes of different versions both land.
func TestNpmPublishChecks(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"npm-checks","format":"npm","type":"hosted","npm":{"maxBodySize":100000}}`)
	put := func(name, version string, tgz []byte, integrity string) *http.Response {
		t.Helper()
		body := publishDocument(t, name, version, tgz, integrity)
		return in.do("PUT", "/repository/npm-checks/"+strings.ReplaceAll(name, "/", "%2f"),
			bytes.NewReader(body), false, "Content-Type", "application/json")
	}
	tgz := npmTarball(t, "checked", "1.0.0", 0)
	if resp := put("checked", "1.0.0", tgz, "sha512-"+base64.StdEncoding.EncodeToString(make([]byte, 64))); resp.StatusCode != 400 {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("publish with a wrong integrity: %s, want 400: %s", resp.Status, b)
	}
	if resp := put("checked", "1.0.0", tgz, ""); resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("publish: %s, want 201: %s", resp.Status, b)
	}
	if resp := put("other", "1.0.0", tgz, ""); resp.StatusCode != 400 {
		t.Errorf("publish of a tarball naming another package: %s, want 400", resp.Status)
	}
	resp := put("checked", "1.0.0", tgz, "")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 403 || !strings.Contains(string(b), "published only once") {
		t.Errorf("re-publish: %s, want 403 saying why: %s", resp.Status, b)
	}
	big := npmTarball(t, "big", "1.0.0", 200000)
	if resp := put("big", "1.0.0", big, ""); resp.StatusCode != 413 {
		t.Errorf("publish over maxBodySize: %s, want 413", resp.Status)
	}

	// Concurrent publishes of different versions both land.
	codes := make(chan int, 4)
	for _, v := range []string{"2.0.0", "2.0.1", "2.0.2", "2.0.3"} {
		go func() {
			body := publishDocument(t, "@scope/conc", v, npmTarball(t, "@scope/conc", v, 0), "")
			req, _ := http.NewRequest("PUT", in.URL+"/repository/npm-checks/@scope%2fconc", bytes.NewReader(body))
			req.SetBasicAuth("admin", adminPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range 4 {
		if code := <-codes; code != 201 {
			t.Errorf("concurrent publish: %d, want 201", code)
		}
	}
	resp = in.do("GET", "/repository/npm-checks/@scope%2fconc", nil, false)
	var doc struct{ Versions map[string]any }
	json.NewDecoder(resp.Body).Decode(&doc)
	if len(doc.Versions) != 4 {
		t.Errorf("versions after concurrent publishes: %d, want 4", len(doc.Versions))
	}
}

// npmTarball packs a package.json (and pad random bytes, to make it
// large) the way npm does.
func npmTarball(t *testing.T, name, version string, pad int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files := map[string][]byte{
		"package/package.json": fmt.Appendf(nil, `{"name":%q,"version":%q}`, name, version),
	}
	if pad > 0 {
		b := make([]byte, pad)
		rand.Read(b)
		files["package/pad.bin"] = b
	}
	for n, b := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// publishDocument builds the body of npm publish; integrity "" is the
// tarball's true one.
func publishDocument(t *testing.T, name, version string, tgz []byte, integrity string) []byte {
	t.Helper()
	if integrity == "" {
		sum := sha512.Sum512(tgz)
		integrity = "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	}
	sha := sha1.Sum(tgz)
	file := name + "-" + version + ".tgz"
	doc := map[string]any{
		"_id": name, "name": name, "dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: map[string]any{
			"name": name, "version": version,
			"dist": map[string]string{"integrity": integrity, "shasum": hex.EncodeToString(sha[:])},
		}},
		"_attachments": map[string]any{file: map[string]any{
			"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz),
			"length": len(tgz),
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
