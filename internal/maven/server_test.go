package maven_test

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/formattest"
	"arca/internal/maven"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// mvnEnv is a test server with the Maven format and one repository per
// version policy: "releases" (allow-once), "snapshots" (allow, keeping the
// two newest builds) and "mixed".
type mvnEnv struct {
	*formattest.Env
	format *maven.Format
}

func newEnv(t *testing.T) *mvnEnv {
	t.Helper()
	e := &mvnEnv{}
	e.Env = formattest.Serve(t, func(repos *repo.Service, _ *auth.Service, cache *proxy.Service) format.Format {
		e.format = maven.New(repos, cache)
		return e.format
	})
	e.Create(t, `{"name":"releases","format":"maven","type":"hosted"}`)
	e.Create(t, `{"name":"snapshots","format":"maven","type":"hosted","writePolicy":"allow",
		"maven":{"versionPolicy":"snapshot","snapshotRetention":2}}`)
	e.Create(t, `{"name":"mixed","format":"maven","type":"hosted","maven":{"versionPolicy":"mixed"}}`)
	return e
}

// do sends a request as admin and returns the status and body.
func (e *mvnEnv) do(t *testing.T, method, path, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+"/repository/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", formattest.AdminPassword)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// deploy PUTs a file and wants 201.
func (e *mvnEnv) deploy(t *testing.T, path, body string) {
	t.Helper()
	if status, msg, _ := e.do(t, "PUT", path, body); status != http.StatusCreated {
		t.Fatalf("PUT %s = %d %s", path, status, msg)
	}
}

// get GETs a file and wants 200.
func (e *mvnEnv) get(t *testing.T, path string) (string, http.Header) {
	t.Helper()
	status, body, h := e.do(t, "GET", path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, status, body)
	}
	return body, h
}

func (e *mvnEnv) metadata(t *testing.T, path string) maven.Metadata {
	t.Helper()
	body, _ := e.get(t, path)
	var m maven.Metadata
	if err := xml.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, body)
	}
	return m
}

