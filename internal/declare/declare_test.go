package declare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/config"
	"arca/internal/declare"
	"arca/internal/meta"
	"arca/internal/raw"
	"arca/internal/repo"
)

// env is a real SQLite metadata store and filesystem blob store with the
// services over them, in a temporary folder.
type env struct {
	dir     string
	db      *meta.DB
	repos   *repo.Service
	auth    *auth.Service
	formats declare.Formats

	mu  sync.Mutex
	log bytes.Buffer
}

// testSection is the settings section of the "test" format.
type testSection struct {
	Level int `json:"level"`
}

// testFormats are raw and "test", whose section holds a level that must
// not be negative.
func testFormats() declare.Formats {
	validateTest := func(r *repo.Repository, section json.RawMessage) error {
		if section == nil {
			return nil
		}
		var s testSection
		if err := json.Unmarshal(section, &s); err != nil {
			return fmt.Errorf("%w: %w", repo.ErrInvalid, err)
		}
		if s.Level < 0 {
			return fmt.Errorf("%w: level must not be negative", repo.ErrInvalid)
		}
		return nil
	}
	// raw's validator needs no repository service.
	return declare.Formats{"raw": raw.New(nil, nil).ValidateSettings, "test": validateTest}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := filesystem.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, db: db, repos: repo.NewService(db, blob.NewStore(d)), auth: auth.NewService(db),
		formats: testFormats()}
	for id, v := range e.formats {
		e.repos.RegisterFormat(id, v)
	}
	// The admin, as Bootstrap would make it but with a cheap hash.
	if err := e.auth.CreateUser(ctx, &auth.User{Name: "admin", Admin: true,
		PasswordHash: bcryptHash(t, "admin-password")}); err != nil {
		t.Fatal(err)
	}
	return e
}

// Write implements io.Writer for the logger.
func (e *env) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.log.Write(p)
}

// takeLog returns the log lines written since the last call.
func (e *env) takeLog() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := strings.TrimSpace(e.log.String())
	e.log.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// file writes a file into the environment's folder and returns its path.
func (e *env) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// parse loads a configuration file and parses its declarations.
func (e *env) parse(t *testing.T, yml string) (*declare.Declarations, error) {
	t.Helper()
	c := config.Default()
	if err := c.LoadFile(e.file(t, "arca.yaml", yml)); err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	return declare.Parse(c.Repositories, c.Users, e.formats)
}

// apply loads, parses and applies a configuration file.
func (e *env) apply(t *testing.T, yml string) error {
	t.Helper()
	d, err := e.parse(t, yml)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e, nil))
	return d.Apply(context.Background(), declare.Stores{DB: e.db, Repos: e.repos, Auth: e.auth,
		Audit: audit.New(e.db, log)}, log)
}

func (e *env) mustApply(t *testing.T, yml string) []string {
	t.Helper()
	if err := e.apply(t, yml); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return e.takeLog()
}

func (e *env) repo(t *testing.T, name string) *repo.Repository {
	t.Helper()
	r, err := e.repos.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get %s: %v", name, err)
	}
	return r
}

func (e *env) user(t *testing.T, name string) auth.User {
	t.Helper()
	u, err := e.auth.User(context.Background(), name)
	if err != nil {
		t.Fatalf("User %s: %v", name, err)
	}
	return u
}

