package maven_test

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/maven"
)

// newGroupEnv adds to newEnv two hosted members, "ma" (mixed) and "mb"
// (release), and the group "grp" of both, ma first and the write member.
func newGroupEnv(t *testing.T) *mvnEnv {
	t.Helper()
	e := newEnv(t)
	e.Create(t, `{"name":"ma","format":"maven","type":"hosted","writePolicy":"allow","maven":{"versionPolicy":"mixed"}}`)
	e.Create(t, `{"name":"mb","format":"maven","type":"hosted"}`)
	e.Create(t, `{"name":"grp","format":"maven","type":"group","group":{"members":["ma","mb"],"writeMember":"ma"}}`)
	return e
}

// versionsOf is the versions of an artifact-level document, space-separated.
func versionsOf(m maven.Metadata) string {
	if m.Versioning == nil || m.Versioning.Versions == nil {
		return ""
	}
	return strings.Join(m.Versioning.Versions.List, " ")
}

func TestGroupArtifactMetadata(t *testing.T) {
	e := newGroupEnv(t)
	lib := "org/example/lib/"
	for _, v := range []string{"1.2", "1.0", "2.0-SNAPSHOT"} {
		file := "lib-" + v + ".jar"
		if v == "2.0-SNAPSHOT" {
			file = "lib-2.0-20261203.101500-1.jar"
		}
		e.deploy(t, "ma/"+lib+v+"/"+file, "ma "+v)
	}
	for _, v := range []string{"1.10", "1.2", "1.1"} {
		e.deploy(t, "mb/"+lib+v+"/lib-"+v+".jar", "mb "+v)
	}

	m := e.metadata(t, "grp/"+lib+"maven-metadata.xml")
	if got, want := versionsOf(m), "1.0 1.1 1.2 1.10 2.0-SNAPSHOT"; got != want {
		t.Errorf("merged versions %q, want %q", got, want)
	}
	if m.GroupID != "org.example" || m.ArtifactID != "lib" || m.Versioning.Latest != "2.0-SNAPSHOT" || m.Versioning.Release != "1.10" {
		t.Errorf("merged %s:%s latest %q release %q", m.GroupID, m.ArtifactID, m.Versioning.Latest, m.Versioning.Release)
	}
	// lastUpdated is the newest of the members': mb deployed last.
	mb := e.metadata(t, "mb/"+lib+"maven-metadata.xml")
	if m.Versioning.LastUpdated != mb.Versioning.LastUpdated {
		t.Errorf("lastUpdated %q, want mb's %q", m.Versioning.LastUpdated, mb.Versioning.LastUpdated)
	}

	// Checksums, headers and ETag are of the merged bytes.
	body, h := e.get(t, "grp/"+lib+"maven-metadata.xml")
	sums := map[string]string{".md5": hexOf(md5.New(), body), ".sha1": hexOf(sha1.New(), body),
		".sha256": hexOf(sha256.New(), body), ".sha512": hexOf(sha512.New(), body)}
	for suffix, want := range sums {
		if got, _ := e.get(t, "grp/"+lib+"maven-metadata.xml"+suffix); got != want {
			t.Errorf("group %s = %q, want %q", suffix, got, want)
		}
	}
	if h.Get("ETag") != `"`+sums[".sha1"]+`"` || h.Get("X-Checksum-Sha1") != sums[".sha1"] || h.Get("X-Checksum-Sha256") != sums[".sha256"] {
		t.Errorf("headers ETag %q X-Checksum-Sha1 %q", h.Get("ETag"), h.Get("X-Checksum-Sha1"))
	}
	if memberSum, _ := e.get(t, "ma/"+lib+"maven-metadata.xml.sha1"); memberSum == sums[".sha1"] {
		t.Error("the group's checksum is a member's")
	}
	if again, _ := e.get(t, "grp/"+lib+"maven-metadata.xml"); again != body {
		t.Error("merged document changed between two reads")
	}
	if status, _, _ := e.do(t, "GET", "grp/"+lib+"maven-metadata.xml", "", "If-None-Match", h.Get("ETag")); status != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", status)
	}
	if status, got, _ := e.do(t, "HEAD", "grp/"+lib+"maven-metadata.xml", ""); status != http.StatusOK || got != "" {
		t.Errorf("HEAD = %d %q", status, got)
	}

	// Artifacts and their checksums come from the first member having them.
	if got, _ := e.get(t, "grp/"+lib+"1.2/lib-1.2.jar"); got != "ma 1.2" {
		t.Errorf("1.2 through the group reads %q, want ma's", got)
	}
	if got, _ := e.get(t, "grp/"+lib+"1.10/lib-1.10.jar"); got != "mb 1.10" {
		t.Errorf("1.10 through the group reads %q", got)
	}
	if got, _ := e.get(t, "grp/"+lib+"1.10/lib-1.10.jar.sha1"); got != hexOf(sha1.New(), "mb 1.10") {
		t.Errorf("1.10 sha1 through the group %q", got)
	}
	if status, got, _ := e.do(t, "GET", "grp/"+lib, ""); status != http.StatusOK || !strings.Contains(got, "maven-metadata.xml") {
		t.Errorf("browse through the group = %d\n%s", status, got)
	}
	for _, p := range []string{lib + "9.9/lib-9.9.jar", "org/example/none/maven-metadata.xml", "org/example/none/maven-metadata.xml.sha1"} {
		if status, _, _ := e.do(t, "GET", "grp/"+p, ""); status != http.StatusNotFound {
			t.Errorf("GET grp/%s = %d, want 404", p, status)
		}
	}
}