func hexOf(h hash.Hash, s string) string {
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

func TestReleaseDeploy(t *testing.T) {
	e := newEnv(t)
	jar := "PK fake jar bytes"
	base := "releases/org/example/lib/1.0/lib-1.0"
	e.deploy(t, base+".jar", jar)
	e.deploy(t, base+".pom", "<project/>")

	// Uploaded checksums are checked against the stored file.
	e.deploy(t, base+".jar.sha1", hexOf(sha1.New(), jar))
	e.deploy(t, base+".jar.md5", hexOf(md5.New(), jar)+"  lib-1.0.jar\n")
	for path, body := range map[string]string{
		base + ".jar.sha1":    hexOf(sha1.New(), "other"),
		base + ".jar.sha256":  "not hex",
		base + "-src.jar.md5": hexOf(md5.New(), jar), // no such file
	} {
		if status, msg, _ := e.do(t, "PUT", path, body); status != http.StatusBadRequest {
			t.Errorf("PUT %s = %d %s, want 400", path, status, msg)
		}
	}

	// Every checksum is served, uploaded or not, and the headers carry them.
	got, h := e.get(t, base+".jar")
	if got != jar {
		t.Fatalf("jar reads %q", got)
	}
	for suffix, want := range map[string]string{
		".sha1": hexOf(sha1.New(), jar), ".md5": hexOf(md5.New(), jar),
		".sha256": hexOf(sha256.New(), jar), ".sha512": hexOf(sha512.New(), jar),
	} {
		if body, _ := e.get(t, base+".jar"+suffix); body != want {
			t.Errorf("%s = %q, want %q", suffix, body, want)
		}
	}
	if h.Get("X-Checksum-Sha1") != hexOf(sha1.New(), jar) || h.Get("X-Checksum-Sha512") != hexOf(sha512.New(), jar) {
		t.Errorf("checksum headers %v", h)
	}

	// A release is deployed once, and the refusal says why.
	status, msg, _ := e.do(t, "PUT", base+".jar", "changed")
	if status != http.StatusConflict || !strings.Contains(msg, "already deployed") {
		t.Errorf("redeploy = %d %q, want 409 saying it is already deployed", status, msg)
	}
	if got, _ := e.get(t, base+".jar"); got != jar {
		t.Errorf("jar changed to %q", got)
	}

	// Version policies.
	status, msg, _ = e.do(t, "PUT", "releases/org/example/lib/1.1-SNAPSHOT/lib-1.1-20261203.101500-1.jar", "x")
	if status != http.StatusBadRequest || !strings.Contains(msg, "snapshot") {
		t.Errorf("snapshot into releases = %d %q", status, msg)
	}
	if status, msg, _ = e.do(t, "PUT", "snapshots/org/example/lib/1.1/lib-1.1.jar", "x"); status != http.StatusBadRequest {
		t.Errorf("release into snapshots = %d %q", status, msg)
	}
	// Paths outside the layout.
	if status, msg, _ = e.do(t, "PUT", "releases/org/example/lib/1.0/other-1.0.jar", "x"); status != http.StatusBadRequest ||
		!strings.Contains(msg, "not a Maven artifact path") {
		t.Errorf("bad path = %d %q", status, msg)
	}
}

func TestArtifactMetadata(t *testing.T) {
	e := newEnv(t)
	// Deployed out of order; Maven's order puts them right.
	for _, v := range []string{"1.10", "1.2", "1.0-alpha-1", "1.0", "2.0-SNAPSHOT", "1.9-rc1"} {
		file := "lib-" + v + ".jar"
		if strings.HasSuffix(v, "-SNAPSHOT") {
			file = "lib-2.0-20261203.101500-1.jar"
		}
		e.deploy(t, "mixed/org/example/lib/"+v+"/"+file, "bytes of "+v)
	}
	// The client's own document is accepted and ignored.
	e.deploy(t, "mixed/org/example/lib/maven-metadata.xml",
		`<metadata><groupId>org.example</groupId><artifactId>lib</artifactId><versioning><versions><version>9.9</version></versions></versioning></metadata>`)
	e.deploy(t, "mixed/org/example/lib/maven-metadata.xml.sha1", hexOf(sha1.New(), "whatever"))

	m := e.metadata(t, "mixed/org/example/lib/maven-metadata.xml")
	want := []string{"1.0-alpha-1", "1.0", "1.2", "1.9-rc1", "1.10", "2.0-SNAPSHOT"}
	if m.GroupID != "org.example" || m.ArtifactID != "lib" || m.Versioning == nil || m.Versioning.Versions == nil {
		t.Fatalf("metadata %+v", m)
	}
	if got := m.Versioning.Versions.List; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("versions %v, want %v", got, want)
	}
	if m.Versioning.Latest != "2.0-SNAPSHOT" || m.Versioning.Release != "1.10" || len(m.Versioning.LastUpdated) != 14 {
		t.Errorf("latest %q release %q lastUpdated %q", m.Versioning.Latest, m.Versioning.Release, m.Versioning.LastUpdated)
	}

	// The checksums are of the bytes served, and stable.
	body, h := e.get(t, "mixed/org/example/lib/maven-metadata.xml")
	if sum, _ := e.get(t, "mixed/org/example/lib/maven-metadata.xml.sha1"); sum != hexOf(sha1.New(), body) {
		t.Errorf("metadata sha1 %q does not match its body", sum)
	}
	if h.Get("X-Checksum-Md5") != hexOf(md5.New(), body) {
		t.Errorf("metadata md5 header %q", h.Get("X-Checksum-Md5"))
	}
	if again, _ := e.get(t, "mixed/org/example/lib/maven-metadata.xml"); again != body {
		t.Error("metadata changed between two reads")
	}
	if status, _, _ := e.do(t, "GET", "mixed/org/example/lib/maven-metadata.xml", "", "If-None-Match", h.Get("ETag")); status != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", status)
	}

	// An artifact that goes takes its version out of the document.
	if status, msg, _ := e.do(t, "DELETE", "mixed/org/example/lib/1.10/lib-1.10.jar", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", status, msg)
	}
	m = e.metadata(t, "mixed/org/example/lib/maven-metadata.xml")
	if m.Versioning.Release != "1.9-rc1" || len(m.Versioning.Versions.List) != 5 {
		t.Errorf("after delete: release %q versions %v", m.Versioning.Release, m.Versioning.Versions.List)
	}
	if status, _, _ := e.do(t, "GET", "mixed/org/example/none/maven-metadata.xml", ""); status != http.StatusNotFound {
		t.Errorf("metadata of nothing = %d", status)
	}
}

