package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"
)

// mavenVersions is the versions list of an artifact-level
// maven-metadata.xml, space-separated.
func mavenVersions(t *testing.T, doc string) string {
	t.Helper()
	var m struct {
		Latest   string   `xml:"versioning>latest"`
		Release  string   `xml:"versioning>release"`
		Versions []string `xml:"versioning>versions>version"`
	}
	if err := xml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("maven-metadata.xml does not parse: %v\n%s", err, doc)
	}
	return strings.Join(m.Versions, " ") + " latest=" + m.Latest + " release=" + m.Release
}

// TestMavenGroup builds through a group of a hosted repository and a proxy
// of another arca's hosted repository, with strict checksums: mvn resolves
// version ranges, and so reads the merged maven-metadata.xml and its
// checksum, and deploys through the group to its write member.
func TestMavenGroup(t *testing.T) {
	mvn := requireMaven(t)
	work := t.TempDir()

	// Upstream: greeting 1.0 and counter 3.0 live only here.
	up := start(t)
	up.createRepo(`{"name":"maven-releases","format":"maven","type":"hosted"}`)
	up.createUser("deployer", "deployer-secret", false, "maven-releases:read,write")
	upSettings := writeMavenSettings(t, work, up.URL, "deployer", "deployer-secret", filepath.Join(work, "m2-up"))
	for _, p := range []struct{ artifact, version, class, source string }{
		{"greeting", "1.0", "Greeting", `package com.example; public class Greeting { public static String text() { return "upstream"; } }`},
		{"counter", "3.0", "Counter", `package com.example; public class Counter { public static int n() { return 3; } }`},
	} {
		dir := filepath.Join(work, "up-"+p.artifact)
		mavenProject(t, dir, up.URL, p.artifact, p.version, p.class, p.source)
		if out, ok := mavenRun(t, mvn, dir, upSettings, "deploy"); !ok {
			t.Fatalf("deploy of %s %s upstream:\n%s", p.artifact, p.version, out)
		}
	}

	// The second arca: the group is named maven-releases so that the
	// shared settings and POM templates point at it.
	down := start(t)
	down.createRepo(`{"name":"local-releases","format":"maven","type":"hosted"}`)
	down.createRepo(proxyDef("upstream-releases", "maven", up, "maven-releases", ""))
	down.createRepo(`{"name":"maven-releases","format":"maven","type":"group",
		"group":{"members":["local-releases","upstream-releases"],"writeMember":"local-releases"}}`)
	down.createRepo(`{"name":"maven-snapshots","format":"maven","type":"hosted","writePolicy":"allow","maven":{"versionPolicy":"snapshot"}}`)
	down.createRepo(`{"name":"readonly-group","format":"maven","type":"group","group":{"members":["local-releases","upstream-releases"]}}`)
	down.createUser("deployer", "deployer-secret", false, "maven-releases:read", "local-releases:read,write",
		"upstream-releases:read", "maven-snapshots:read")
	down.createUser("builder", "builder-secret", false, "maven-releases:read", "local-releases:read",
		"upstream-releases:read", "maven-snapshots:read")

	// greeting 1.1 is deployed through the group: it lands in the write
	// member only. mvn reads the group's merged document first.
	deploySettings := writeMavenSettings(t, work, down.URL, "deployer", "deployer-secret", filepath.Join(work, "m2-down-deployer"))
	greeting := filepath.Join(work, "greeting-1.1")
	mavenProject(t, greeting, down.URL, "greeting", "1.1", "Greeting",
		`package com.example; public class Greeting { public static String text() { return "local"; } }`)
	if out, ok := mavenRun(t, mvn, greeting, deploySettings, "deploy"); !ok {
		t.Fatalf("deploy through the group:\n%s", out)
	}
	group := down.URL + "/repository/maven-releases/com/example/greeting/"
	if n := upstreamRequests(down, "GET", "/repository/maven-releases/com/example/greeting/maven-metadata.xml", 200); n == 0 {
		t.Error("the deploy did not read the group's merged maven-metadata.xml")
	}
	if n := upstreamRequests(down, "PUT", "/repository/maven-releases/com/example/greeting/maven-metadata.xml", 201); n != 1 {
		t.Errorf("the deploy's maven-metadata.xml upload through the group answered 201 %d times, want 1", n)
	}
	if s := curlStatus(t, "-u", admin(), down.URL+"/repository/local-releases/com/example/greeting/1.1/greeting-1.1.jar"); s != "200" {
		t.Errorf("greeting 1.1 in the write member: %s", s)
	}
	if s := curlStatus(t, "-u", admin(), up.URL+"/repository/maven-releases/com/example/greeting/1.1/greeting-1.1.jar"); s != "404" {
		t.Errorf("greeting 1.1 upstream: %s, want 404", s)
	}
	if got := mavenVersions(t, curl(t, "-u", admin(), down.URL+"/repository/local-releases/com/example/greeting/maven-metadata.xml")); got != "1.1 latest=1.1 release=1.1" {
		t.Errorf("write member's own document: %s", got)
	}

	// The merged document holds both members' versions, and its checksum
	// is of the bytes served.
	doc := curl(t, "-u", "builder:builder-secret", group+"maven-metadata.xml")
	if got := mavenVersions(t, doc); got != "1.0 1.1 latest=1.1 release=1.1" {
		t.Errorf("merged document: %s\n%s", got, doc)
	}
	sum := sha1.Sum([]byte(doc))
	if got := curl(t, "-u", "builder:builder-secret", group+"maven-metadata.xml.sha1"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("merged document's sha1 %q, want %x", got, sum)
	}

	// A build resolves a range of greeting (1.1, only in the hosted member)
	// and of counter (3.0, only behind the proxy) through the group.
	app := filepath.Join(work, "app")
	mavenProject(t, app, down.URL, "app", "1.0", "App",
		`package com.example; public class App { public static String run() { return Greeting.text() + Counter.n(); } }`,
		mavenDep{"greeting", "[1.0,2.0)"}, mavenDep{"counter", "[1.0,)"})
	buildSettings := writeMavenSettings(t, work, down.URL, "builder", "builder-secret", filepath.Join(work, "m2-builder"))
	out, ok := mavenRun(t, mvn, app, buildSettings, "package")
	if !ok {
		t.Fatalf("build through the group (strict checksums) failed:\n%s", out)
	}
	for _, p := range []string{"greeting/1.1/greeting-1.1.jar", "counter/3.0/counter-3.0.jar", "counter/maven-metadata.xml"} {
		if !strings.Contains(out, down.URL+"/repository/maven-releases/com/example/"+p) {
			t.Errorf("the build did not download %s through the group:\n%s", p, out)
		}
	}
	if n := upstreamRequests(up, "GET", "/repository/maven-releases/com/example/counter/3.0/counter-3.0.jar", 200); n != 1 {
		t.Errorf("upstream served counter 3.0 %d times, want 1", n)
	}
	// An artifact's checksum through the group is the member's.
	jar := curl(t, "-u", "builder:builder-secret", down.URL+"/repository/maven-releases/com/example/counter/3.0/counter-3.0.jar")
	jarSum := sha1.Sum([]byte(jar))
	if got := curl(t, "-u", "builder:builder-secret", down.URL+"/repository/maven-releases/com/example/counter/3.0/counter-3.0.jar.sha1"); got != hex.EncodeToString(jarSum[:]) {
		t.Errorf("counter jar's sha1 through the group %q, want %x", got, jarSum)
	}
	if s := curlStatus(t, "-u", "builder:builder-secret", group); s != "200" {
		t.Errorf("browse of the group's folder: %s", s)
	}

	// greeting 1.0, which the proxy member has, deployed through the group
	// into the hosted member too: the group serves the first member's.
	greeting10 := filepath.Join(work, "greeting-1.0")
	mavenProject(t, greeting10, down.URL, "greeting", "1.0", "Greeting",
		`package com.example; public class Greeting { public static String text() { return "local 1.0"; } }`)
	if out, ok := mavenRun(t, mvn, greeting10, deploySettings, "deploy"); !ok {
		t.Fatalf("deploy of greeting 1.0 through the group:\n%s", out)
	}
	jar10 := "/com/example/greeting/1.0/greeting-1.0.jar"
	viaGroup := curl(t, "-u", "builder:builder-secret", down.URL+"/repository/maven-releases"+jar10)
	if viaGroup != curl(t, "-u", admin(), down.URL+"/repository/local-releases"+jar10) {
		t.Error("greeting 1.0 through the group is not the first member's")
	}
	if viaGroup == curl(t, "-u", admin(), up.URL+"/repository/maven-releases"+jar10) {
		t.Error("the two members' greeting 1.0 jars are the same bytes: the test proves nothing")
	}
	if got := mavenVersions(t, curl(t, "-u", "builder:builder-secret", group+"maven-metadata.xml")); got != "1.0 1.1 latest=1.1 release=1.1" {
		t.Errorf("merged document with 1.0 in both members: %s", got)
	}

	// A group without a write member refuses a deploy and says why.
	resp := curl(t, "-u", admin(), "-X", "PUT", "--data-binary", "x", "-w", "\n%{http_code} %{content_type}",
		down.URL+"/repository/readonly-group/com/example/other/1.0/other-1.0.jar")
	if !strings.HasSuffix(resp, "405 text/plain; charset=utf-8") || !strings.Contains(resp, "writeMember") {
		t.Errorf("deploy to a group without writeMember: %s", resp)
	}
}