func TestGroupSnapshotMetadata(t *testing.T) {
	e := newGroupEnv(t)
	e.Create(t, `{"name":"sb","format":"maven","type":"hosted","writePolicy":"allow","maven":{"versionPolicy":"snapshot"}}`)
	e.Create(t, `{"name":"sgrp","format":"maven","type":"group","group":{"members":["ma","sb"]}}`)
	e.Create(t, `{"name":"sgrp2","format":"maven","type":"group","group":{"members":["sb","ma"]}}`)
	dir := "org/example/lib/1.0-SNAPSHOT/"
	e.deploy(t, "ma/"+dir+"lib-1.0-20261201.080000-1.jar", "ma build 1")
	e.deploy(t, "sb/"+dir+"lib-1.0-20261202.080000-5.jar", "sb build 5")
	e.deploy(t, "sb/"+dir+"lib-1.0-20261202.080000-5-sources.jar", "sb sources 5")
	e.deploy(t, "sb/org/example/lib/2.0-SNAPSHOT/lib-2.0-20261202.080000-2.jar", "sb 2.0 build 2")

	// The first member's document, whole: no build or file of sb in it.
	m := e.metadata(t, "sgrp/"+dir+"maven-metadata.xml")
	v := m.Versioning
	if v == nil || v.Snapshot == nil || v.Snapshot.BuildNumber != 1 || v.SnapshotVersions == nil || len(v.SnapshotVersions.List) != 1 ||
		v.SnapshotVersions.List[0].Value != "1.0-20261201.080000-1" {
		t.Fatalf("snapshot through sgrp %+v", v)
	}
	body, _ := e.get(t, "sgrp/"+dir+"maven-metadata.xml")
	if own, _ := e.get(t, "ma/"+dir+"maven-metadata.xml"); own != body {
		t.Errorf("snapshot document is not ma's own:\n%s\n%s", body, own)
	}
	if sum, _ := e.get(t, "sgrp/"+dir+"maven-metadata.xml.sha1"); sum != hexOf(sha1.New(), body) {
		t.Errorf("snapshot sha1 %q does not match the body", sum)
	}
	m = e.metadata(t, "sgrp2/"+dir+"maven-metadata.xml")
	if v := m.Versioning; v.Snapshot == nil || v.Snapshot.BuildNumber != 5 || len(v.SnapshotVersions.List) != 2 {
		t.Errorf("snapshot through sgrp2 %+v", v)
	}
	// A version only the second member has comes from it.
	m = e.metadata(t, "sgrp/org/example/lib/2.0-SNAPSHOT/maven-metadata.xml")
	if v := m.Versioning; v.Snapshot == nil || v.Snapshot.BuildNumber != 2 {
		t.Errorf("2.0-SNAPSHOT through sgrp %+v", v)
	}
	am := e.metadata(t, "sgrp/org/example/lib/maven-metadata.xml")
	if got := versionsOf(am); got != "1.0-SNAPSHOT 2.0-SNAPSHOT" || am.Versioning.Release != "" || am.Versioning.Latest != "2.0-SNAPSHOT" {
		t.Errorf("artifact document through sgrp: versions %q release %q latest %q", got, am.Versioning.Release, am.Versioning.Latest)
	}
}