func (e *env) canLogIn(name, password string) bool {
	_, err := e.auth.CheckPassword(context.Background(), name, password)
	return err == nil
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// wantLog checks that the log has exactly the lines listed, in order, each
// given by substrings.
func wantLog(t *testing.T, got []string, want ...[]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("log has %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, subs := range want {
		for _, s := range subs {
			if !strings.Contains(got[i], s) {
				t.Errorf("log line %d %q does not contain %q", i, got[i], s)
			}
		}
	}
}

func TestApply(t *testing.T) {
	e := newEnv(t)
	ciHash := bcryptHash(t, "ci-password-1")
	e.file(t, "ops.password", "ops-password-1\n")
	first := fmt.Sprintf(`
repositories:
  - name: files
    format: raw
    type: hosted
    anonymousRead: true
  - name: levels
    format: test
    type: hosted
    writePolicy: allow
    test: {level: 3}
users:
  - name: ci
    passwordHash: %s
    permissions:
      - repository: files
        actions: [read, write]
      - repository: levels
        actions: [read]
  - name: ops
    admin: true
    passwordFile: ops.password
`, ciHash)

	// Create.
	wantLog(t, e.mustApply(t, first),
		[]string{"declared repository created", "repository=files", "arca.yaml:3"},
		[]string{"declared repository created", "repository=levels"},
		[]string{"declared user created", "user=ci", "arca.yaml:13"},
		[]string{"declared user created", "user=ops"})
	files := e.repo(t, "files")
	if files.Format != "raw" || files.Type != repo.Hosted || !files.AnonymousRead || !files.Online ||
		files.WritePolicy != repo.AllowOnce {
		t.Errorf("files = %+v", files)
	}
	levels := e.repo(t, "levels")
	if string(levels.Sections["test"]) != `{"level":3}` || levels.WritePolicy != repo.Allow {
		t.Errorf("levels = %+v, sections %s", levels, levels.Sections["test"])
	}
	ci := e.user(t, "ci")
	if ci.Admin || len(ci.Permissions) != 2 || ci.Permissions[0].Repository != "files" ||
		strings.Join(ci.Permissions[0].Actions, ",") != "read,write" {
		t.Errorf("ci = %+v", ci)
	}
	if !e.user(t, "ops").Admin {
		t.Error("ops is not an admin")
	}
	if !e.canLogIn("ci", "ci-password-1") || !e.canLogIn("ops", "ops-password-1") {
		t.Error("a declared password does not work")
	}
	if e.canLogIn("ci", "wrong-password") {
		t.Error("a wrong password works")
	}

	// Re-apply unchanged: nothing to do.
	wantLog(t, e.mustApply(t, first))
	if got := e.repo(t, "files"); got.ID != files.ID {
		t.Errorf("files was recreated: id %d, was %d", got.ID, files.ID)
	}

	// Change one setting of each kind; unchanged items stay quiet.
	e.file(t, "ops.password", "ops-password-2\n")
	second := strings.NewReplacer(
		"anonymousRead: true", "anonymousRead: false",
		"{level: 3}", "{level: 4}",
		"actions: [read]", "actions: [read, delete]",
	).Replace(first)
	wantLog(t, e.mustApply(t, second),
		[]string{"declared repository updated", "repository=files"},
		[]string{"declared repository updated", "repository=levels"},
		[]string{"declared user updated", "user=ci", "changed=permissions"},
		[]string{"declared user updated", "user=ops", "changed=password"})
	if e.repo(t, "files").AnonymousRead {
		t.Error("files still reads anonymously")
	}
	if got := string(e.repo(t, "levels").Sections["test"]); got != `{"level":4}` {
		t.Errorf("levels section = %s, want level 4", got)
	}
	if got := e.user(t, "ci").Permissions; len(got) != 2 || strings.Join(got[1].Actions, ",") != "read,delete" {
		t.Errorf("ci permissions = %+v", got)
	}
	if !e.canLogIn("ops", "ops-password-2") {
		t.Error("ops's password did not change")
	}
	if !e.canLogIn("ci", "ci-password-1") {
		t.Error("ci's unchanged password stopped working")
	}

	// A new hash, and the admin flag.
	third := strings.NewReplacer(ciHash, bcryptHash(t, "ci-password-2"),
		"  - name: ci\n", "  - name: ci\n    admin: true\n").Replace(second)
	wantLog(t, e.mustApply(t, third),
		[]string{"declared user updated", "user=ci", "changed=admin,password"})
	if !e.user(t, "ci").Admin || e.canLogIn("ci", "ci-password-1") || !e.canLogIn("ci", "ci-password-2") {
		t.Error("ci's admin flag or password did not change")
	}
	wantLog(t, e.mustApply(t, third))
}

// TestApplyNeverDeletes checks that what is not declared stays.
func TestApplyNeverDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := &repo.Repository{Name: "other", Format: "raw", Type: repo.Hosted, Online: true,
		WritePolicy: repo.AllowOnce}
	if err := e.repos.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := e.auth.CreateUser(ctx, &auth.User{Name: "bob", Password: "bob-password",
		Permissions: []auth.Grant{{Repository: "other", Actions: []string{"read"}}}}); err != nil {
		t.Fatal(err)
	}
	// A declared user may name a repository that exists without being
	// declared.
	wantLog(t, e.mustApply(t, fmt.Sprintf(`
repositories:
  - {name: files, format: raw, type: hosted}
users:
  - name: carol
    passwordHash: %s
    permissions: [{repository: other, actions: [read]}]
`, bcryptHash(t, "carol-password"))),
		[]string{"repository created", "files"}, []string{"user created", "carol"})
	e.repo(t, "other")
	if got := e.user(t, "bob").Permissions; len(got) != 1 {
		t.Errorf("bob's permissions changed: %+v", got)
	}
	wantLog(t, e.mustApply(t, "repositories: []\nusers: []\n"))
	e.repo(t, "files")
	e.user(t, "carol")
}

