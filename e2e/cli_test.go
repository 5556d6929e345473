package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// decodeCLI parses the client's -o json output into v.
func decodeCLI(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("-o json output does not parse: %v\n%s", err, out)
	}
}

// apiErrorMessage returns the message of the server's error document.
func apiErrorMessage(t *testing.T, resp *http.Response) string {
	t.Helper()
	var doc struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Errors) == 0 {
		t.Fatalf("%s: no error document: %s", resp.Status, b)
	}
	return doc.Errors[0].Message
}

// wantCLIError checks that a run failed with exit 1, nothing on stdout, and
// the server's message on stderr.
func wantCLIError(t *testing.T, res cliResult, parts ...string) {
	t.Helper()
	if res.Code != 1 {
		t.Errorf("exit code %d, want 1 (stderr %q)", res.Code, res.Stderr)
	}
	if res.Stdout != "" {
		t.Errorf("a failed command wrote to stdout: %q", res.Stdout)
	}
	if !strings.HasPrefix(res.Stderr, "arca: ") {
		t.Errorf("stderr does not start with \"arca: \": %q", res.Stderr)
	}
	for _, p := range parts {
		if !strings.Contains(res.Stderr, p) {
			t.Errorf("stderr lacks %q: %q", p, res.Stderr)
		}
	}
}

type cliRepo struct {
	Name          string `json:"name"`
	Format        string `json:"format"`
	Type          string `json:"type"`
	Online        *bool  `json:"online"`
	AnonymousRead *bool  `json:"anonymousRead"`
	WritePolicy   string `json:"writePolicy"`
}

type cliGrant struct {
	Repository string   `json:"repository"`
	Actions    []string `json:"actions"`
}

type cliUser struct {
	Name        string     `json:"name"`
	Admin       bool       `json:"admin"`
	Permissions []cliGrant `json:"permissions"`
	CreatedAt   string     `json:"createdAt"`
}

type cliToken struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Token      string  `json:"token"`
	CreatedAt  string  `json:"createdAt"`
	ExpiresAt  *string `json:"expiresAt"`
	LastUsedAt *string `json:"lastUsedAt"`
}

