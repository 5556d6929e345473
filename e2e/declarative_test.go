package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hashPassword runs `arca config hash-password`.
func hashPassword(t *testing.T, password string) string {
	t.Helper()
	cmd := exec.Command(arcaBin, "config", "hash-password")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("arca config hash-password: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// writeTemp writes a file into dir and returns its path.
func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// declaredLines counts the start log's lines about a declared item.
func declaredLines(logs, msg string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
			n++
		}
	}
	return n
}

// TestDeclarativeConfig starts arca on a file that declares repositories and
// users, then uses them through curl, restarts it unchanged (nothing to do)
// and changed (one update).
func TestDeclarativeConfig(t *testing.T) {
	dir := t.TempDir()
	writeTemp(t, dir, "deploy.password", "deploy-password-1\n")
	readerHash := hashPassword(t, "reader-password-1")
	declarations := fmt.Sprintf(`# repositories and users kept in git
repositories:
  - name: releases
    format: raw
    type: hosted
    writePolicy: allow-once
  - name: public
    format: raw
    type: hosted
    anonymousRead: true
    writePolicy: allow
users:
  - name: deploy
    passwordFile: deploy.password   # relative to this file
    permissions:
      - repository: releases
        actions: [read, write]
  - name: reader
    passwordHash: '%s'
    permissions:
      - {repository: releases, actions: [read]}
`, readerHash)
	file := writeTemp(t, dir, "arca.yaml", declarations)
	in := start(t, "--config", file)

	for _, msg := range []string{"declared repository created", "declared user created"} {
		if got := declaredLines(in.Logs(), msg); got != 2 {
			t.Errorf("%d log lines %q, want 2:\n%s", got, msg, in.Logs())
		}
	}
	var def struct {
		Format        string `json:"format"`
		AnonymousRead bool   `json:"anonymousRead"`
		WritePolicy   string `json:"writePolicy"`
	}
	if err := json.Unmarshal([]byte(curl(t, "-f", "-u", admin(), in.URL+"/api/v1/repositories/public")), &def); err != nil {
		t.Fatal(err)
	}
	if def.Format != "raw" || !def.AnonymousRead || def.WritePolicy != "allow" {
		t.Errorf("public = %+v", def)
	}
	var user struct {
		Admin       bool `json:"admin"`
		Permissions []struct {
			Repository string   `json:"repository"`
			Actions    []string `json:"actions"`
		} `json:"permissions"`
	}
	if err := json.Unmarshal([]byte(curl(t, "-f", "-u", admin(), in.URL+"/api/v1/users/deploy")), &user); err != nil {
		t.Fatal(err)
	}
	if user.Admin || len(user.Permissions) != 1 || user.Permissions[0].Repository != "releases" {
		t.Errorf("deploy = %+v", user)
	}

	// The declared passwords work, with the declared permissions.
	artifact := writeTemp(t, dir, "app-1.0.tar.gz", "the artifact")
	url := in.URL + "/repository/releases/app/app-1.0.tar.gz"
	if got := curlStatus(t, "-u", "deploy:deploy-password-1", "-T", artifact, url); got != "201" {
		t.Fatalf("upload as deploy: %s, want 201", got)
	}
	if got := curl(t, "-f", "-u", "reader:reader-password-1", url); got != "the artifact" {
		t.Fatalf("download as reader: %q", got)
	}
	if got := curlStatus(t, "-u", "reader:reader-password-1", "-T", artifact, url+".2"); got != "403" {
		t.Errorf("upload as reader: %s, want 403", got)
	}
	if got := curlStatus(t, "-u", "reader:wrong-password", url); got != "401" {
		t.Errorf("wrong password: %s, want 401", got)
	}
	if got := curlStatus(t, in.URL+"/repository/public/"); got != "200" {
		t.Errorf("anonymous listing of public: %s, want 200", got)
	}
	// Something made through the API, not declared.
	in.createRepo(`{"name":"scratch","format":"raw","type":"hosted"}`)

	// Unchanged: a restart changes nothing.
	in.Stop()
	before := in.Logs()
	in.Start()
	restart := strings.TrimPrefix(in.Logs(), before)
	for _, msg := range []string{"declared repository created", "declared repository updated",
		"declared user created", "declared user updated"} {
		if got := declaredLines(restart, msg); got != 0 {
			t.Errorf("unchanged restart logged %d lines %q:\n%s", got, msg, restart)
		}
	}

	// Changed: public is no longer public, deploy has a new password.
	in.Stop()
	writeTemp(t, dir, "arca.yaml", strings.Replace(declarations, "anonymousRead: true", "anonymousRead: false", 1))
	writeTemp(t, dir, "deploy.password", "deploy-password-2\n")
	before = in.Logs()
	in.Start()
	restart = strings.TrimPrefix(in.Logs(), before)
	if declaredLines(restart, "declared repository updated") != 1 || declaredLines(restart, "declared user updated") != 1 ||
		declaredLines(restart, "declared repository created")+declaredLines(restart, "declared user created") != 0 {
		t.Errorf("changed restart: want one repository and one user updated:\n%s", restart)
	}
	if got := curlStatus(t, in.URL+"/repository/public/"); got != "401" {
		t.Errorf("anonymous listing of public after the change: %s, want 401", got)
	}
	if got := curlStatus(t, "-u", "deploy:deploy-password-1", url); got != "401" {
		t.Errorf("deploy's old password: %s, want 401", got)
	}
	if got := curlStatus(t, "-u", "deploy:deploy-password-2", url); got != "200" {
		t.Errorf("deploy's new password: %s, want 200", got)
	}
	// What was not declared is still there.
	if got := curlStatus(t, "-u", admin(), in.URL+"/api/v1/repositories/scratch"); got != "200" {
		t.Errorf("undeclared repository scratch: %s, want 200", got)
	}
}