func TestSnapshotMetadataAndRetention(t *testing.T) {
	e := newEnv(t)
	dir := "snapshots/org/example/lib/1.0-SNAPSHOT/"
	builds := []string{"20261201.080000-1", "20261202.080000-2", "20261203.080000-3"}
	for i, b := range builds {
		e.deploy(t, dir+"lib-1.0-"+b+".jar", "jar "+b)
		e.deploy(t, dir+"lib-1.0-"+b+".pom", "pom "+b)
		if i == 0 {
			// Only the first build has sources.
			e.deploy(t, dir+"lib-1.0-"+b+"-sources.jar", "src "+b)
		}
		if i == 1 {
			// Snapshots can be redeployed.
			e.deploy(t, dir+"lib-1.0-"+b+".jar", "jar again "+b)
		}
		// The end of a deploy applies retention (two builds are kept).
		e.deploy(t, dir+"maven-metadata.xml", "<metadata/>")
	}
	m := e.metadata(t, dir+"maven-metadata.xml")
	v := m.Versioning
	if m.Version != "1.0-SNAPSHOT" || v.Snapshot == nil || v.Snapshot.Timestamp != "20261203.080000" || v.Snapshot.BuildNumber != 3 {
		t.Fatalf("snapshot %+v %+v", m, v.Snapshot)
	}
	got := map[string]string{}
	for _, sv := range v.SnapshotVersions.List {
		got[sv.Classifier+":"+sv.Extension] = sv.Value + "@" + sv.Updated
	}
	// Build 1's jar and pom are gone with retention; its sources, the
	// only ones, stay.
	want := map[string]string{":jar": "1.0-20261203.080000-3@20261203080000", ":pom": "1.0-20261203.080000-3@20261203080000",
		"sources:jar": "1.0-20261201.080000-1@20261201080000"}
	if len(got) != len(want) || got[":jar"] != want[":jar"] || got[":pom"] != want[":pom"] || got["sources:jar"] != want["sources:jar"] {
		t.Errorf("snapshotVersions %v, want %v", got, want)
	}
	if status, _, _ := e.do(t, "GET", dir+"lib-1.0-"+builds[0]+".jar", ""); status != http.StatusNotFound {
		t.Errorf("build 1 still served: %d", status)
	}
	if body, _ := e.get(t, dir+"lib-1.0-"+builds[1]+".jar"); body != "jar again "+builds[1] {
		t.Errorf("redeployed build 2 reads %q", body)
	}
	am := e.metadata(t, "snapshots/org/example/lib/maven-metadata.xml")
	if am.Versioning.Latest != "1.0-SNAPSHOT" || am.Versioning.Release != "" {
		t.Errorf("artifact metadata %+v", am.Versioning)
	}

	// Garbage collection applies retention too: lower it to one build.
	ctx := context.Background()
	r, err := e.Repos.Get(ctx, "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	up := *r
	up.Sections = map[string]json.RawMessage{"maven": json.RawMessage(`{"versionPolicy":"snapshot","snapshotRetention":1}`)}
	if err := e.Repos.Update(ctx, &up); err != nil {
		t.Fatal(err)
	}
	dry, err := e.format.Prune(ctx, true)
	if err != nil || len(dry) != 2 {
		t.Fatalf("dry run = %v, %v; want build 2's jar and pom", dry, err)
	}
	if _, err := e.format.Prune(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, b := range builds[:2] {
		if status, _, _ := e.do(t, "GET", dir+"lib-1.0-"+b+".pom", ""); status != http.StatusNotFound {
			t.Errorf("build %s kept after gc: %d", b, status)
		}
	}
	e.get(t, dir+"lib-1.0-"+builds[2]+".pom")

	// A build of sources alone does not take the main jar away.
	e.deploy(t, dir+"lib-1.0-20261204.080000-4-sources.jar", "src 4")
	e.deploy(t, dir+"maven-metadata.xml", "<metadata/>")
	e.get(t, dir+"lib-1.0-"+builds[2]+".jar")
	if status, _, _ := e.do(t, "GET", dir+"lib-1.0-"+builds[0]+"-sources.jar", ""); status != http.StatusNotFound {
		t.Errorf("build 1's sources kept after newer sources came: %d", status)
	}
	m = e.metadata(t, dir+"maven-metadata.xml")
	if n := len(m.Versioning.SnapshotVersions.List); m.Versioning.Snapshot.BuildNumber != 4 || n != 3 {
		t.Errorf("after a sources-only build: snapshot %+v, %d snapshotVersions", m.Versioning.Snapshot, n)
	}
}

func TestPluginGroupMetadata(t *testing.T) {
	e := newEnv(t)
	doc := func(prefix, artifact string) string {
		return `<metadata><plugins><plugin><name>P</name><prefix>` + prefix + `</prefix><artifactId>` + artifact +
			`</artifactId></plugin></plugins></metadata>`
	}
	e.deploy(t, "releases/org/example/plugins/maven-metadata.xml", doc("hello", "hello-maven-plugin"))
	e.deploy(t, "releases/org/example/plugins/maven-metadata.xml", doc("bye", "bye-maven-plugin"))
	m := e.metadata(t, "releases/org/example/plugins/maven-metadata.xml")
	if m.Plugins == nil || len(m.Plugins.List) != 2 || m.Plugins.List[0].Prefix != "bye" || m.Plugins.List[1].ArtifactID != "hello-maven-plugin" {
		t.Errorf("plugins %+v", m.Plugins)
	}
	if status, msg, _ := e.do(t, "PUT", "releases/org/example/plugins/maven-metadata.xml", "not xml"); status != http.StatusBadRequest {
		t.Errorf("bad document = %d %s", status, msg)
	}
}

func TestBrowse(t *testing.T) {
	e := newEnv(t)
	e.deploy(t, "releases/org/example/lib/1.0/lib-1.0.jar", "jar")
	status, body, _ := e.do(t, "GET", "releases/org/example/lib/", "", "Accept", "application/json")
	if status != http.StatusOK {
		t.Fatalf("browse = %d %s", status, body)
	}
	var l format.Listing
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, c := range l.Children {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "1.0 maven-metadata.xml maven-metadata.xml.md5 maven-metadata.xml.sha1 maven-metadata.xml.sha256 maven-metadata.xml.sha512" {
		t.Errorf("children %s", got)
	}
	status, body, h := e.do(t, "GET", "releases/org/example/lib/1.0/", "")
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, `href="./lib-1.0.jar"`) {
		t.Errorf("HTML browse = %d %s\n%s", status, h.Get("Content-Type"), body)
	}
	if status, _, _ := e.do(t, "GET", "releases/org/nothing/", ""); status != http.StatusNotFound {
		t.Errorf("empty folder = %d", status)
	}
}
