package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNpmGroup installs with the real npm through a group of a hosted
// repository (first) and a proxy of a second arca's hosted repository:
// versions only the hosted member has and versions only the proxy has
// both install, the hosted member's copy wins a version both have, npm
// publish through the group lands in its write member, and a group
// without a write member answers 405 in npm's error form.
func TestNpmGroup(t *testing.T) {
	requireTool(t, "npm")
	work := t.TempDir()

	up := start(t)
	_, upToken := createToken(t, up, admin(), "npm", "")
	remote := newNpmClient(t, up, "npm-hosted", false, upToken)
	pkg := filepath.Join(work, "remote")
	for _, v := range []struct{ name, version, description string }{
		{"group-shared", "1.0.0", "remote copy"},
		{"group-shared", "2.0.0", "remote only"},
		{"group-remote", "0.3.0", "behind the proxy"},
	} {
		writePackage(t, pkg, v.name, v.version, v.description)
		remote.run(pkg, "npm", "publish", "--tag", "remote")
	}

	down := start(t)
	down.createRepo(`{"name":"npm-local","format":"npm","type":"hosted"}`)
	down.createRepo(fmt.Sprintf(`{"name":"npm-remote","format":"npm","type":"proxy",
		"proxy":{"url":"%s/repository/npm-hosted/","username":"admin","password":%q,"metadataMaxAge":"30m"}}`,
		up.URL, adminPassword))
	down.createRepo(`{"name":"npm-all","format":"npm","type":"group",
		"group":{"members":["npm-local","npm-remote"],"writeMember":"npm-local"}}`)
	down.createRepo(`{"name":"npm-ro","format":"npm","type":"group","group":{"members":["npm-local","npm-remote"]}}`)

	// npm login through the group buys a token like on any repository.
	resp := down.do("PUT", "/repository/npm-all/-/user/org.couchdb.user:admin",
		strings.NewReader(fmt.Sprintf(`{"name":"admin","password":%q}`, adminPassword)), true,
		"Content-Type", "application/json")
	var login struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil || resp.StatusCode != http.StatusCreated || login.Token == "" {
		t.Fatalf("npm login through the group = %d: %v", resp.StatusCode, err)
	}
	c := groupNpmClient(t, down, "npm-all", login.Token)
	if got := strings.TrimSpace(c.run(work, "npm", "whoami")); got != "admin" {
		t.Errorf("npm whoami through the group: %q, want admin", got)
	}
	c.run(work, "npm", "ping")

	// Publish through the group.
	local := filepath.Join(work, "local")
	for _, v := range []struct{ name, version, description string }{
		{"group-shared", "1.0.0", "local copy"},
		{"group-shared", "1.5.0", "local only"},
		{"group-local", "0.1.0", "in the hosted member"},
	} {
		writePackage(t, local, v.name, v.version, v.description)
		c.run(local, "npm", "publish")
	}
	for _, p := range []string{"group-local", "group-shared/1.5.0", "group-shared/1.0.0"} {
		if resp := down.do("GET", "/repository/npm-local/"+p, nil, false); resp.StatusCode != http.StatusOK {
			t.Errorf("npm-local/%s after npm publish through the group = %d, want 200", p, resp.StatusCode)
		}
	}
	if resp := down.do("GET", "/repository/npm-remote/group-local", nil, false); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the proxy member has group-local: %d", resp.StatusCode)
	}

	// install runs npm install of one spec in a new project with a new
	// cache and returns the description of the group-shared or other
	// package it installed, and its lockfile.
	install := func(spec, name string) (string, string) {
		t.Helper()
		proj := t.TempDir()
		if err := os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"proj","version":"1.0.0","private":true}`), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run(proj, "npm", "install", "--cache", t.TempDir(), spec)
		b, err := os.ReadFile(filepath.Join(proj, "node_modules", name, "package.json"))
		if err != nil {
			t.Fatalf("npm install %s through the group installed no %s: %v", spec, name, err)
		}
		var pj struct{ Description string }
		if err := json.Unmarshal(b, &pj); err != nil {
			t.Fatal(err)
		}
		lock, err := os.ReadFile(filepath.Join(proj, "package-lock.json"))
		if err != nil {
			t.Fatal(err)
		}
		return pj.Description, string(lock)
	}
	for _, tc := range []struct{ spec, name, want, tarball string }{
		{"group-shared@1.5.0", "group-shared", "local only", "group-shared/-/group-shared-1.5.0.tgz"},
		{"group-shared@2.0.0", "group-shared", "remote only", "group-shared/-/group-shared-2.0.0.tgz"},
		{"group-shared@1.0.0", "group-shared", "local copy", "group-shared/-/group-shared-1.0.0.tgz"},
		{"group-shared", "group-shared", "local only", "group-shared/-/group-shared-1.5.0.tgz"},
		{"group-local", "group-local", "in the hosted member", "group-local/-/group-local-0.1.0.tgz"},
		{"group-remote", "group-remote", "behind the proxy", "group-remote/-/group-remote-0.3.0.tgz"},
	} {
		got, lock := install(tc.spec, tc.name)
		if got != tc.want {
			t.Errorf("npm install %s through the group installed %q, want %q", tc.spec, got, tc.want)
		}
		if !strings.Contains(lock, c.registry+tc.tarball) {
			t.Errorf("package-lock.json of %s does not resolve from the group:\n%s", tc.spec, lock)
		}
	}
	// The group's tarball of a version both members have is the hosted
	// member's, byte for byte.
	if a, b := npmGroupBody(t, down, "/repository/npm-all/group-shared/-/group-shared-1.0.0.tgz"),
		npmGroupBody(t, down, "/repository/npm-local/group-shared/-/group-shared-1.0.0.tgz"); a != b {
		t.Error("the group's tarball of group-shared 1.0.0 is not the hosted member's")
	}

	if got := c.run(work, "npm", "view", "group-shared", "versions", "--json"); !strings.Contains(got, `"1.0.0"`) ||
		!strings.Contains(got, `"1.5.0"`) || !strings.Contains(got, `"2.0.0"`) {
		t.Errorf("npm view group-shared versions through the group: %s", got)
	}
	if got := c.run(work, "npm", "dist-tag", "ls", "group-shared"); !strings.Contains(got, "latest: 1.5.0") ||
		!strings.Contains(got, "remote: 2.0.0") {
		t.Errorf("npm dist-tag ls through the group: %s", got)
	}

	// The merged packument's ETag changes when a member publishes.
	etag := func() string {
		resp := down.do("GET", "/repository/npm-all/group-shared", nil, false)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
			t.Fatalf("GET of the group's packument = %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
		}
		return resp.Header.Get("ETag")
	}
	before := etag()
	if again := etag(); again != before {
		t.Errorf("the group's ETag changed without a publish: %s, then %s", before, again)
	}
	writePackage(t, local, "group-shared", "1.6.0", "local later")
	c.run(local, "npm", "publish")
	if after := etag(); after == before {
		t.Errorf("the group's ETag stayed %s after a publish to a member", after)
	}

	// A user who may read the group and the hosted member, but not the
	// proxy, sees only the hosted member's versions through the group.
	down.createUser("partial", "partial-secret", false, "npm-all:read", "npm-local:read")
	_, partialToken := createToken(t, down, "partial:partial-secret", "partial", "")
	partial := groupNpmClient(t, down, "npm-all", partialToken)
	if got := partial.run(work, "npm", "view", "group-shared", "versions", "--json"); !strings.Contains(got, `"1.5.0"`) ||
		strings.Contains(got, `"2.0.0"`) {
		t.Errorf("npm view through the group by a user who cannot read the proxy: %s", got)
	}
	if out, err := partial.try(work, "npm", "view", "group-remote", "version"); err == nil || !strings.Contains(out, "404") {
		t.Errorf("npm view group-remote by a user who cannot read the proxy: %v\n%s", err, out)
	}

	// A group without a write member refuses, and says why.
	resp = down.do("PUT", "/repository/npm-ro/group-other", strings.NewReader(`{}`), false, "Content-Type", "application/json")
	b, _ := io.ReadAll(resp.Body)
	var refusal struct {
		Error string `json:"error"`
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || json.Unmarshal(b, &refusal) != nil || !strings.Contains(refusal.Error, "writeMember") {
		t.Errorf("publish to a group without writeMember = %d %s, want 405 with npm's error", resp.StatusCode, b)
	}
	ro := groupNpmClient(t, down, "npm-ro", login.Token)
	writePackage(t, local, "group-other", "1.0.0", "refused")
	if out, err := ro.try(local, "npm", "publish"); err == nil || !strings.Contains(out, "405") {
		t.Errorf("npm publish to a group without writeMember: %v\n%s", err, out)
	}
}

// groupNpmClient is an npm client of an existing repository with a token.
func groupNpmClient(t *testing.T, in *instance, repoName, token string) *npmClient {
	t.Helper()
	c := &npmClient{t: t, in: in, home: t.TempDir(), registry: in.URL + "/repository/" + repoName + "/"}
	rc := "registry=" + c.registry + "\n//" + in.Addr + "/repository/" + repoName + "/:_authToken=" + token + "\n"
	if err := os.WriteFile(filepath.Join(c.home, ".npmrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// npmGroupBody GETs a path as admin and returns the body, failing unless 200.
func npmGroupBody(t *testing.T, in *instance, path string) string {
	t.Helper()
	resp := in.do("GET", path, nil, false)
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %v", path, resp.StatusCode, err)
	}
	return string(b)
}