// TestDeclarativeConfigRefused checks that a start with a declaration that
// cannot be applied fails, naming the item.
func TestDeclarativeConfigRefused(t *testing.T) {
	dir := t.TempDir()
	file := writeTemp(t, dir, "arca.yaml", fmt.Sprintf(`users:
  - name: ghost
    passwordHash: '%s'
    permissions: [{repository: nowhere, actions: [read]}]
`, hashPassword(t, "ghost-password")))
	cmd := exec.Command(arcaBin, "serve", "--config", file, "--data", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "ARCA_ADMIN_PASSWORD="+adminPassword)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("arca started with a permission on an unknown repository:\n%s", out)
	}
	for _, s := range []string{file + ":4", `user "ghost"`, "nowhere"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("the error does not name %q:\n%s", s, out)
		}
	}
}

// TestDeclarativeConfigCheck runs `arca config check FILE` on good and bad
// files.
func TestDeclarativeConfigCheck(t *testing.T) {
	dir := t.TempDir()
	writeTemp(t, dir, "ci.password", "ci-password-1\n")
	check := func(args ...string) (string, error) {
		cmd := exec.Command(arcaBin, append([]string{"config", "check"}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ARCA_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	good := writeTemp(t, dir, "good.yaml", fmt.Sprintf(`listen: 127.0.0.1:9999
adminPassword: do-not-print-me
repositories:
  - {name: files, format: raw, type: hosted, anonymousRead: true}
users:
  - name: ci
    passwordFile: ci.password
    permissions: [{repository: files, actions: [read, write]}]
  - name: auditor
    passwordHash: '%s'
`, hashPassword(t, "auditor-password")))
	out, err := check(good)
	if err != nil {
		t.Fatalf("config check of a good file failed (%v):\n%s", err, out)
	}
	for _, s := range []string{"configuration OK", "listen: 127.0.0.1:9999", "name: files", "name: ci"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"do-not-print-me", "$2a$", "ci-password-1"} {
		if strings.Contains(out, s) {
			t.Errorf("output shows the secret %q:\n%s", s, out)
		}
	}
	// --config still works.
	if out, err := check("--config", good); err != nil || !strings.Contains(out, "configuration OK") {
		t.Errorf("config check --config: %v\n%s", err, out)
	}

	bad := writeTemp(t, dir, "bad.yaml", `listen: 127.0.0.1:9999
repositories:
  - name: files
    format: raw
    type: hosted
    anonymousREAD: true
users:
  - name: alice
    password: hunter22
  - name: ci
    passwordFile: missing.password
logLevl: debug
`)
	out, err = check(bad)
	if err == nil {
		t.Fatalf("config check accepted a bad file:\n%s", out)
	}
	if strings.Contains(out, "configuration OK") {
		t.Errorf("a bad file is reported OK:\n%s", out)
	}
	for _, s := range []string{
		// An unknown key, with its line.
		bad + ":12: field logLevl not found",
		// A typo inside a repository.
		bad + ":6:", `"anonymousREAD"`,
		// A plain password, refused with the reason.
		bad + ":9:", "plain password", "version control",
		// An unreadable password file.
		"missing.password",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestDeclarativeAdminPasswordFile checks ARCA_ADMIN_PASSWORD_FILE.
func TestDeclarativeAdminPasswordFile(t *testing.T) {
	dir := t.TempDir()
	secret := writeTemp(t, dir, "admin.secret", adminPassword+"\n")
	in := &instance{t: t, Data: filepath.Join(dir, "data"), Env: []string{"ARCA_ADMIN_PASSWORD_FILE=" + secret}}
	in.Start()
	t.Cleanup(in.Stop)
	if got := curlStatus(t, "-u", admin(), in.URL+"/api/v1/repositories"); got != "200" {
		t.Fatalf("admin password from ARCA_ADMIN_PASSWORD_FILE: %s, want 200", got)
	}
	if _, err := os.Stat(filepath.Join(in.Data, "admin.password")); err == nil {
		t.Error("a random admin password was written although one was given")
	}
}
