package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// arcaBin is the binary under test.
var arcaBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	arcaBin = os.Getenv("ARCA_BIN")
	if arcaBin == "" {
		dir, err := os.MkdirTemp("", "arca-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		arcaBin = filepath.Join(dir, "arca")
		build := exec.Command("go", "build", "-o", arcaBin, "../cmd/arca")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build arca:", err)
			return 1
		}
	}
	return m.Run()
}

// requireTool returns the path of a client program, skipping the test when
// it is missing, unless CI=true, where a missing client is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("client %s is missing: the test script installs it", name)
	}
	t.Skipf("client %s is missing; scripts/test.sh installs it", name)
	return ""
}

// adminPassword is what every test instance's admin user gets.
const adminPassword = "e2e-admin-secret"

// instance is one running arca.
type instance struct {
	t    *testing.T
	Data string
	URL  string
	Addr string
	Env  []string
	Args []string
	cmd  *exec.Cmd
	done chan struct{}

	mu   sync.Mutex
	logs bytes.Buffer
}

// Logs returns what the process has logged so far.
func (in *instance) Logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.logs.String()
}

// start runs arca on a new temporary data folder.
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	in := &instance{t: t, Data: filepath.Join(t.TempDir(), "data"), Args: args,
		Env: []string{"ARCA_ADMIN_PASSWORD=" + adminPassword}}
	in.Start()
	t.Cleanup(in.Stop)
	return in
}

// Start (re)starts the process on the instance's data folder, waits until it
// logs that it is ready and reads its address from that line.
func (in *instance) Start() {
	in.t.Helper()
	listen := "127.0.0.1:0"
	if in.Addr != "" {
		listen = in.Addr // a restart keeps the port
	}
	args := append([]string{"serve", "--data", in.Data, "--listen", listen, "--log-format", "json"}, in.Args...)
	in.cmd = exec.Command(arcaBin, args...)
	in.cmd.Env = append(os.Environ(), in.Env...)
	stderr, err := in.cmd.StderrPipe()
	if err != nil {
		in.t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.done = make(chan struct{})
	ready := make(chan string, 1)
	go in.readLogs(stderr, ready)
	select {
	case addr := <-ready:
		in.Addr, in.URL = addr, "http://"+addr
	case <-in.done:
		in.t.Fatalf("arca exited before it was ready:\n%s", in.Logs())
	case <-time.After(15 * time.Second):
		in.t.Fatalf("arca not ready after 15s:\n%s", in.Logs())
	}
}

// readLogs copies the process log and reports the address of the ready line.
func (in *instance) readLogs(r io.Reader, ready chan<- string) {
	defer close(in.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		in.mu.Lock()
		in.logs.Write(append(line, '\n'))
		in.mu.Unlock()
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "arca ready" {
			ready <- rec.Addr
		}
	}
	in.cmd.Wait() //nolint:errcheck // the exit status is read through done
}

// Stop ends the process gracefully.
func (in *instance) Stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-in.done:
	case <-time.After(30 * time.Second):
		in.cmd.Process.Kill() //nolint:errcheck // last resort
		<-in.done
	}
	if in.t.Failed() {
		in.t.Logf("arca log:\n%s", in.Logs())
	}
	in.cmd = nil
}

// Kill ends the process with SIGKILL, as a crash would.
func (in *instance) Kill() {
	in.cmd.Process.Kill() //nolint:errcheck // it may have exited
	<-in.done
	in.cmd = nil
}

// do sends a request with admin credentials unless anonymous.
func (in *instance) do(method, path string, body io.Reader, anonymous bool, header ...string) *http.Response {
	in.t.Helper()
	req, err := http.NewRequest(method, in.URL+path, body)
	if err != nil {
		in.t.Fatal(err)
	}
	if !anonymous {
		req.SetBasicAuth("admin", adminPassword)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// createRepo creates a repository from its JSON definition.
func (in *instance) createRepo(definition string) {
	in.t.Helper()
	resp := in.do("POST", "/api/v1/repositories", strings.NewReader(definition), false)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		in.t.Fatalf("create repository: %s: %s", resp.Status, b)
	}
}

// curl runs curl with the given arguments and returns its standard output.
// It fails the test when curl exits non-zero.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(requireTool(t, "curl"), append([]string{"-sS"}, args...)...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("curl %s: %s", strings.Join(args, " "), msg)
	}
	return string(out)
}

// curlStatus runs curl and returns the HTTP status code it saw.
func curlStatus(t *testing.T, args ...string) string {
	t.Helper()
	return curl(t, append([]string{"-o", "/dev/null", "-w", "%{http_code}"}, args...)...)
}

// admin is curl's credentials option for the admin user.
func admin() string { return "admin:" + adminPassword }

// cliResult is what one run of the arca command-line client gave.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// asAdminEnv are the client variables that authenticate as the admin user.
var asAdminEnv = []string{"ARCA_USER=admin", "ARCA_PASSWORD=" + adminPassword}

// cli runs `arca args...` as a management client of the instance: ARCA_URL
// points at it, the test process's own ARCA_* variables are dropped and env
// is added (credentials, for instance).
func (in *instance) cli(env []string, args ...string) cliResult {
	in.t.Helper()
	return in.cliInput("", env, args...)
}

// cliInput is cli with stdin as the client's standard input.
func (in *instance) cliInput(stdin string, env []string, args ...string) cliResult {
	in.t.Helper()
	cmd := exec.Command(arcaBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ARCA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "ARCA_URL="+in.URL), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		in.t.Fatalf("run arca %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// cliOK runs the client and fails the test unless it exits 0.
func (in *instance) cliOK(env []string, args ...string) string {
	in.t.Helper()
	res := in.cli(env, args...)
	if res.Code != 0 {
		in.t.Fatalf("arca %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code,
			res.Stdout, res.Stderr)
	}
	return res.Stdout
}
