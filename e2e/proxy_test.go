package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstreamRequests counts the requests an instance logged for path (the
// whole URL path) with the given method and status (0: any status).
func upstreamRequests(in *instance, method, path string, status int) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(settledLogs(in)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg    string `json:"msg"`
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "request" {
			continue
		}
		if rec.Method == method && rec.Path == path && (status == 0 || rec.Status == status) {
			n++
		}
	}
	return n
}

// settledLogs returns the instance's log once it has stopped growing for
// a moment: a request is logged after its answer is sent, so the line of
// one a client has just finished may still be on its way.
func settledLogs(in *instance) string {
	logs := in.Logs()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(30 * time.Millisecond)
		again := in.Logs()
		if len(again) == len(logs) {
			break
		}
		logs = again
	}
	return logs
}

// settledRequests is upstreamRequests once the log shows at least want
// of them: an instance logs a request after answering it, so a client can
// hold the answer before the line is written. It gives up after a few
// seconds and returns what it counted.
func settledRequests(in *instance, method, path string, status, want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := upstreamRequests(in, method, path, status)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxyDef is the definition of a proxy repository of upstream's
// repository upName, reached as admin.
func proxyDef(name, format string, up *instance, upName, extra string) string {
	return fmt.Sprintf(`{"name":%q,"format":%q,"type":"proxy","proxy":{"url":"%s/repository/%s/","username":"admin","password":%q%s}}`,
		name, format, up.URL, upName, adminPassword, extra)
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRawProxy(t *testing.T) {
	up := start(t)
	up.createRepo(`{"name":"files","format":"raw","type":"hosted","writePolicy":"allow"}`)
	down := start(t)
	down.createRepo(proxyDef("files-proxy", "raw", up, "files", `,"metadataMaxAge":"1s","negativeCacheTTL":"1s","retries":0`))

	// Credentials are never shown.
	def := curl(t, "-f", "-u", admin(), down.URL+"/api/v1/repositories/files-proxy")
	if strings.Contains(def, adminPassword) || !strings.Contains(def, `"passwordSet":true`) || !strings.Contains(def, `"proxyStatus"`) {
		t.Errorf("proxy definition shows %s", def)
	}

	big := make([]byte, 8<<20)
	rand.Read(big) //nolint:errcheck // never fails
	bigPath := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	curl(t, "-f", "-u", admin(), "-T", bigPath, up.URL+"/repository/files/big.bin")
	curl(t, "-f", "-u", admin(), "--data-binary", "version 1", "-X", "PUT", up.URL+"/repository/files/notes.txt")

	// 50 concurrent cold requests cause one upstream download, and every
	// client gets the same, right bytes.
	want := sha256.Sum256(big)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			resp, err := http.Get(strings.Replace(down.URL, "http://", "http://admin:"+adminPassword+"@", 1) +
				"/repository/files-proxy/big.bin")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			if _, err := io.Copy(h, resp.Body); err != nil || resp.StatusCode != 200 {
				t.Errorf("status %d, %v", resp.StatusCode, err)
				return
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Error("a client got different bytes")
			}
		})
	}
	wg.Wait()
	if n := upstreamRequests(up, "GET", "/repository/files/big.bin", 200); n != 1 {
		t.Errorf("upstream served big.bin %d times, want 1", n)
	}

	if got := curl(t, "-f", "-u", admin(), down.URL+"/repository/files-proxy/notes.txt"); got != "version 1" {
		t.Fatalf("notes.txt through the proxy: %q", got)
	}
	// Writes to a proxy are refused.
	if got := curlStatus(t, "-u", admin(), "-X", "PUT", "--data", "x", down.URL+"/repository/files-proxy/new.txt"); got != "405" {
		t.Errorf("PUT to a proxy = %s, want 405", got)
	}

	// With the upstream stopped, what was fetched is still served (stale
	// metadata logged), and a never-fetched file names the upstream.
	up.Stop()
	time.Sleep(1100 * time.Millisecond) // past metadataMaxAge
	if got := curl(t, "-f", "-u", admin(), down.URL+"/repository/files-proxy/notes.txt"); got != "version 1" {
		t.Errorf("stale notes.txt: %q", got)
	}
	if !strings.Contains(down.Logs(), "serving stale") {
		t.Error("serving stale metadata was not logged")
	}
	body := curl(t, "-u", admin(), "-w", "\n%{http_code}", down.URL+"/repository/files-proxy/never.txt")
	if !strings.HasSuffix(body, "\n502") || !strings.Contains(body, up.URL) {
		t.Errorf("never-fetched file with the upstream down: %q, want 502 naming %s", body, up.URL)
	}

	// Back up, with a change made meanwhile: the metadata refreshes after
	// metadataMaxAge.
	up.Start()
	curl(t, "-f", "-u", admin(), "--data-binary", "version 2", "-X", "PUT", up.URL+"/repository/files/notes.txt")
	waitFor(t, "the proxy to refresh notes.txt", func() bool {
		return curl(t, "-u", admin(), down.URL+"/repository/files-proxy/notes.txt") == "version 2"
	})
	// A file never fetched, and absent upstream, is remembered as absent.
	if got := curlStatus(t, "-u", admin(), down.URL+"/repository/files-proxy/absent.txt"); got != "404" {
		t.Errorf("absent file = %s", got)
	}

	var st struct {
		ProxyStatus struct {
			Items, Misses, UpstreamErrors int64
			CacheBytes                    int64
			LastError                     string
		} `json:"proxyStatus"`
	}
	if err := json.Unmarshal([]byte(curl(t, "-f", "-u", admin(), down.URL+"/api/v1/repositories/files-proxy")), &st); err != nil {
		t.Fatal(err)
	}
	if s := st.ProxyStatus; s.Items != 2 || s.CacheBytes < int64(len(big)) || s.Misses < 2 || s.UpstreamErrors < 1 || s.LastError == "" {
		t.Errorf("proxyStatus %+v", s)
	}
	// Prometheus has totals by format, never by repository.
	metrics := curl(t, "-f", down.URL+"/metrics")
	for _, want := range []string{`arca_proxy_requests_total{format="raw",result="miss"}`,
		`arca_proxy_requests_total{format="raw",result="hit"}`, `arca_proxy_requests_total{format="raw",result="error"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, "files-proxy") {
		t.Error("metrics name a repository")
	}
}

func TestMavenProxy(t *testing.T) {
	mvn := requireMaven(t)
	up := start(t)
	up.createRepo(`{"name":"maven-releases","format":"maven","type":"hosted"}`)
	up.createRepo(`{"name":"maven-snapshots","format":"maven","type":"hosted","writePolicy":"allow","maven":{"versionPolicy":"snapshot"}}`)
	up.createUser("deployer", "deployer-secret", false, "maven-releases:read,write", "maven-snapshots:read,write")
	work := t.TempDir()
	deploy := writeMavenSettings(t, work, up.URL, "deployer", "deployer-secret", filepath.Join(work, "m2-deployer"))
	greeting := filepath.Join(work, "greeting")
	mavenProject(t, greeting, up.URL, "greeting", "1.0", "Greeting",
		`package com.example; public class Greeting { public static String text() { return "hello"; } }`)
	if out, ok := mavenRun(t, mvn, greeting, deploy, "deploy"); !ok {
		t.Fatalf("deploy:\n%s", out)
	}
	counter := filepath.Join(work, "counter")
	mavenProject(t, counter, up.URL, "counter", "2.0-SNAPSHOT", "Counter",
		`package com.example; public class Counter { public static boolean second() { return true; } }`)
	if out, ok := mavenRun(t, mvn, counter, deploy, "deploy"); !ok {
		t.Fatalf("deploy:\n%s", out)
	}

	// The second arca proxies both, under the same names, so that the
	// consumer's settings only change host.
	down := start(t)
	down.createRepo(proxyDef("maven-releases", "maven", up, "maven-releases", ""))
	down.createRepo(proxyDef("maven-snapshots", "maven", up, "maven-snapshots", ""))
	down.createUser("builder", "builder-secret", false, "maven-releases:read", "maven-snapshots:read")
	app := filepath.Join(work, "app")
	mavenProject(t, app, down.URL, "app", "1.0", "App",
		`package com.example; public class App { public static String run() { return Greeting.text() + Counter.second(); } }`,
		mavenDep{"greeting", "1.0"}, mavenDep{"counter", "2.0-SNAPSHOT"})
	for i := range 2 {
		settings := writeMavenSettings(t, work, down.URL, "builder", "builder-secret", filepath.Join(work, fmt.Sprintf("m2-builder-%d", i)))
		out, ok := mavenRun(t, mvn, app, settings, "package")
		if !ok {
			t.Fatalf("build %d through the proxy (strict checksums) failed:\n%s", i, out)
		}
		if !strings.Contains(out, down.URL+"/repository/maven-releases/com/example/greeting/1.0/greeting-1.0.jar") {
			t.Errorf("build %d did not download greeting from the proxy:\n%s", i, out)
		}
	}
	for _, p := range []string{
		"/repository/maven-releases/com/example/greeting/1.0/greeting-1.0.jar",
		"/repository/maven-releases/com/example/greeting/1.0/greeting-1.0.pom",
	} {
		if n := upstreamRequests(up, "GET", p, 200); n != 1 {
			t.Errorf("upstream served %s %d times for two builds, want 1", p, n)
		}
	}
	snapJars := 0
	for _, line := range strings.Split(up.Logs(), "\n") {
		if strings.Contains(line, `"method":"GET"`) && strings.Contains(line, "/counter/2.0-SNAPSHOT/counter-2.0-") &&
			strings.Contains(line, `.jar"`) && strings.Contains(line, `"status":200`) {
			snapJars++
		}
	}
	if snapJars != 1 {
		t.Errorf("upstream served the snapshot jar %d times, want 1", snapJars)
	}
}