// TestCLIRepositories drives `arca repo` against a running server.
func TestCLIRepositories(t *testing.T) {
	in := start(t)

	var r cliRepo
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "create", "files", "--format", "raw", "--type", "hosted", "-o", "json"), &r)
	if r.Name != "files" || r.Format != "raw" || r.Type != "hosted" || r.Online == nil || !*r.Online ||
		r.AnonymousRead == nil || *r.AnonymousRead || r.WritePolicy != "allow-once" {
		t.Fatalf("created repository: %+v", r)
	}
	out := in.cliOK(asAdminEnv, "repo", "create", "docs", "--format", "raw", "--anonymous-read",
		"--write-policy", "allow")
	for _, want := range []string{"NAME", "docs", "ANONYMOUS READ", "yes", "WRITE POLICY", "allow"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "create", "off", "--format", "raw", "--offline", "-o", "json"), &r)
	if *r.Online {
		t.Errorf("--offline: %+v", r)
	}

	// A duplicate: the client prints what the server says, and fails.
	resp := in.do("POST", "/api/v1/repositories", strings.NewReader(`{"name":"files","format":"raw","type":"hosted"}`), false)
	msg := apiErrorMessage(t, resp)
	res := in.cli(asAdminEnv, "repo", "create", "files", "--format", "raw", "--type", "hosted")
	wantCLIError(t, res, msg, "409")
	res = in.cli(asAdminEnv, "repo", "create", "files", "--format", "raw", "-o", "json")
	wantCLIError(t, res, msg)
	wantCLIError(t, in.cli(asAdminEnv, "repo", "create", "Bad_Name", "--format", "raw"), "must match", "400")
	wantCLIError(t, in.cli(asAdminEnv, "repo", "show", "nope"), "not found", "404")
	wantCLIError(t, in.cli(nil, "repo", "create", "x", "--format", "raw"), "authentication required", "401")
	wantCLIError(t, in.cli([]string{"ARCA_USER=admin", "ARCA_PASSWORD=wrong-password"}, "repo", "list"),
		"wrong user name or password", "401")

	// update changes only what its flags name.
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "update", "files", "--write-policy", "allow", "-o", "json"), &r)
	if r.WritePolicy != "allow" || *r.AnonymousRead || !*r.Online {
		t.Fatalf("after --write-policy allow: %+v", r)
	}
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "update", "files", "--anonymous-read=true", "-o", "json"), &r)
	if r.WritePolicy != "allow" || !*r.AnonymousRead {
		t.Fatalf("after --anonymous-read=true: %+v", r)
	}
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "update", "off", "--online=true", "-o", "json"), &r)
	if !*r.Online {
		t.Fatalf("after --online=true: %+v", r)
	}
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "show", "files", "-o", "json"), &r)
	if r.Name != "files" || r.WritePolicy != "allow" || !*r.AnonymousRead {
		t.Fatalf("show after updates: %+v", r)
	}
	wantCLIError(t, in.cli(asAdminEnv, "repo", "update", "files", "--write-policy", "sometimes"), "allow-once")

	// A definition from a file; flags win over it.
	def := filepath.Join(t.TempDir(), "def.json")
	os.WriteFile(def, []byte(`{"format":"raw","type":"hosted","writePolicy":"deny","anonymousRead":true}`), 0o644)
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "create", "fromfile", "--settings-file", def,
		"--anonymous-read=false", "-o", "json"), &r)
	if r.Name != "fromfile" || r.WritePolicy != "deny" || *r.AnonymousRead {
		t.Fatalf("created from a file: %+v", r)
	}
	os.WriteFile(def, []byte(`{"raw":{"x":1}}`), 0o644)
	wantCLIError(t, in.cli(asAdminEnv, "repo", "update", "fromfile", "--settings-file", def),
		`raw repositories have no "raw" settings`, "400")
	in.cliOK(asAdminEnv, "repo", "delete", "fromfile")

	// list follows the pages.
	for _, name := range []string{"a1", "a2", "a3"} {
		in.cliOK(asAdminEnv, "repo", "create", name, "--format", "raw")
	}
	var list []cliRepo
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "list", "--page-size", "2", "-o", "json"), &list)
	var names []string
	for _, r := range list {
		names = append(names, r.Name)
	}
	if want := []string{"a1", "a2", "a3", "docs", "files", "off"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("repo list with pages of 2: %v, want %v", names, want)
	}
	out = in.cliOK(asAdminEnv, "repo", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 7 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("repo list table:\n%s", out)
	}
	// Anonymous callers see the repositories open to them.
	decodeCLI(t, in.cliOK(nil, "repo", "list", "-o", "json"), &list)
	if len(list) != 2 || list[0].Name != "docs" || list[1].Name != "files" {
		t.Fatalf("anonymous repo list: %+v", list)
	}

	var deleted map[string]string
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "delete", "a2", "-o", "json"), &deleted)
	if deleted["deleted"] != "a2" {
		t.Fatalf("delete -o json: %v", deleted)
	}
	if out := in.cliOK(asAdminEnv, "repo", "delete", "a3"); !strings.Contains(out, "a3 deleted") {
		t.Fatalf("delete: %q", out)
	}
	wantCLIError(t, in.cli(asAdminEnv, "repo", "show", "a3"), "not found")
	// A proxy, shown with its status, updates the same way, and keeps its
	// write-only password.
	in.createRepo(fmt.Sprintf(`{"name":"mirror","format":"raw","type":"proxy",
		"proxy":{"url":"%s/repository/off/","username":"admin","password":%q}}`, in.URL, adminPassword))
	decodeCLI(t, in.cliOK(asAdminEnv, "repo", "update", "mirror", "--anonymous-read=true", "-o", "json"), &r)
	if !*r.AnonymousRead {
		t.Fatalf("proxy after --anonymous-read=true: %+v", r)
	}
	in.putFile("/repository/off/through-mirror.txt", "via the proxy")
	if resp := in.do("GET", "/repository/mirror/through-mirror.txt", nil, true); resp.StatusCode != http.StatusOK {
		t.Errorf("the updated proxy reads its upstream with the kept password: %d", resp.StatusCode)
	}
	// A proxy takes no uploads: its table row shows no write policy.
	for _, line := range strings.Split(in.cliOK(asAdminEnv, "repo", "list"), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "mirror" && fields[len(fields)-1] != "-" {
			t.Errorf("repo list row of a proxy: %q", line)
		}
	}
}