func TestGroupPluginMetadata(t *testing.T) {
	e := newGroupEnv(t)
	doc := func(prefix, artifact string) string {
		return `<metadata><plugins><plugin><name>P</name><prefix>` + prefix + `</prefix><artifactId>` + artifact +
			`</artifactId></plugin></plugins></metadata>`
	}
	e.deploy(t, "ma/org/example/plugins/maven-metadata.xml", doc("hello", "hello-a"))
	e.deploy(t, "mb/org/example/plugins/maven-metadata.xml", doc("hello", "hello-b"))
	e.deploy(t, "mb/org/example/plugins/maven-metadata.xml", doc("bye", "bye-b"))
	m := e.metadata(t, "grp/org/example/plugins/maven-metadata.xml")
	if m.Plugins == nil || len(m.Plugins.List) != 2 || m.Plugins.List[0].ArtifactID != "bye-b" || m.Plugins.List[1].ArtifactID != "hello-a" {
		t.Errorf("merged plugins %+v", m.Plugins)
	}
	if m.Versioning != nil {
		t.Errorf("plugin document got versioning %+v", m.Versioning)
	}
}

func TestGroupReadPermissions(t *testing.T) {
	e := newGroupEnv(t)
	e.deploy(t, "ma/org/example/lib/1.0/lib-1.0.jar", "ma")
	e.deploy(t, "mb/org/example/lib/2.0/lib-2.0.jar", "mb")
	ctx := context.Background()
	if err := e.Auth.CreateUser(ctx, &auth.User{Name: "reader", Password: "reader-password",
		Permissions: []auth.Grant{{Repository: "grp", Actions: []string{"read"}}, {Repository: "ma", Actions: []string{"read"}}}}); err != nil {
		t.Fatal(err)
	}
	get := func(p string) (int, string) {
		req, err := http.NewRequest("GET", e.URL+"/repository/"+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("reader", "reader-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	status, body := get("grp/org/example/lib/maven-metadata.xml")
	var m maven.Metadata
	if status != http.StatusOK || xml.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("reader's metadata = %d %s", status, body)
	}
	if got := versionsOf(m); got != "1.0" {
		t.Errorf("reader sees versions %q, want only ma's 1.0", got)
	}
	if status, sum := get("grp/org/example/lib/maven-metadata.xml.sha1"); status != http.StatusOK || sum != hexOf(sha1.New(), body) {
		t.Errorf("reader's sha1 = %d %q, want that of what the reader got", status, sum)
	}
	if status, _ := get("grp/org/example/lib/2.0/lib-2.0.jar"); status != http.StatusNotFound {
		t.Errorf("reader's GET of mb's jar through the group = %d, want 404", status)
	}
	// The admin sees both.
	if got := versionsOf(e.metadata(t, "grp/org/example/lib/maven-metadata.xml")); got != "1.0 2.0" {
		t.Errorf("admin sees %q", got)
	}
}

func TestNestedGroupMetadata(t *testing.T) {
	e := newGroupEnv(t)
	e.Create(t, `{"name":"mc","format":"maven","type":"hosted"}`)
	e.Create(t, `{"name":"outer","format":"maven","type":"group","group":{"members":["mc","grp"]}}`)
	e.deploy(t, "ma/org/example/lib/1.0/lib-1.0.jar", "ma")
	e.deploy(t, "mb/org/example/lib/2.0/lib-2.0.jar", "mb")
	e.deploy(t, "mc/org/example/lib/3.0-beta/lib-3.0-beta.jar", "mc")
	m := e.metadata(t, "outer/org/example/lib/maven-metadata.xml")
	if got := versionsOf(m); got != "1.0 2.0 3.0-beta" || m.Versioning.Release != "3.0-beta" {
		t.Errorf("nested group: versions %q release %q", got, m.Versioning.Release)
	}
	if got, _ := e.get(t, "outer/org/example/lib/2.0/lib-2.0.jar"); got != "mb" {
		t.Errorf("jar through the nested group reads %q", got)
	}
}

func TestGroupWithProxyMember(t *testing.T) {
	e := newGroupEnv(t)
	upstreamDoc := `<?xml version="1.0" encoding="UTF-8"?>
<metadata><groupId>org.example</groupId><artifactId>lib</artifactId><versioning><latest>0.9</latest><release>0.9</release>
<versions><version>0.9</version><version>1.0</version></versions><lastUpdated>20300101000000</lastUpdated></versioning></metadata>`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/org/example/lib/maven-metadata.xml":
			io.WriteString(w, upstreamDoc) //nolint:errcheck // a test upstream
		case "/org/example/bad/maven-metadata.xml":
			io.WriteString(w, "<html>not a Maven repository</html>") //nolint:errcheck // a test upstream
		case "/org/example/lib/maven-metadata.xml.sha1":
			io.WriteString(w, hexOf(sha1.New(), upstreamDoc)) //nolint:errcheck // a test upstream
		case "/org/example/lib/1.0/lib-1.0.jar":
			io.WriteString(w, "0123456789") //nolint:errcheck // a test upstream
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(up.Close)
	e.Create(t, `{"name":"central","format":"maven","type":"proxy","online":true,"proxy":{"url":"`+up.URL+`/"}}`)
	e.Create(t, `{"name":"dead","format":"maven","type":"proxy","online":true,"proxy":{"url":"http://127.0.0.1:1/"}}`)
	e.Create(t, `{"name":"pgrp","format":"maven","type":"group","group":{"members":["dead","ma","central"]}}`)
	e.Create(t, `{"name":"deadgrp","format":"maven","type":"group","group":{"members":["dead"]}}`)
	e.Create(t, `{"name":"cgrp","format":"maven","type":"group","group":{"members":["central"]}}`)
	e.deploy(t, "ma/org/example/lib/1.1/lib-1.1.jar", "ma")

	body, _ := e.get(t, "pgrp/org/example/lib/maven-metadata.xml")
	var m maven.Metadata
	if err := xml.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	// The upstream's latest is recomputed; its lastUpdated is the newest.
	if got := versionsOf(m); got != "0.9 1.0 1.1" || m.Versioning.Latest != "1.1" || m.Versioning.Release != "1.1" ||
		m.Versioning.LastUpdated != "20300101000000" {
		t.Errorf("merged with a proxy: %q latest %q release %q lastUpdated %q", got, m.Versioning.Latest, m.Versioning.Release, m.Versioning.LastUpdated)
	}
	if sum, _ := e.get(t, "pgrp/org/example/lib/maven-metadata.xml.sha1"); sum != hexOf(sha1.New(), body) {
		t.Errorf("sha1 %q is not that of the merged bytes", sum)
	}
	// A member answering something else than a document is skipped.
	e.deploy(t, "ma/org/example/bad/1.0/bad-1.0.jar", "ma")
	if got := versionsOf(e.metadata(t, "pgrp/org/example/bad/maven-metadata.xml")); got != "1.0" {
		t.Errorf("merged with a member's broken document: %q", got)
	}
	if status, msg, _ := e.do(t, "GET", "cgrp/org/example/bad/maven-metadata.xml", ""); status != http.StatusBadGateway {
		t.Errorf("group of a proxy answering no document = %d %s, want 502", status, msg)
	}
	// The merged document has no Last-Modified, which a member leaving
	// would not move: revalidation goes by its ETag.
	if _, _, h := e.do(t, "GET", "pgrp/org/example/lib/maven-metadata.xml", ""); h.Get("Last-Modified") != "" || h.Get("ETag") == "" {
		t.Errorf("merged document's Last-Modified %q, ETag %q", h.Get("Last-Modified"), h.Get("ETag"))
	}
	// A range of an artifact not yet cached is answered as a range.
	if status, part, _ := e.do(t, "GET", "central/org/example/lib/1.0/lib-1.0.jar", "", "Range", "bytes=2-4"); status != http.StatusPartialContent || part != "234" {
		t.Errorf("cold Range through a proxy = %d %q, want 206 \"234\"", status, part)
	}
	// A failing member alone is the answer's failure.
	if status, msg, _ := e.do(t, "GET", "deadgrp/org/example/lib/maven-metadata.xml", ""); status < 500 {
		t.Errorf("group of an unreachable proxy = %d %s, want 5xx", status, msg)
	}
}

func TestDeployThroughGroup(t *testing.T) {
	e := newGroupEnv(t)
	base := "org/example/app/1.0/app-1.0"
	jar := "app jar"
	e.deploy(t, "grp/"+base+".jar", jar)
	e.deploy(t, "grp/"+base+".jar.sha1", hexOf(sha1.New(), jar))
	e.deploy(t, "grp/"+base+".pom", "<project/>")
	// mvn reads the document from the group, then uploads its own.
	if status, _, _ := e.do(t, "GET", "grp/org/example/app/maven-metadata.xml", ""); status != http.StatusOK {
		t.Errorf("group metadata after the deploy = %d", status)
	}
	e.deploy(t, "grp/org/example/app/maven-metadata.xml", `<metadata><groupId>org.example</groupId><artifactId>app</artifactId></metadata>`)
	e.deploy(t, "grp/org/example/app/maven-metadata.xml.sha1", hexOf(sha1.New(), "anything"))
	if got, _ := e.get(t, "ma/"+base+".jar"); got != jar {
		t.Errorf("write member holds %q", got)
	}
	if status, _, _ := e.do(t, "GET", "mb/"+base+".jar", ""); status != http.StatusNotFound {
		t.Errorf("other member has the jar: %d", status)
	}
	if got := versionsOf(e.metadata(t, "grp/org/example/app/maven-metadata.xml")); got != "1.0" {
		t.Errorf("versions through the group %q", got)
	}
	// A bad checksum is checked in the write member as in a hosted one.
	if status, _, _ := e.do(t, "PUT", "grp/"+base+".jar.sha1", hexOf(sha1.New(), "other")); status != http.StatusBadRequest {
		t.Errorf("wrong checksum through the group = %d, want 400", status)
	}

	e.Create(t, `{"name":"ro","format":"maven","type":"group","group":{"members":["ma","mb"]}}`)
	status, msg, h := e.do(t, "PUT", "ro/org/example/app/2.0/app-2.0.jar", "x")
	if status != http.StatusMethodNotAllowed || !strings.Contains(msg, "writeMember") || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("deploy to a group without writeMember = %d %s %q", status, msg, h.Get("Content-Type"))
	}
	if status, _, _ := e.do(t, "GET", "ma/org/example/app/2.0/app-2.0.jar", ""); status != http.StatusNotFound {
		t.Errorf("refused deploy landed: %d", status)
	}
}