// TestApplySectionOrder checks that a definition created through the API
// with its section's keys in another order is not rewritten.
func TestApplySectionOrder(t *testing.T) {
	e := newEnv(t)
	var r repo.Repository
	if err := json.Unmarshal([]byte(`{"name":"lv","format":"test","type":"hosted",
		"test":{ "extra" : [1, 2], "level":2 }}`), &r); err != nil {
		t.Fatal(err)
	}
	if err := e.repos.Create(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	wantLog(t, e.mustApply(t, `
repositories:
  - name: lv
    type: hosted
    format: test
    online: true
    test:
      level: 2
      extra: [1, 2]
`))
}

func TestApplyProxySecretsOnce(t *testing.T) {
	e := newEnv(t)
	if err := e.repos.SetSecretKey(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	file := `
repositories:
  - name: up
    type: proxy
    format: raw
    proxy:
      url: http://127.0.0.1:9/
      username: u
      password: p4ss
`
	wantLog(t, e.mustApply(t, file), []string{"up", "created"})
	// The stored password is sealed; the same file again changes nothing.
	wantLog(t, e.mustApply(t, file))
	changed := strings.Replace(file, "p4ss", "n3w", 1)
	wantLog(t, e.mustApply(t, changed), []string{"up", "updated"})
	r, err := e.repos.Get(context.Background(), "up")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := e.repos.ProxySettings(r); err != nil || s.Password != "n3w" {
		t.Errorf("declared password now %q, %v", s.Password, err)
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env)
		file  string
		want  []string
	}{
		{
			name: "permission on an unknown repository",
			file: `
repositories:
  - {name: files, format: raw, type: hosted}
users:
  - name: dave
    passwordHash: HASH
    permissions:
      - repository: files
        actions: [read]
      - repository: nowhere
        actions: [read]
`,
			want: []string{"arca.yaml:10", `user "dave"`, "nowhere", "neither declared nor exists"},
		},
		{
			name: "new user without a password",
			file: "users:\n  - name: erin\n",
			want: []string{"arca.yaml:2", `user "erin"`, "passwordHash or passwordFile"},
		},
		{
			name: "format cannot change",
			setup: func(t *testing.T, e *env) {
				e.mustApply(t, "repositories:\n  - {name: files, format: raw, type: hosted}\n")
			},
			file: "repositories:\n  - {name: files, format: test, type: hosted}\n",
			want: []string{"arca.yaml:2", `repository "files"`, "format raw", "cannot change"},
		},
		{
			name: "every foreseeable problem at once",
			file: "users:\n  - name: erin\n  - name: frank\n    passwordHash: HASH\n" +
				"    permissions: [{repository: gone, actions: [read]}]\n",
			want: []string{`user "erin"`, `user "frank"`, "gone"},
		},
		{
			name: "the last admin stays",
			file: "users:\n  - name: admin\n",
			want: []string{"arca.yaml:2", `user "admin"`, "last admin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(t, e)
				e.takeLog()
			}
			err := e.apply(t, strings.ReplaceAll(tt.file, "HASH", bcryptHash(t, "some-password")))
			if err == nil {
				t.Fatal("Apply succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.setup == nil && !strings.Contains(tt.name, "last admin") {
				// Foreseen problems change nothing.
				if _, err := e.repos.Get(context.Background(), "files"); !errors.Is(err, repo.ErrNotFound) {
					t.Errorf("files was created although the plan failed: %v", err)
				}
				wantLog(t, e.takeLog())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "typo in a common key names its line",
			file: "repositories:\n  - name: files\n    format: raw\n    type: hosted\n    anonymousREAD: true\n",
			want: []string{"arca.yaml:5:", `repository "files"`, `unknown field "anonymousREAD"`},
		},
		{
			name: "wrong type of a common key",
			file: "repositories:\n  - name: files\n    format: raw\n    online: maybe\n    type: hosted\n",
			want: []string{"arca.yaml:4:", "online"},
		},
		{
			name: "bad name",
			file: "repositories:\n  - format: raw\n    name: Files\n    type: hosted\n",
			want: []string{"arca.yaml:3:", `"Files"`},
		},
		{
			name: "unknown format",
			file: "repositories:\n  - name: f\n    type: hosted\n    format: cobol\n",
			want: []string{"arca.yaml:4:", `unknown format "cobol"`, "raw, test"},
		},
		{
			name: "unknown type",
			file: "repositories:\n  - name: f\n    format: raw\n    type: mirror\n",
			want: []string{"arca.yaml:4:", `"mirror"`},
		},
		{
			name: "proxy without upstream",
			file: "repositories:\n  - name: f\n    format: raw\n    type: proxy\n",
			want: []string{"arca.yaml:2:", `needs a "proxy" section`},
		},
		{
			name: "proxy with a bad url",
			file: "repositories:\n  - name: f\n    format: raw\n    type: proxy\n    proxy:\n      url: ftp://x\n",
			want: []string{"arca.yaml:5:", "not an absolute http or https URL"},
		},
		{
			name: "unknown write policy",
			file: "repositories:\n  - name: f\n    format: raw\n    type: hosted\n    writePolicy: never\n",
			want: []string{"arca.yaml:5:", `"never"`},
		},
		{
			name: "section of another format",
			file: "repositories:\n  - name: f\n    format: raw\n    type: hosted\n    maven: {layout: strict}\n",
			want: []string{"arca.yaml:5:", `unknown field "maven"`},
		},
		{
			name: "the format refuses its section",
			file: "repositories:\n  - name: f\n    format: test\n    type: hosted\n    test:\n      level: -1\n",
			want: []string{"arca.yaml:5:", "level must not be negative"},
		},
		{
			name: "raw takes no section",
			file: "repositories:\n  - name: f\n    format: raw\n    type: hosted\n    raw: {}\n",
			want: []string{"arca.yaml:5:", "no \"raw\" settings"},
		},
		{
			name: "repository declared twice",
			file: "repositories:\n  - {name: f, format: raw, type: hosted}\n  - {name: f, format: raw, type: hosted}\n",
			want: []string{"arca.yaml:3:", "declared twice", "line 2"},
		},
		{
			name: "bad user name",
			file: "users:\n  - name: 'bad name'\n    passwordHash: HASH\n",
			want: []string{"arca.yaml:2:", `user "bad name"`},
		},
		{
			name: "hash and file",
			file: "users:\n  - name: u\n    passwordHash: HASH\n    passwordFile: pw\n",
			want: []string{"not both"},
		},
		{
			name: "not a bcrypt hash",
			file: "users:\n  - name: u\n    passwordHash: 5f4dcc3b5aa765d61d8327deb882cf99\n",
			want: []string{"arca.yaml:2:", `user "u"`, "bcrypt"},
		},
		{
			name: "missing password file",
			file: "users:\n  - name: u\n    passwordFile: no-such-file\n",
			want: []string{`user "u"`, "passwordFile", "no-such-file"},
		},
		{
			name: "password in file too short",
			file: "users:\n  - name: u\n    passwordFile: short.pw\n",
			want: []string{`user "u"`, "8 to 72 bytes"},
		},
		{
			name: "unknown action",
			file: "users:\n  - name: u\n    passwordHash: HASH\n    permissions:\n      - {repository: f, actions: [read, push]}\n",
			want: []string{"arca.yaml:5:", `unknown action "push"`},
		},
		{
			name: "no actions",
			file: "users:\n  - name: u\n    passwordHash: HASH\n    permissions:\n      - {repository: f}\n",
			want: []string{"arca.yaml:5:", "no action"},
		},
		{
			name: "repository granted twice",
			file: "users:\n  - name: u\n    passwordHash: HASH\n    permissions:\n" +
				"      - {repository: f, actions: [read]}\n      - {repository: f, actions: [write]}\n",
			want: []string{"arca.yaml:6:", "two permissions"},
		},
		{
			name: "every problem of a user",
			file: "users:\n  - name: u\n    passwordFile: no-such-file\n    permissions:\n" +
				"      - {repository: f, actions: [push]}\n      - {repository: G, actions: []}\n",
			want: []string{"arca.yaml:2:", "no-such-file", "arca.yaml:5:", `"push"`, "arca.yaml:6:", `"G"`, "no action"},
		},
		{
			name: "user declared twice",
			file: "users:\n  - {name: u, passwordHash: HASH}\n  - {name: u, passwordHash: HASH}\n",
			want: []string{"arca.yaml:3:", "declared twice"},
		},
		{
			name: "every problem",
			file: "repositories:\n  - {name: A, format: raw, type: hosted}\n  - {name: b, format: x, type: hosted}\n" +
				"users:\n  - {name: '', passwordHash: HASH}\n",
			want: []string{"arca.yaml:2:", "arca.yaml:3:", "arca.yaml:5:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &env{dir: t.TempDir(), formats: testFormats()} // no stores: Parse needs none
			e.file(t, "short.pw", "short\n")
			_, err := e.parse(t, strings.ReplaceAll(tt.file, "HASH", bcryptHash(t, "some-password")))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
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

func TestParseNothing(t *testing.T) {
	d, err := declare.Parse(nil, nil, nil)
	if err != nil || !d.Empty() {
		t.Fatalf("Parse(nil) = %v, %v", d, err)
	}
}

// TestApplyIsAudited checks that every change a declaration makes is in the
// audit log, made by "configuration" and pointing at the file.
func TestApplyIsAudited(t *testing.T) {
	e := newEnv(t)
	e.mustApply(t, `
repositories:
  - name: audited
    format: raw
    type: hosted
`)
	events, err := audit.New(e.db, slog.New(slog.DiscardHandler)).List(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Actor != "configuration" || events[0].Action != "repository.create" ||
		events[0].Repository != "audited" || !strings.Contains(events[0].Remote, ":") {
		t.Fatalf("audit events = %+v", events)
	}
}
