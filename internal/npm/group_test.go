package npm_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/npm"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// groupEnv is an arca with the hosted npm repositories "a" and "b", the
// group "grp" of both (a first, a taking writes) and the read-only group
// "ro" of the same members.
type groupEnv struct {
	*formattest.Env
}

func newGroupEnv(t *testing.T) *groupEnv {
	t.Helper()
	e := &groupEnv{formattest.Serve(t, func(repos *repo.Service, authn *auth.Service, cache *proxy.Service) format.Format {
		return npm.New(repos, authn, cache)
	})}
	e.Create(t, `{"name":"a","format":"npm","type":"hosted"}`)
	e.Create(t, `{"name":"b","format":"npm","type":"hosted"}`)
	e.Create(t, `{"name":"grp","format":"npm","type":"group","group":{"members":["a","b"],"writeMember":"a"}}`)
	e.Create(t, `{"name":"ro","format":"npm","type":"group","group":{"members":["a","b"]}}`)
	return e
}

// repoURL is a repository's URL, ending in "/".
func (e *groupEnv) repoURL(name string) string { return e.URL + "/repository/" + name + "/" }

// markedTarball is a package tarball whose package.json carries a marker,
// so that the same version differs between repositories.
func markedTarball(t *testing.T, name, version, marker string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	pj := fmt.Sprintf(`{"name":%q,"version":%q,"description":%q}`, name, version, marker)
	if err := tw.WriteHeader(&tar.Header{Name: "package/package.json", Mode: 0o644, Size: int64(len(pj))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(pj)) //nolint:errcheck // writes to memory
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// publishMarked publishes a version, described by marker and tagged with
// tags, to the repository at url, and returns its tarball's shasum.
func publishMarked(t *testing.T, url, name, version, marker string, tags ...string) string {
	t.Helper()
	tgz := markedTarball(t, name, version, marker)
	s512, s1 := sha512.Sum512(tgz), sha1.Sum(tgz)
	distTags := map[string]string{}
	for _, tag := range tags {
		distTags[tag] = version
	}
	body, err := json.Marshal(map[string]any{
		"name": name, "dist-tags": distTags,
		"versions": map[string]any{version: map[string]any{"name": name, "version": version, "description": marker,
			"dist": map[string]string{"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"shasum": hex.EncodeToString(s1[:])}}},
		"_attachments": map[string]any{name[strings.LastIndex(name, "/")+1:] + "-" + version + ".tgz": map[string]any{
			"data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, b := call(t, "PUT", url+strings.Replace(name, "/", "%2f", 1), body, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("publish %s@%s to %s = %d %s", name, version, url, resp.StatusCode, b)
	}
	return hex.EncodeToString(s1[:])
}

// groupDoc is a packument as the tests read it.
type groupDoc struct {
	Name     string            `json:"name"`
	DistTags map[string]string `json:"dist-tags"`
	Versions map[string]struct {
		Description string `json:"description"`
		Dist        struct {
			Tarball string `json:"tarball"`
			Shasum  string `json:"shasum"`
		} `json:"dist"`
	} `json:"versions"`
	Time     map[string]string `json:"time"`
	Modified string            `json:"modified"`
}

// getDoc GETs and decodes a packument as admin, failing unless it is 200.
func getDoc(t *testing.T, url string, header ...string) (groupDoc, *http.Response) {
	t.Helper()
	resp, b := call(t, "GET", url, nil, header...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	var d groupDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
	return d, resp
}

func TestGroupMerge(t *testing.T) {
	e := newGroupEnv(t)
	shaA := publishMarked(t, e.repoURL("a"), "pkg", "1.0.0", "from a", "latest", "stable")
	publishMarked(t, e.repoURL("b"), "pkg", "1.0.0", "from b", "latest")
	shaB2 := publishMarked(t, e.repoURL("b"), "pkg", "2.0.0", "from b", "latest", "next", "stable")
	publishMarked(t, e.repoURL("b"), "@sc/only-b", "0.1.0", "scoped in b", "latest")

	docA, _ := getDoc(t, e.repoURL("a")+"pkg")
	docB, _ := getDoc(t, e.repoURL("b")+"pkg")
	d, resp := getDoc(t, e.repoURL("grp")+"pkg")
	if len(d.Versions) != 2 {
		t.Fatalf("merged versions = %v, want 1.0.0 and 2.0.0", d.Versions)
	}
	if v := d.Versions["1.0.0"]; v.Description != "from a" || v.Dist.Shasum != shaA {
		t.Errorf("1.0.0 in the group = %+v, want the first member's (shasum %s)", v, shaA)
	}
	if v := d.Versions["2.0.0"]; v.Description != "from b" || v.Dist.Shasum != shaB2 {
		t.Errorf("2.0.0 in the group = %+v, want b's", v)
	}
	want := map[string]string{"latest": "1.0.0", "stable": "1.0.0", "next": "2.0.0"}
	if fmt.Sprint(d.DistTags) != fmt.Sprint(want) {
		t.Errorf("merged dist-tags = %v, want %v", d.DistTags, want)
	}
	if d.Time["1.0.0"] != docA.Time["1.0.0"] || d.Time["2.0.0"] != docB.Time["2.0.0"] || d.Time["1.0.0"] == docB.Time["1.0.0"] {
		t.Errorf("merged time = %v; a's %v, b's %v", d.Time, docA.Time, docB.Time)
	}
	if d.Time["created"] != docA.Time["created"] || d.Time["modified"] != docB.Time["modified"] {
		t.Errorf("merged created/modified = %s/%s, want a's created %s and b's modified %s",
			d.Time["created"], d.Time["modified"], docA.Time["created"], docB.Time["modified"])
	}
	for v, m := range d.Versions {
		if want := e.repoURL("grp") + "pkg/-/pkg-" + v + ".tgz"; m.Dist.Tarball != want {
			t.Errorf("tarball of %s = %s, want %s", v, m.Dist.Tarball, want)
		}
	}
	if resp.Header.Get("ETag") == "" {
		t.Error("merged packument without ETag")
	}

	// The tarballs the group links to are the winners'.
	for v, sha := range map[string]string{"1.0.0": shaA, "2.0.0": shaB2} {
		resp, b := call(t, "GET", d.Versions[v].Dist.Tarball, nil)
		sum := sha1.Sum(b)
		if resp.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != sha {
			t.Errorf("GET tarball %s through the group = %d, shasum %x, want %s", v, resp.StatusCode, sum, sha)
		}
	}

	// Abbreviated form.
	resp, b := call(t, "GET", e.repoURL("grp")+"pkg", nil, "Accept", "application/vnd.npm.install-v1+json")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/vnd.npm.install-v1+json" {
		t.Fatalf("abbreviated = %d %s %s", resp.StatusCode, ct, b)
	}
	var small groupDoc
	if err := json.Unmarshal(b, &small); err != nil {
		t.Fatal(err)
	}
	if len(small.Versions) != 2 || small.Versions["1.0.0"].Description != "" || small.Versions["1.0.0"].Dist.Shasum != shaA ||
		!strings.HasPrefix(small.Versions["2.0.0"].Dist.Tarball, e.repoURL("grp")) || small.DistTags["next"] != "2.0.0" ||
		small.Modified != docB.Time["modified"] {
		t.Errorf("abbreviated merged packument: %s", b)
	}

	// Version documents and dist-tags.
	for path, want := range map[string]string{"pkg/1.0.0": "from a", "pkg/next": "from b", "pkg/stable": "from a"} {
		resp, b := call(t, "GET", e.repoURL("grp")+path, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) || !strings.Contains(string(b), e.repoURL("grp")) {
			t.Errorf("GET grp/%s = %d %s, want %q", path, resp.StatusCode, b, want)
		}
	}
	if resp, b := call(t, "GET", e.repoURL("grp")+"pkg/3.0.0", nil); resp.StatusCode != 404 {
		t.Errorf("GET grp/pkg/3.0.0 = %d %s, want 404", resp.StatusCode, b)
	}
	if resp, b := call(t, "GET", e.repoURL("grp")+"-/package/pkg/dist-tags", nil); resp.StatusCode != 200 ||
		!strings.Contains(string(b), `"next":"2.0.0"`) || !strings.Contains(string(b), `"latest":"1.0.0"`) {
		t.Errorf("dist-tag ls through the group = %d %s", resp.StatusCode, b)
	}
	if resp, b := call(t, "GET", e.repoURL("grp")+"-/package/pkg/dist-tags/next", nil); resp.StatusCode != 200 || string(b) != `"2.0.0"` {
		t.Errorf("dist-tag next through the group = %d %s", resp.StatusCode, b)
	}

	// A scoped package only the second member has.
	sc, _ := getDoc(t, e.repoURL("grp")+"@sc%2fonly-b")
	if want := e.repoURL("grp") + "@sc/only-b/-/only-b-0.1.0.tgz"; sc.Versions["0.1.0"].Dist.Tarball != want {
		t.Errorf("scoped tarball = %s, want %s", sc.Versions["0.1.0"].Dist.Tarball, want)
	} else if resp, _ := call(t, "GET", want, nil); resp.StatusCode != 200 {
		t.Errorf("GET %s = %d", want, resp.StatusCode)
	}
	// A package no member has.
	if resp, b := call(t, "GET", e.repoURL("grp")+"nothing", nil); resp.StatusCode != 404 || !strings.Contains(string(b), `"error"`) {
		t.Errorf("GET grp/nothing = %d %s, want npm's 404", resp.StatusCode, b)
	}
}

func TestGroupETag(t *testing.T) {
	e := newGroupEnv(t)
	publishMarked(t, e.repoURL("a"), "pkg", "1.0.0", "from a", "latest")
	_, resp := getDoc(t, e.repoURL("grp")+"pkg")
	etag := resp.Header.Get("ETag")
	if resp, _ := call(t, "GET", e.repoURL("grp")+"pkg", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag = %d, want 304", resp.StatusCode)
	}
	// The same document gives the same ETag.
	if _, again := getDoc(t, e.repoURL("grp")+"pkg"); again.Header.Get("ETag") != etag {
		t.Errorf("ETag changed without a change: %s, then %s", etag, again.Header.Get("ETag"))
	}
	// A publish to the second member changes it.
	publishMarked(t, e.repoURL("b"), "pkg", "1.1.0", "from b")
	resp, b := call(t, "GET", e.repoURL("grp")+"pkg", nil, "If-None-Match", etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag || !strings.Contains(string(b), `"1.1.0"`) {
		t.Errorf("after a member's publish: %d, ETag %s (was %s)", resp.StatusCode, resp.Header.Get("ETag"), etag)
	}
	// So does the abbreviated form's.
	resp, _ = call(t, "GET", e.repoURL("grp")+"pkg", nil, "Accept", "application/vnd.npm.install-v1+json")
	small := resp.Header.Get("ETag")
	publishMarked(t, e.repoURL("a"), "pkg", "1.2.0", "from a")
	resp, _ = call(t, "GET", e.repoURL("grp")+"pkg", nil, "Accept", "application/vnd.npm.install-v1+json", "If-None-Match", small)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == small {
		t.Errorf("abbreviated after a publish: %d, ETag %s (was %s)", resp.StatusCode, resp.Header.Get("ETag"), small)
	}
}

func TestGroupPermissionsAndNesting(t *testing.T) {
	e := newGroupEnv(t)
	publishMarked(t, e.repoURL("a"), "pkg", "1.0.0", "from a", "latest")
	publishMarked(t, e.repoURL("b"), "pkg", "2.0.0", "from b", "latest", "next")
	ctx := context.Background()
	if err := e.Auth.CreateUser(ctx, &auth.User{Name: "reader", Password: "reader-password", Permissions: []auth.Grant{
		{Repository: "grp", Actions: []string{"read"}}, {Repository: "a", Actions: []string{"read"}}}}); err != nil {
		t.Fatal(err)
	}
	get := func(path string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", e.repoURL("grp")+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("reader", "reader-password")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := get("pkg")
	if resp.StatusCode != 200 || strings.Contains(string(b), "2.0.0") || !strings.Contains(string(b), `"1.0.0"`) {
		t.Errorf("a reader of a only sees through the group: %d %s", resp.StatusCode, b)
	}
	if resp, b := get("pkg/next"); resp.StatusCode != 404 {
		t.Errorf("a reader of a only gets pkg/next = %d %s, want 404", resp.StatusCode, b)
	}
	if resp, b := get("-/whoami"); resp.StatusCode != 200 || !strings.Contains(string(b), `"reader"`) {
		t.Errorf("whoami on the group = %d %s", resp.StatusCode, b)
	}
	if resp, b := get("-/ping"); resp.StatusCode != 200 {
		t.Errorf("ping on the group = %d %s", resp.StatusCode, b)
	}

	// A group of a hosted repository and the group grp.
	e.Create(t, `{"name":"c","format":"npm","type":"hosted"}`)
	e.Create(t, `{"name":"outer","format":"npm","type":"group","group":{"members":["c","grp"]}}`)
	publishMarked(t, e.repoURL("c"), "pkg", "2.0.0", "from c")
	publishMarked(t, e.repoURL("c"), "pkg", "0.5.0", "from c", "latest", "old")
	d, _ := getDoc(t, e.repoURL("outer")+"pkg")
	if len(d.Versions) != 3 || d.Versions["2.0.0"].Description != "from c" || d.Versions["1.0.0"].Description != "from a" ||
		d.DistTags["latest"] != "0.5.0" || d.DistTags["next"] != "2.0.0" || d.DistTags["old"] != "0.5.0" {
		t.Errorf("nested group's packument: %+v", d)
	}
	for v, m := range d.Versions {
		if !strings.HasPrefix(m.Dist.Tarball, e.repoURL("outer")) {
			t.Errorf("tarball of %s = %s, want under outer", v, m.Dist.Tarball)
		}
	}
	if resp, _ := call(t, "GET", e.repoURL("outer")+"pkg/-/pkg-1.0.0.tgz", nil); resp.StatusCode != 200 {
		t.Errorf("tarball of a through the nested group = %d", resp.StatusCode)
	}
}

func TestGroupWrites(t *testing.T) {
	e := newGroupEnv(t)
	publishMarked(t, e.repoURL("b"), "pkg", "1.0.0", "from b", "latest")
	// A publish through the group lands in a, its write member.
	publishMarked(t, e.repoURL("grp"), "pkg", "2.0.0", "through grp", "latest")
	if d, _ := getDoc(t, e.repoURL("a")+"pkg"); d.Versions["2.0.0"].Description != "through grp" {
		t.Errorf("a after a publish through the group: %+v", d)
	}
	if resp, _ := call(t, "GET", e.repoURL("b")+"pkg/2.0.0", nil); resp.StatusCode != 404 {
		t.Errorf("b has the version published through the group: %d", resp.StatusCode)
	}
	// dist-tag add through the group.
	if resp, b := call(t, "PUT", e.repoURL("grp")+"-/package/pkg/dist-tags/beta", []byte(`"2.0.0"`), "Content-Type", "application/json"); resp.StatusCode != 200 {
		t.Errorf("dist-tag add through the group = %d %s", resp.StatusCode, b)
	}
	if d, _ := getDoc(t, e.repoURL("a")+"pkg"); d.DistTags["beta"] != "2.0.0" {
		t.Errorf("a's tags after dist-tag add through the group: %v", d.DistTags)
	}
	// The document npm reads to write back is the write member's.
	d, _ := getDoc(t, e.repoURL("grp")+"pkg?write=true")
	if len(d.Versions) != 1 || d.Versions["2.0.0"].Description != "through grp" {
		t.Errorf("?write=true through the group: %+v, want a's document", d)
	}
	// So is the one npm publish reads to check that the version is new:
	// b's 1.0.0 must not stop a publish of 1.0.0 to a.
	if resp, b := call(t, "GET", e.repoURL("grp")+"pkg/1.0.0", nil, "Npm-Command", "publish"); resp.StatusCode != 404 {
		t.Errorf("npm publish's check of pkg@1.0.0 through the group = %d %s, want 404", resp.StatusCode, b)
	}
	if d, _ := getDoc(t, e.repoURL("grp")+"pkg", "Npm-Command", "install"); len(d.Versions) != 2 {
		t.Errorf("npm install's read through the group: %+v, want both members' versions", d)
	}

	// A group without a write member refuses, in npm's form.
	resp, b := call(t, "PUT", e.repoURL("ro")+"pkg", []byte(`{}`), "Content-Type", "application/json")
	var body struct {
		Error string `json:"error"`
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || json.Unmarshal(b, &body) != nil || !strings.Contains(body.Error, "writeMember") {
		t.Errorf("publish to a group without writeMember = %d %s", resp.StatusCode, b)
	}
}

func TestGroupFailingMember(t *testing.T) {
	e := newGroupEnv(t)
	publishMarked(t, e.repoURL("a"), "pkg", "1.0.0", "from a", "latest")
	// A proxy whose upstream refuses connections.
	e.Create(t, `{"name":"dead","format":"npm","type":"proxy","proxy":{"url":"http://127.0.0.1:1/"}}`)
	e.Create(t, `{"name":"withdead","format":"npm","type":"group","group":{"members":["dead","a"]}}`)
	e.Create(t, `{"name":"onlydead","format":"npm","type":"group","group":{"members":["dead"]}}`)
	if d, _ := getDoc(t, e.repoURL("withdead")+"pkg"); d.Versions["1.0.0"].Description != "from a" {
		t.Errorf("group with an unreachable member: %+v", d)
	}
	if resp, b := call(t, "GET", e.repoURL("onlydead")+"pkg", nil); resp.StatusCode < 500 {
		t.Errorf("group of an unreachable member only = %d %s, want a 5xx", resp.StatusCode, b)
	}
}
