package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"arca/internal/config"
)

const declarationsFile = `listen: :8081
repositories:
  - &files
    name: files
    format: raw
    type: hosted
    anonymousRead: true
    writePolicy: allow
  - name: maven-releases
    format: maven
    type: hosted
    maven: {versionPolicy: release, layoutPolicy: strict, depth: 3, ratio: 0.5, tags: [a, "1"], none: ~}
  - <<: *files
    name: merged
    online: false
users:
  - name: ci
    passwordHash: $2a$10$abcdefghijklmnopqrstuu5O7bY6nQH8k3Q4dWcV0kz1m4yYQ1xS2
    permissions:
      - repository: files
        actions: [read, write]
  - name: ops
    admin: true
    passwordFile: secrets/ops.password
`

func TestDeclarations(t *testing.T) {
	p := writeFile(t, declarationsFile)
	c := config.Default()
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	if len(c.Repositories) != 3 || len(c.Users) != 2 || c.Listen != ":8081" {
		t.Fatalf("%d repositories, %d users, listen %q", len(c.Repositories), len(c.Users), c.Listen)
	}

	wantJSON := []string{
		`{"name":"files","format":"raw","type":"hosted","anonymousRead":true,"writePolicy":"allow"}`,
		`{"name":"maven-releases","format":"maven","type":"hosted","maven":{"versionPolicy":"release",` +
			`"layoutPolicy":"strict","depth":3,"ratio":0.5,"tags":["a","1"],"none":null}}`,
		`{"name":"merged","online":false,"format":"raw","type":"hosted","anonymousRead":true,"writePolicy":"allow"}`,
	}
	wantLines := []int{3, 9, 13}
	for i, r := range c.Repositories {
		if string(r.JSON) != wantJSON[i] {
			t.Errorf("repository %d JSON = %s\nwant %s", i, r.JSON, wantJSON[i])
		}
		if !json.Valid(r.JSON) {
			t.Errorf("repository %d JSON is not valid", i)
		}
		if r.Pos.Line != wantLines[i] || r.Pos.File != p {
			t.Errorf("repository %d at %v, want %s:%d", i, r.Pos, p, wantLines[i])
		}
	}
	if r := c.Repositories[0]; r.Name != "files" || r.KeyLine("anonymousRead") != 7 || r.KeyLine("nope") != 3 {
		t.Errorf("files: name %q, anonymousRead on line %d, missing key on line %d",
			r.Name, r.KeyLine("anonymousRead"), r.KeyLine("nope"))
	}

	ci, ops := c.Users[0], c.Users[1]
	if ci.Name != "ci" || ci.Admin || ci.PasswordHash == "" || ci.Pos.Line != 17 {
		t.Errorf("ci = %+v", ci)
	}
	wantGrants := []config.Grant{{Repository: "files", Actions: []string{"read", "write"},
		Pos: config.Pos{File: p, Line: 20}}}
	if !reflect.DeepEqual(ci.Permissions, wantGrants) {
		t.Errorf("ci permissions = %+v, want %+v", ci.Permissions, wantGrants)
	}
	wantFile := filepath.Join(filepath.Dir(p), "secrets", "ops.password")
	if !ops.Admin || ops.PasswordFile != wantFile {
		t.Errorf("ops = %+v, want admin with passwordFile %s", ops, wantFile)
	}
}

func TestDeclarationErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // substrings of the error
	}{
		{
			name:    "unknown top-level key keeps its line",
			content: "listen: :1\n\nlogformat: json\n",
			want:    []string{"line 3:", "logformat"},
		},
		{
			name:    "plain password refused with the reason",
			content: "users:\n  - name: alice\n    password: hunter22\n",
			want:    []string{"line 3:", "plain password", "version control", "passwordHash", "passwordFile"},
		},
		{
			name:    "unknown user key",
			content: "users:\n  - name: alice\n    passwordHash: x\n    admn: true\n",
			want:    []string{"line 4:", `unknown key "admn"`},
		},
		{
			name: "unknown permission key",
			content: "users:\n  - name: alice\n    permissions:\n" +
				"      - repository: files\n        action: [read]\n",
			want: []string{"line 5:", `unknown key "action"`},
		},
		{
			name:    "wrong type in a user",
			content: "users:\n  - name: alice\n    admin: maybe\n",
			want:    []string{"line 3:", "maybe"},
		},
		{
			name:    "every problem is reported",
			content: "users:\n  - name: a\n    password: x\n  - name: b\n    passwrd: y\nlogLevl: x\n",
			want:    []string{"line 3:", "line 5:", "line 6:"},
		},
		{
			name:    "repository not a mapping",
			content: "repositories:\n  - files\n",
			want:    []string{"line 2:", "mapping"},
		},
		{
			name:    "repository with a duplicate key",
			content: "repositories:\n  - name: a\n    format: raw\n    name: b\n",
			want:    []string{"line 4:", `"name"`, "line 2"},
		},
		{
			name:    "repository with a value JSON cannot hold",
			content: "repositories:\n  - name: a\n    raw: {x: .inf}\n",
			want:    []string{"line 3:", ".inf"},
		},
		{
			name:    "repositories are not a list",
			content: "repositories:\n  name: a\n",
			want:    []string{"line 2:"},
		},
		{
			name:    "syntax error",
			content: "listen: :1\nrepositories:\n  - name: a\n   format: raw\n",
			want:    []string{"yaml: line 2: did not find expected '-' indicator"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			err := c.LoadFile(writeFile(t, tt.content))
			if err == nil {
				t.Fatal("LoadFile succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestDeclarationsNotFromEnvironment(t *testing.T) {
	c := config.Default()
	if err := c.LoadEnv([]string{"ARCA_REPOSITORIES=a,b", "ARCA_USERS=x"}); err != nil {
		t.Fatal(err)
	}
	if c.Repositories != nil || c.Users != nil {
		t.Fatalf("declarations came from the environment: %+v %+v", c.Repositories, c.Users)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNewline := write("pw", "s3cret-value\n")
	withCRLF := write("pw-crlf", "s3cret-value\r\n\n")
	empty := write("empty", "\n")

	tests := []struct {
		name    string
		environ []string
		want    string
		wantErr []string
	}{
		{"trailing newline trimmed", []string{"ARCA_ADMIN_PASSWORD_FILE=" + withNewline}, "s3cret-value", nil},
		{"CRLF trimmed", []string{"ARCA_ADMIN_PASSWORD_FILE=" + withCRLF}, "s3cret-value", nil},
		{"both set", []string{"ARCA_ADMIN_PASSWORD=x", "ARCA_ADMIN_PASSWORD_FILE=" + withNewline}, "",
			[]string{"ARCA_ADMIN_PASSWORD", "both"}},
		{"missing file", []string{"ARCA_ADMIN_PASSWORD_FILE=" + filepath.Join(dir, "nope")}, "",
			[]string{"ARCA_ADMIN_PASSWORD_FILE", "nope"}},
		{"empty file", []string{"ARCA_ADMIN_PASSWORD_FILE=" + empty}, "",
			[]string{"ARCA_ADMIN_PASSWORD_FILE", "empty"}},
		{"not a secret: ignored", []string{"ARCA_LISTEN_FILE=" + withNewline}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			err := c.LoadEnv(tt.environ)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("LoadEnv succeeded, want an error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AdminPassword != tt.want {
				t.Errorf("AdminPassword = %q, want %q", c.AdminPassword, tt.want)
			}
			if c.Listen != config.Default().Listen {
				t.Errorf("Listen = %q, want the default", c.Listen)
			}
		})
	}

	got, err := config.ReadSecretFile(withNewline)
	if err != nil || got != "s3cret-value" {
		t.Errorf("ReadSecretFile = %q, %v", got, err)
	}
}

func TestRedactedProxyCredentials(t *testing.T) {
	c := config.Default()
	p := writeFile(t, "repositories:\n  - name: up\n    format: raw\n    type: proxy\n    proxy:\n"+
		"      url: http://127.0.0.1:9/\n      username: u\n      password: hunter22\n      bearerToken: \"\"\n")
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter22") || !strings.Contains(string(out), "password: (set)") ||
		!strings.Contains(string(out), "username: u") {
		t.Errorf("redacted configuration:\n%s", out)
	}
	if !strings.Contains(string(c.Repositories[0].JSON), "hunter22") {
		t.Error("Redacted changed the original")
	}
}

func TestRedacted(t *testing.T) {
	c := config.Default()
	p := writeFile(t, "adminPassword: hunter22\nusers:\n  - name: ci\n    passwordHash: $2a$10$xyz\n"+
		"repositories:\n  - {name: files, format: raw, type: hosted}\n")
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if r.AdminPassword != "(set)" || r.Users[0].PasswordHash != "(set)" {
		t.Errorf("not redacted: %q %q", r.AdminPassword, r.Users[0].PasswordHash)
	}
	if c.AdminPassword != "hunter22" || c.Users[0].PasswordHash != "$2a$10$xyz" {
		t.Errorf("Redacted changed the original: %q %q", c.AdminPassword, c.Users[0].PasswordHash)
	}
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hunter22", "$2a$"} {
		if strings.Contains(string(out), s) {
			t.Errorf("printed config shows %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"name: files", "name: ci"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("printed config lacks %q:\n%s", s, out)
		}
	}
	// What is printed loads again.
	var back config.Config
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, out)
	}
	if len(back.Repositories) != 1 || string(back.Repositories[0].JSON) != string(c.Repositories[0].JSON) {
		t.Errorf("repositories did not survive printing:\n%s", out)
	}
	if empty := config.Default().Redacted(); empty.AdminPassword != "" || empty.Users != nil {
		t.Errorf("Redacted of the defaults = %+v", empty)
	}
}
