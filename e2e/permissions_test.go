package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// createUser creates a user through the API as admin.
func (in *instance) createUser(name, password string, admin bool, grants ...string) {
	in.t.Helper()
	type grant struct {
		Repository string   `json:"repository"`
		Actions    []string `json:"actions"`
	}
	body := map[string]any{"name": name, "password": password, "admin": admin, "permissions": []grant{}}
	var gs []grant
	for _, g := range grants {
		repoName, actions, _ := strings.Cut(g, ":")
		gs = append(gs, grant{Repository: repoName, Actions: strings.Split(actions, ",")})
	}
	if gs != nil {
		body["permissions"] = gs
	}
	b, _ := json.Marshal(body)
	resp := in.do("POST", "/api/v1/users", strings.NewReader(string(b)), false)
	if resp.StatusCode != 201 {
		msg, _ := io.ReadAll(resp.Body)
		in.t.Fatalf("create user %s: %s: %s", name, resp.Status, msg)
	}
}

// createToken creates a token for a user (basic auth user:password) and
// returns its id and secret.
func createToken(t *testing.T, in *instance, userPassword, name, expiresIn string) (id, secret string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q}`, name)
	if expiresIn != "" {
		body = fmt.Sprintf(`{"name":%q,"expiresIn":%q}`, name, expiresIn)
	}
	out := curl(t, "-f", "-u", userPassword, "-X", "POST", "-H", "Content-Type: application/json",
		"-d", body, in.URL+"/api/v1/tokens")
	var tok struct{ ID, Token string }
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.ID == "" || tok.Token == "" {
		t.Fatalf("create token: %v: %s", err, out)
	}
	return tok.ID, tok.Token
}

// putFile uploads content as admin and fails the test unless it is stored.
func (in *instance) putFile(path, content string) {
	in.t.Helper()
	resp := in.do("PUT", path, strings.NewReader(content), false)
	if resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		in.t.Fatalf("PUT %s: %s: %s", path, resp.Status, b)
	}
}

// permOp is one operation of the permission table.
type permOp struct {
	name string
	// args are curl's arguments for a role; slug names the role's own files
	// and throwaway repository.
	args func(base, slug string) []string
}

// TestPermissionTable runs every operation as every role and compares each
// status with the table. 401: anonymous on a private repository; 403: a
// known caller without the permission; 404 for reading the definition of a
// repository one may not read (its existence is not revealed).
func TestPermissionTable(t *testing.T) {
	in := start(t)
	upload := filepath.Join(t.TempDir(), "upload.txt")
	os.WriteFile(upload, []byte("uploaded by the permission table\n"), 0o644)
	const repoDef = `{"name":"files","format":"raw","type":"hosted","online":true,"anonymousRead":false,"writePolicy":"allow"}`

	ops := []permOp{
		{"GET file", func(b, s string) []string { return []string{b + "/repository/files/shared.txt"} }},
		{"HEAD file", func(b, s string) []string { return []string{"-I", b + "/repository/files/shared.txt"} }},
		{"GET listing", func(b, s string) []string {
			return []string{"-H", "Accept: application/json", b + "/repository/files/"}
		}},
		// "Expect:" keeps curl from waiting for 100-continue; that a refusal
		// comes before the body is TestRefusedUploadSendsNoBody's business.
		{"PUT new", func(b, s string) []string {
			return []string{"-H", "Expect:", "-T", upload, b + "/repository/files/new/" + s + ".txt"}
		}},
		{"PUT overwrite", func(b, s string) []string {
			return []string{"-H", "Expect:", "-T", upload, b + "/repository/files/old/" + s + ".txt"}
		}},
		{"DELETE file", func(b, s string) []string {
			return []string{"-X", "DELETE", b + "/repository/files/del/" + s + ".txt"}
		}},
		{"GET other repo's file", func(b, s string) []string { return []string{b + "/repository/other/other.txt"} }},
		{"GET repo def", func(b, s string) []string { return []string{b + "/api/v1/repositories/files"} }},
		{"PUT repo def", func(b, s string) []string {
			return []string{"-X", "PUT", "-H", "Content-Type: application/json", "-d", repoDef, b + "/api/v1/repositories/files"}
		}},
		{"DELETE repo", func(b, s string) []string { return []string{"-X", "DELETE", b + "/api/v1/repositories/tmp-" + s} }},
		{"list users", func(b, s string) []string { return []string{b + "/api/v1/users"} }},
		{"create user", func(b, s string) []string {
			return []string{"-X", "POST", "-H", "Content-Type: application/json",
				"-d", `{"name":"made-by-` + s + `","password":"made-password","permissions":[]}`, b + "/api/v1/users"}
		}},
		{"GET audit", func(b, s string) []string { return []string{b + "/api/v1/audit"} }},
	}

	type role struct {
		name, slug string
		grant      string   // actions on files and on the role's throwaway repository
		cred       []string // curl arguments that authenticate; set below for token roles
		want       []int    // one status per op, in the order of ops
	}
	const pw = "role-password"
	//                                                                GET  HEAD list PUTn PUTo DEL  other gDef pDef dRepo lUsr mkUsr audit
	roles := []role{
		{name: "anonymous", slug: "anon", want: []int{401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401}},
		{name: "no permission", slug: "none", want: []int{403, 403, 403, 403, 403, 403, 403, 404, 403, 403, 403, 403, 403}},
		{name: "read", slug: "r", grant: "read", want: []int{200, 200, 200, 403, 403, 403, 403, 200, 403, 403, 403, 403, 403}},
		{name: "write", slug: "w", grant: "write", want: []int{403, 403, 403, 201, 201, 403, 403, 404, 403, 403, 403, 403, 403}},
		{name: "read+write", slug: "rw", grant: "read,write", want: []int{200, 200, 200, 201, 201, 403, 403, 200, 403, 403, 403, 403, 403}},
		{name: "read+write+delete", slug: "rwd", grant: "read,write,delete", want: []int{200, 200, 200, 201, 201, 204, 403, 200, 403, 403, 403, 403, 403}},
		// admin on a repository changes its settings, so it may also read
		// them; it grants nothing on the content and cannot delete the
		// repository (a server-wide admin's job).
		{name: "repository admin", slug: "radm", grant: "admin", want: []int{403, 403, 403, 403, 403, 403, 403, 200, 200, 403, 403, 403, 403}},
		{name: "global admin", slug: "admin", want: []int{200, 200, 200, 201, 201, 204, 200, 200, 200, 204, 200, 201, 200}},
		{name: "rw token as Bearer", slug: "tb", want: []int{200, 200, 200, 201, 201, 403, 403, 200, 403, 403, 403, 403, 403}},
		{name: "rw token as __token__", slug: "tt", want: []int{200, 200, 200, 201, 201, 403, 403, 200, 403, 403, 403, 403, 403}},
		{name: "rw token with owner name", slug: "to", want: []int{200, 200, 200, 201, 201, 403, 403, 200, 403, 403, 403, 403, 403}},
	}

	in.createRepo(`{"name":"files","format":"raw","type":"hosted","writePolicy":"allow"}`)
	in.createRepo(`{"name":"other","format":"raw","type":"hosted"}`)
	in.putFile("/repository/files/shared.txt", "shared\n")
	in.putFile("/repository/other/other.txt", "other\n")
	for _, r := range roles {
		in.createRepo(`{"name":"tmp-` + r.slug + `","format":"raw","type":"hosted"}`)
		in.putFile("/repository/files/old/"+r.slug+".txt", "old "+r.slug)
		in.putFile("/repository/files/del/"+r.slug+".txt", "delete me "+r.slug)
	}
	in.createUser("role-none", pw, false)
	for i := range roles {
		r := &roles[i]
		switch {
		case r.grant != "":
			in.createUser("role-"+r.slug, pw, false, "files:"+r.grant, "tmp-"+r.slug+":"+r.grant)
			r.cred = []string{"-u", "role-" + r.slug + ":" + pw}
		case r.slug == "none":
			r.cred = []string{"-u", "role-none:" + pw}
		case r.slug == "admin":
			r.cred = []string{"-u", admin()}
		}
	}
	in.createUser("role-tok", pw, false, "files:read,write", "tmp-tb:read,write", "tmp-tt:read,write", "tmp-to:read,write")
	_, secret := createToken(t, in, "role-tok:"+pw, "permission table", "")
	for i := range roles {
		switch roles[i].slug {
		case "tb":
			roles[i].cred = []string{"-H", "Authorization: Bearer " + secret}
		case "tt":
			roles[i].cred = []string{"-u", "__token__:" + secret}
		case "to":
			roles[i].cred = []string{"-u", "role-tok:" + secret}
		}
	}

	// The table is spelled out above; print it as the test runs it.
	var header strings.Builder
	fmt.Fprintf(&header, "%-26s", "role")
	for _, op := range ops {
		fmt.Fprintf(&header, " | %s", op.name)
	}
	t.Log(header.String())
	for _, r := range roles {
		if len(r.want) != len(ops) {
			t.Fatalf("role %s: %d expectations for %d operations", r.name, len(r.want), len(ops))
		}
		// One curl run per role, one transfer per operation (--next).
		var args []string
		for i, op := range ops {
			if i > 0 {
				args = append(args, "--next")
			}
			args = append(args, "-sS", "-o", "/dev/null", "-w", "%{http_code}\n")
			args = append(append(args, r.cred...), op.args(in.URL, r.slug)...)
		}
		statuses := strings.Fields(curl(t, args...))
		if len(statuses) != len(ops) {
			t.Fatalf("role %s: curl reported %d statuses for %d operations: %v", r.name, len(statuses), len(ops), statuses)
		}
		var row strings.Builder
		fmt.Fprintf(&row, "%-26s", r.name)
		for i, op := range ops {
			got := statuses[i]
			fmt.Fprintf(&row, " | %s", got)
			if want := fmt.Sprint(r.want[i]); got != want {
				severity := "differs"
				if got[0] == '2' && want[0] != '2' {
					severity = "ALLOWED BUT SHOULD NOT BE"
				}
				t.Errorf("%s / %s: status %s, want %s (%s)", r.name, op.name, got, want, severity)
			}
		}
		t.Log(row.String())
	}
}

// TestRefusedUploadSendsNoBody checks that an upload the caller may not make
// is refused before its body travels: curl announces it with
// "Expect: 100-continue" and must get the 401 or 403 instead of a 100.
func TestRefusedUploadSendsNoBody(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	in.createUser("reader", "reader-password", false, "files:read")
	big := filepath.Join(t.TempDir(), "big.bin")
	os.WriteFile(big, make([]byte, 4<<20), 0o644)
	for _, c := range []struct {
		name, want string
		cred       []string
	}{
		{"anonymous", "401", nil},
		{"reader", "403", []string{"-u", "reader:reader-password"}},
	} {
		args := append(append([]string{}, c.cred...), "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
			"-T", big, in.URL+"/repository/files/big.bin")
		got := strings.Fields(curl(t, args...))
		if len(got) != 2 || got[0] != c.want {
			t.Fatalf("%s: status and bytes sent %v, want status %s", c.name, got, c.want)
		}
		if got[1] != "0" {
			t.Errorf("%s: curl sent %s bytes of a refused upload, want 0: the server did not answer "+
				"the Expect: 100-continue request before reading the body", c.name, got[1])
		}
	}
}

// TestGrantsDoNotOutliveRepository checks that deleting a repository takes
// its permissions along: a new repository of the same name starts with none.
func TestGrantsDoNotOutliveRepository(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	in.createUser("former", "former-password", false, "files:read,write,delete,admin")
	_, secret := createToken(t, in, "former:former-password", "stale", "")
	in.putFile("/repository/files/f.txt", "f")
	if got := curlStatus(t, "-H", "Authorization: Bearer "+secret, in.URL+"/repository/files/f.txt"); got != "200" {
		t.Fatalf("before: %s", got)
	}
	if resp := in.do("DELETE", "/api/v1/repositories/files", nil, false); resp.StatusCode != 204 {
		t.Fatalf("delete repository: %s", resp.Status)
	}
	in.createRepo(`{"name":"files","format":"raw","type":"hosted"}`)
	in.putFile("/repository/files/f.txt", "new secret")
	if got := curlStatus(t, "-H", "Authorization: Bearer "+secret, in.URL+"/repository/files/f.txt"); got != "403" {
		t.Errorf("GET in the new repository of the same name: %s, want 403", got)
	}
	out := curl(t, "-f", "-u", admin(), in.URL+"/api/v1/users/former")
	if !strings.Contains(out, `"permissions":[]`) {
		t.Errorf("former's permissions after the repository was deleted: %s", out)
	}
}
