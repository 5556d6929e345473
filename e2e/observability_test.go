package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLogAndMetrics checks the pinned access-log fields, the echoed
// request id and the arca_* Prometheus series.
func TestAccessLogAndMetrics(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("observed"), 0o644)
	headers := curl(t, "-D", "-", "-o", "/dev/null", "-u", admin(), "-H", "X-Request-Id: trace-123",
		"-T", file, in.URL+"/repository/files/dir/f.txt")
	if !strings.Contains(headers, "X-Request-Id: trace-123") {
		t.Fatalf("request id not echoed:\n%s", headers)
	}

	var line map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for line == nil && time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(in.Logs()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["request_id"] == "trace-123" {
				line = rec
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line == nil {
		t.Fatalf("no access line for the request:\n%s", in.Logs())
	}
	want := map[string]any{"msg": "request", "level": "INFO", "method": "PUT",
		"path": "/repository/files/dir/f.txt", "repo": "files", "format": "raw", "user": "admin",
		"status": float64(201), "route": "PUT /repository/{name}/{path...}"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access line %s = %v, want %v", k, line[k], v)
		}
	}
	for _, k := range []string{"bytes", "duration_ms"} {
		if _, ok := line[k].(float64); !ok {
			t.Errorf("access line lacks numeric %s: %v", k, line)
		}
	}
	if strings.Contains(in.Logs(), adminPassword) {
		t.Fatal("the log contains the admin password")
	}

	metrics := curl(t, "-f", in.URL+"/metrics")
	for _, series := range []string{
		`arca_http_requests_total{format="raw",method="PUT",status="2xx"} 1`,
		`arca_http_request_duration_seconds_bucket{format="raw",method="PUT"`,
		`arca_http_request_bytes_total{format="raw"} 8`,
		"arca_http_response_bytes_total",
		"arca_blob_store_blobs 1",
		"arca_blob_store_bytes 8",
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %q", series)
		}
	}
	if strings.Contains(metrics, `"files"`) {
		t.Error("a metric label carries a repository name")
	}
}

// TestGracefulShutdown sends SIGTERM while an upload is in flight: the
// upload completes, then the process exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	body := &slowBody{left: 64 << 20, started: make(chan struct{})}
	started := body.started
	req, _ := http.NewRequest("PUT", in.URL+"/repository/files/slow.bin", body)
	req.ContentLength = body.left
	req.SetBasicAuth("admin", adminPassword)
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	time.Sleep(100 * time.Millisecond)
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case status := <-done:
		if status != http.StatusCreated {
			t.Fatalf("in-flight upload ended with %d, want 201", status)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("in-flight upload did not finish")
	}
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
	if code := in.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, in.Logs())
	}
	in.cmd = nil
	in.Start()
	if got := curl(t, "-f", "-u", admin(), "-o", "/dev/null", "-w", "%{size_download}",
		in.URL+"/repository/files/slow.bin"); got != "67108864" {
		t.Fatalf("after restart the upload has %s bytes", got)
	}
}