// TestCLIUsersAndTokens drives `arca user` and `arca token`.
func TestCLIUsersAndTokens(t *testing.T) {
	in := start(t)
	in.cliOK(asAdminEnv, "repo", "create", "files", "--format", "raw", "--type", "hosted")
	in.cliOK(asAdminEnv, "repo", "create", "docs", "--format", "raw", "--type", "hosted")

	const ciPassword = "ci-secret-password"
	out := in.cliOK(asAdminEnv, "user", "create", "ci", "--password", ciPassword,
		"--permission", "files:read,write", "-o", "json")
	if strings.Contains(out, ciPassword) || strings.Contains(out, `"password"`) {
		t.Fatalf("user create echoes the password: %s", out)
	}
	var u cliUser
	decodeCLI(t, out, &u)
	if u.Name != "ci" || u.Admin || !reflect.DeepEqual(u.Permissions,
		[]cliGrant{{Repository: "files", Actions: []string{"read", "write"}}}) || u.CreatedAt == "" {
		t.Fatalf("created user: %+v", u)
	}
	// The password from standard input, a second repository, the admin flag.
	res := in.cliInput("stdin-password\n", asAdminEnv, "user", "create", "ops", "--password-stdin", "--admin",
		"--permission", "docs:read", "--permission", "files:read", "-o", "json")
	if res.Code != 0 {
		t.Fatalf("create with --password-stdin: %+v", res)
	}
	decodeCLI(t, res.Stdout, &u)
	if !u.Admin || len(u.Permissions) != 2 {
		t.Fatalf("created ops: %+v", u)
	}
	if got := curlStatus(t, "-u", "ops:stdin-password", in.URL+"/api/v1/users"); got != "200" {
		t.Fatalf("the password read from stdin does not work: %s", got)
	}
	wantCLIError(t, in.cli(asAdminEnv, "user", "create", "ci", "--password", ciPassword), "409")
	wantCLIError(t, in.cli(asAdminEnv, "user", "create", "short", "--password", "short"), "8 to 72 bytes", "400")
	wantCLIError(t, in.cli(asAdminEnv, "user", "create", "x", "--password", ciPassword, "--permission", "files:fly"),
		`unknown action "fly"`)
	wantCLIError(t, in.cli(asAdminEnv, "user", "create", "x", "--password", ciPassword, "--permission", "nope:read"),
		"unknown repository")

	// update keeps what its flags do not mention.
	decodeCLI(t, in.cliOK(asAdminEnv, "user", "update", "ci", "--permission", "docs:read", "-o", "json"), &u)
	if u.Admin || !reflect.DeepEqual(u.Permissions, []cliGrant{
		{Repository: "docs", Actions: []string{"read"}},
		{Repository: "files", Actions: []string{"read", "write"}}}) {
		t.Fatalf("after update --permission docs:read: %+v", u)
	}
	decodeCLI(t, in.cliOK(asAdminEnv, "user", "update", "ci", "--permission", "files:read,write,delete",
		"--remove-permission", "docs", "-o", "json"), &u)
	if !reflect.DeepEqual(u.Permissions, []cliGrant{{Repository: "files", Actions: []string{"read", "write", "delete"}}}) {
		t.Fatalf("after replacing files and removing docs: %+v", u)
	}
	decodeCLI(t, in.cliOK(asAdminEnv, "user", "update", "ops", "--admin=false", "-o", "json"), &u)
	if u.Admin || len(u.Permissions) != 2 {
		t.Fatalf("after --admin=false: %+v", u)
	}
	// Without --password the password stays.
	if got := curlStatus(t, "-u", "ci:"+ciPassword, in.URL+"/repository/files/"); got != "200" {
		t.Fatalf("ci's password after updates: %s", got)
	}
	in.cliOK(asAdminEnv, "user", "update", "ci", "--password", "a-new-password")
	if got := curlStatus(t, "-u", "ci:"+ciPassword, in.URL+"/repository/files/"); got != "401" {
		t.Fatalf("the old password after a change: %s, want 401", got)
	}
	wantCLIError(t, in.cli(asAdminEnv, "user", "update", "admin", "--admin=false"), "last admin", "409")
	wantCLIError(t, in.cli(asAdminEnv, "user", "update", "nobody", "--admin=true"), "not found", "404")

	var users []cliUser
	decodeCLI(t, in.cliOK(asAdminEnv, "user", "list", "--page-size", "1", "-o", "json"), &users)
	if len(users) != 3 || users[0].Name != "admin" || users[1].Name != "ci" || users[2].Name != "ops" {
		t.Fatalf("user list: %+v", users)
	}
	if out := in.cliOK(asAdminEnv, "user", "list"); !strings.Contains(out, "files:read,write,delete") {
		t.Fatalf("user list table:\n%s", out)
	}
	// A non-admin gets the server's refusal.
	ciEnv := []string{"ARCA_USER=ci", "ARCA_PASSWORD=a-new-password"}
	wantCLIError(t, in.cli(ciEnv, "user", "list"), "not an admin", "403")

	// Tokens: the secret once, then usable, listed without it, revocable.
	var tok cliToken
	decodeCLI(t, in.cliOK(ciEnv, "token", "create", "--name", "ci", "-o", "json"), &tok)
	if tok.ID == "" || tok.Name != "ci" || !strings.HasPrefix(tok.Token, "arca_") || tok.ExpiresAt != nil {
		t.Fatalf("created token: %+v", tok)
	}
	out = in.cliOK(ciEnv, "token", "create", "--name", "deploy", "--expires-in", "720h")
	for _, want := range []string{"ID", "TOKEN", "arca_", "shown only once", "EXPIRES"} {
		if !strings.Contains(out, want) {
			t.Errorf("token create table lacks %q:\n%s", want, out)
		}
	}
	tokEnv := []string{"ARCA_TOKEN=" + tok.Token}
	var list []cliRepo
	decodeCLI(t, in.cliOK(tokEnv, "repo", "list", "-o", "json"), &list)
	if len(list) != 1 || list[0].Name != "files" {
		t.Fatalf("repo list with ci's token: %+v", list)
	}
	var tokens []cliToken
	out = in.cliOK(tokEnv, "token", "list", "-o", "json")
	decodeCLI(t, out, &tokens)
	if len(tokens) != 2 || strings.Contains(out, "arca_") {
		t.Fatalf("token list: %s", out)
	}
	for _, tk := range tokens {
		if tk.Name == "deploy" && (tk.ExpiresAt == nil || *tk.ExpiresAt == "") {
			t.Errorf("the deploy token has no expiry: %+v", tk)
		}
	}
	if out := in.cliOK(tokEnv, "token", "list"); !strings.Contains(out, tok.ID) || !strings.Contains(out, "never") {
		t.Fatalf("token list table:\n%s", out)
	}
	// --token wins over the variables, and --user with NAME:PASSWORD works.
	decodeCLI(t, in.cliOK(asAdminEnv, "token", "list", "--token", tok.Token, "-o", "json"), &tokens)
	if len(tokens) != 2 {
		t.Fatalf("--token did not win over ARCA_USER: %+v", tokens)
	}
	decodeCLI(t, in.cliOK(nil, "token", "list", "--user", "ci:a-new-password", "-o", "json"), &tokens)
	if len(tokens) != 2 {
		t.Fatalf("--user NAME:PASSWORD: %+v", tokens)
	}
	var revoked map[string]string
	decodeCLI(t, in.cliOK(ciEnv, "token", "revoke", tok.ID, "-o", "json"), &revoked)
	if revoked["revoked"] != tok.ID {
		t.Fatalf("revoke -o json: %v", revoked)
	}
	wantCLIError(t, in.cli(tokEnv, "repo", "list"), "401")
	wantCLIError(t, in.cli(ciEnv, "token", "revoke", tok.ID), "404")

	var deleted map[string]string
	decodeCLI(t, in.cliOK(asAdminEnv, "user", "delete", "ops", "-o", "json"), &deleted)
	if deleted["deleted"] != "ops" {
		t.Fatalf("user delete -o json: %v", deleted)
	}
	wantCLIError(t, in.cli(asAdminEnv, "user", "delete", "ops"), "404")
	wantCLIError(t, in.cli(asAdminEnv, "user", "delete", "admin"), "last admin")
}

// TestCLIConnectionErrors checks the client's own errors.
func TestCLIConnectionErrors(t *testing.T) {
	in := &instance{t: t, URL: "http://127.0.0.1:1"}
	wantCLIError(t, in.cli(nil, "repo", "list"), "cannot reach http://127.0.0.1:1")
	wantCLIError(t, in.cli(nil, "repo", "list", "--url", "ftp://x"), "http://")
	wantCLIError(t, in.cli(nil, "repo", "list", "-o", "yaml"), "table or json")
	wantCLIError(t, in.cli([]string{"ARCA_USER=admin"}, "repo", "list"), "needs a password")
	wantCLIError(t, in.cli(nil, "repo", "list", "--token", "x", "--user", "y"), "either")
}
