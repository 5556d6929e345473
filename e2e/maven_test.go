package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// debianMavenRepo is the Maven repository that Debian's Maven plugin
// packages (libmaven-*-plugin-java, libsurefire-java) fill, which
// scripts/test.sh installs: the builds below take their plugins from it and
// need nothing from outside the machine.
const debianMavenRepo = "/usr/share/maven-repo"

// requireMaven returns mvn's path when it and Debian's plugins are
// installed; like requireTool, it skips the test otherwise, and fails it
// under CI.
func requireMaven(t *testing.T) string {
	t.Helper()
	mvn := requireTool(t, "mvn")
	for _, p := range []string{"maven-deploy-plugin/3.0.0", "maven-jar-plugin/3.3.0", "maven-compiler-plugin/3.10.1",
		"maven-resources-plugin/3.3.0", "maven-install-plugin/3.1.0", "maven-surefire-plugin/2.22.3"} {
		if _, err := os.Stat(filepath.Join(debianMavenRepo, "org/apache/maven/plugins", p)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("Debian's Maven plugin %s is missing: the test script installs it", p)
			}
			t.Skipf("Debian's Maven plugin %s is missing; scripts/test.sh installs it", p)
		}
	}
	return mvn
}

// mavenPOM is a jar project whose plugins are the versions Debian packages.
var mavenPOM = template.Must(template.New("pom").Parse(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>{{.Artifact}}</artifactId>
  <version>{{.Version}}</version>
  <packaging>jar</packaging>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>{{range .Deps}}
    <dependency><groupId>com.example</groupId><artifactId>{{.Artifact}}</artifactId><version>{{.Version}}</version></dependency>{{end}}
  </dependencies>
  <distributionManagement>
    <repository><id>arca-releases</id><url>{{.URL}}/repository/maven-releases/</url></repository>
    <snapshotRepository><id>arca-snapshots</id><url>{{.URL}}/repository/maven-snapshots/</url></snapshotRepository>
  </distributionManagement>
  <build><pluginManagement><plugins>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId><version>2.22.3</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId><version>3.3.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-install-plugin</artifactId><version>3.1.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId><version>3.0.0</version></plugin>
  </plugins></pluginManagement></build>
</project>
`))

// mavenSettings points mvn at arca with credentials, strict checksums on
// arca's repositories and snapshots looked up on every build, and at
// Debian's repository (which has no checksum files) for the plugins.
var mavenSettings = template.Must(template.New("settings").Parse(`<settings>
  <localRepository>{{.Local}}</localRepository>
  <servers>
    <server><id>arca-releases</id><username>{{.User}}</username><password>{{.Password}}</password></server>
    <server><id>arca-snapshots</id><username>{{.User}}</username><password>{{.Password}}</password></server>
  </servers>
  <mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file://` + debianMavenRepo + `</url></mirror></mirrors>
  <profiles><profile><id>e2e</id>
    <repositories>
      <repository><id>arca-releases</id><url>{{.URL}}/repository/maven-releases/</url>
        <releases><checksumPolicy>fail</checksumPolicy></releases><snapshots><enabled>false</enabled></snapshots></repository>
      <repository><id>arca-snapshots</id><url>{{.URL}}/repository/maven-snapshots/</url>
        <releases><enabled>false</enabled></releases>
        <snapshots><checksumPolicy>fail</checksumPolicy><updatePolicy>always</updatePolicy></snapshots></repository>
      <repository><id>central</id><url>file://` + debianMavenRepo + `</url>
        <releases><checksumPolicy>ignore</checksumPolicy></releases><snapshots><enabled>false</enabled></snapshots></repository>
    </repositories>
    <pluginRepositories>
      <pluginRepository><id>central</id><url>file://` + debianMavenRepo + `</url>
        <releases><checksumPolicy>ignore</checksumPolicy></releases><snapshots><enabled>false</enabled></snapshots></pluginRepository>
    </pluginRepositories>
  </profile></profiles>
  <activeProfiles><activeProfile>e2e</activeProfile></activeProfiles>
</settings>
`))

type mavenDep struct{ Artifact, Version string }

// mavenProject writes a project with one class in dir.
func mavenProject(t *testing.T, dir, url, artifact, version, class, source string, deps ...mavenDep) {
	t.Helper()
	src := filepath.Join(dir, "src/main/java/com/example")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, class+".java"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = mavenPOM.Execute(f, map[string]any{"Artifact": artifact, "Version": version, "URL": url, "Deps": deps})
	if err != nil {
		t.Fatal(err)
	}
}

// mavenRun runs mvn in batch mode with the settings file and returns its
// output and whether it succeeded.
func mavenRun(t *testing.T, mvn, dir, settings string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(mvn, append([]string{"-B", "-s", settings}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MAVEN_OPTS=-Xshare:auto")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// writeMavenSettings writes a settings file for user and returns its path;
// local is the fresh local repository the build uses.
func writeMavenSettings(t *testing.T, dir, url, user, password, local string) string {
	t.Helper()
	p := filepath.Join(dir, user+"-settings.xml")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = mavenSettings.Execute(f, map[string]string{"Local": local, "URL": url, "User": user, "Password": password})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMavenDeployAndResolve(t *testing.T) {
	mvn := requireMaven(t)
	in := start(t)
	in.createRepo(`{"name":"maven-releases","format":"maven","type":"hosted"}`)
	in.createRepo(`{"name":"maven-snapshots","format":"maven","type":"hosted","writePolicy":"allow",
		"maven":{"versionPolicy":"snapshot","snapshotRetention":10}}`)
	in.createUser("deployer", "deployer-secret", false, "maven-releases:read,write", "maven-snapshots:read,write")
	in.createUser("builder", "builder-secret", false, "maven-releases:read", "maven-snapshots:read")
	work := t.TempDir()
	deploySettings := writeMavenSettings(t, work, in.URL, "deployer", "deployer-secret", filepath.Join(work, "m2-deployer"))

	// A release and a snapshot, the snapshot deployed twice.
	greeting := filepath.Join(work, "greeting")
	mavenProject(t, greeting, in.URL, "greeting", "1.0", "Greeting",
		`package com.example; public class Greeting { public static String text() { return "hello"; } }`)
	if out, ok := mavenRun(t, mvn, greeting, deploySettings, "deploy"); !ok {
		t.Fatalf("deploy of the release failed:\n%s", out)
	}
	counter := filepath.Join(work, "counter")
	mavenProject(t, counter, in.URL, "counter", "2.0-SNAPSHOT", "Counter",
		`package com.example; public class Counter { public static int build() { return 1; } }`)
	if out, ok := mavenRun(t, mvn, counter, deploySettings, "deploy"); !ok {
		t.Fatalf("first snapshot deploy failed:\n%s", out)
	}
	// The second build has a method the first lacks: the consumer compiles
	// only against the newest snapshot.
	mavenProject(t, counter, in.URL, "counter", "2.0-SNAPSHOT", "Counter",
		`package com.example; public class Counter { public static int build() { return 2; } public static boolean second() { return true; } }`)
	// Debian packages no maven-clean-plugin: clean by hand.
	if err := os.RemoveAll(filepath.Join(counter, "target")); err != nil {
		t.Fatal(err)
	}
	if out, ok := mavenRun(t, mvn, counter, deploySettings, "deploy"); !ok {
		t.Fatalf("second snapshot deploy failed:\n%s", out)
	}

	// Both levels of maven-metadata.xml, as arca generated them.
	var snap struct {
		Versioning struct {
			Snapshot struct {
				Timestamp   string `xml:"timestamp"`
				BuildNumber int    `xml:"buildNumber"`
			} `xml:"snapshot"`
			SnapshotVersions []struct {
				Extension string `xml:"extension"`
				Value     string `xml:"value"`
			} `xml:"snapshotVersions>snapshotVersion"`
		} `xml:"versioning"`
	}
	snapDoc := curl(t, "-f", "-u", "builder:builder-secret", in.URL+"/repository/maven-snapshots/com/example/counter/2.0-SNAPSHOT/maven-metadata.xml")
	if err := xml.Unmarshal([]byte(snapDoc), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Versioning.Snapshot.BuildNumber != 2 || len(snap.Versioning.SnapshotVersions) != 2 {
		t.Fatalf("snapshot metadata after two deploys:\n%s", snapDoc)
	}
	newest := "2.0-" + snap.Versioning.Snapshot.Timestamp + "-2"
	for _, sv := range snap.Versioning.SnapshotVersions {
		if sv.Value != newest {
			t.Errorf("snapshotVersion %s is %s, want %s", sv.Extension, sv.Value, newest)
		}
	}
	listing := curl(t, "-f", "-u", "builder:builder-secret", "-H", "Accept: application/json",
		in.URL+"/repository/maven-snapshots/com/example/counter/2.0-SNAPSHOT/")
	if n := strings.Count(listing, `"name":"counter-2.0-20`); n != 4 {
		t.Errorf("expected two timestamped builds of jar and pom in the listing:\n%s", listing)
	}
	relDoc := curl(t, "-f", "-u", "builder:builder-secret", in.URL+"/repository/maven-releases/com/example/greeting/maven-metadata.xml")
	for _, want := range []string{"<latest>1.0</latest>", "<release>1.0</release>", "<version>1.0</version>", "<lastUpdated>"} {
		if !strings.Contains(relDoc, want) {
			t.Errorf("release metadata lacks %s:\n%s", want, relDoc)
		}
	}

	// A second project resolves both, with strict checksums, into a fresh
	// local repository.
	buildSettings := writeMavenSettings(t, work, in.URL, "builder", "builder-secret", filepath.Join(work, "m2-builder"))
	app := filepath.Join(work, "app")
	mavenProject(t, app, in.URL, "app", "1.0", "App",
		`package com.example; public class App { public static String run() { return Greeting.text() + Counter.second(); } }`,
		mavenDep{"greeting", "1.0"}, mavenDep{"counter", "2.0-SNAPSHOT"})
	out, ok := mavenRun(t, mvn, app, buildSettings, "package")
	if !ok {
		t.Fatalf("consumer build failed:\n%s", out)
	}
	for _, want := range []string{
		"maven-releases/com/example/greeting/1.0/greeting-1.0.jar",
		"maven-snapshots/com/example/counter/2.0-SNAPSHOT/counter-" + newest + ".jar",
	} {
		if !strings.Contains(out, "Downloaded from arca-") || !strings.Contains(out, want) {
			t.Errorf("the consumer did not download %s from arca:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Checksum validation failed") && strings.Contains(out, in.URL) {
		t.Errorf("checksum warnings for arca's files:\n%s", out)
	}
	// The jar in the local repository is the newest build, byte for byte.
	local, err := os.ReadFile(filepath.Join(work, "m2-builder/com/example/counter/2.0-SNAPSHOT/counter-2.0-SNAPSHOT.jar"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(local)
	served := curl(t, "-f", "-u", "builder:builder-secret",
		in.URL+"/repository/maven-snapshots/com/example/counter/2.0-SNAPSHOT/counter-"+newest+".jar.sha1")
	if hex.EncodeToString(sum[:]) != served {
		t.Errorf("resolved snapshot jar has sha1 %x, arca serves build 2 as %s", sum, served)
	}

	// A second deploy of the release is refused with 409, and says why.
	out, ok = mavenRun(t, mvn, greeting, deploySettings, "deploy")
	if ok || !strings.Contains(out, "409") {
		t.Errorf("second release deploy: ok=%v, want a 409:\n%s", ok, out)
	}
	body := curl(t, "-u", "deployer:deployer-secret", "-T", filepath.Join(greeting, "pom.xml"),
		in.URL+"/repository/maven-releases/com/example/greeting/1.0/greeting-1.0.pom")
	if !strings.Contains(body, "409") || !strings.Contains(body, "already deployed") {
		t.Errorf("409 body does not say why: %q", body)
	}
	// A snapshot into the release repository is refused with 400.
	out, ok = mavenRun(t, mvn, counter, deploySettings, "deploy",
		"-DaltDeploymentRepository=arca-releases::"+in.URL+"/repository/maven-releases/")
	if ok || !strings.Contains(out, "400") {
		t.Errorf("snapshot into releases: ok=%v, want a 400:\n%s", ok, out)
	}
	if got := curlStatus(t, "-u", "builder:builder-secret", in.URL+"/repository/maven-releases/com/example/counter/maven-metadata.xml"); got != "404" {
		t.Errorf("the refused snapshot left metadata behind: %s", got)
	}
}
