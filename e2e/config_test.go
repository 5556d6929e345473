package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigSources checks the order defaults < file < environment < flags
// through the base URL the server writes into a redirect, and that the
// command-line client's own variables do not disturb the server.
func TestConfigSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "arca.yaml")
	os.WriteFile(file, []byte("baseURL: http://from-file.test\nlogLevel: debug\n"), 0o644)

	location := func(in *instance) string {
		in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
		return curl(t, "-o", "/dev/null", "-w", "%{redirect_url}", "-u", admin(), in.URL+"/repository/files")
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file", nil, []string{"--config", file}, "http://from-file.test/repository/files/"},
		{"env over file", []string{"ARCA_BASE_URL=http://from-env.test"}, []string{"--config", file},
			"http://from-env.test/repository/files/"},
		{"config file from env", []string{"ARCA_CONFIG=" + file}, nil, "http://from-file.test/repository/files/"},
		{"flag over env", []string{"ARCA_BASE_URL=http://from-env.test"},
			[]string{"--config", file, "--base-url", "http://from-flag.test"},
			"http://from-flag.test/repository/files/"},
		{"client variables ignored", []string{"ARCA_URL=http://elsewhere.test", "ARCA_TOKEN=abc"}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := &instance{t: t, Data: filepath.Join(t.TempDir(), "data"), Args: c.args,
				Env: append([]string{"ARCA_ADMIN_PASSWORD=" + adminPassword}, c.env...)}
			in.Start()
			t.Cleanup(in.Stop)
			want := c.want
			if want == "" {
				want = in.URL + "/repository/files/"
			}
			if got := location(in); got != want {
				t.Fatalf("redirect to %q, want %q", got, want)
			}
		})
	}
}

// TestConfigRefusesUnknownKey checks that a typo in the file stops the
// server with a message naming the key.
func TestConfigRefusesUnknownKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "arca.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:0\nbaseUrl: http://typo.test\n"), 0o644)
	out, err := exec.Command(arcaBin, "serve", "--config", file, "--data", t.TempDir()).CombinedOutput()
	if err == nil {
		t.Fatalf("arca started with an unknown key:\n%s", out)
	}
	if !strings.Contains(string(out), "baseUrl") {
		t.Fatalf("the error does not name the unknown key:\n%s", out)
	}
	out, err = exec.Command(arcaBin, "config", "check", "--config", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "baseUrl") {
		t.Fatalf("config check accepted an unknown key (err %v):\n%s", err, out)
	}
}

// TestAdminPasswordFile checks the generated admin password: written with
// mode 0600, named in the start log, and working.
func TestAdminPasswordFile(t *testing.T) {
	in := &instance{t: t, Data: filepath.Join(t.TempDir(), "data")}
	in.Start()
	t.Cleanup(in.Stop)
	p := filepath.Join(in.Data, "admin.password")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.password has mode %o, want 600", fi.Mode().Perm())
	}
	if !strings.Contains(in.Logs(), p) {
		t.Fatalf("the start log does not say where the password is:\n%s", in.Logs())
	}
	pw, _ := os.ReadFile(p)
	cred := "admin:" + strings.TrimSpace(string(pw))
	if got := curlStatus(t, "-u", cred, "-X", "POST", in.URL+"/api/v1/repositories",
		"-d", `{"name":"files","format":"raw","type":"hosted"}`); got != "201" {
		t.Fatalf("generated password: status %s, want 201", got)
	}
}
