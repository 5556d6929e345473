package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTokens checks how tokens authenticate: as Bearer and as a basic-auth
// password (user __token__ or the owner's name, nobody else's), never
// stronger than their user, and dead once revoked, expired or orphaned.
func TestTokens(t *testing.T) {
	in := start(t)
	in.createRepo(`{"name":"files","format":"raw","type":"hosted","writePolicy":"allow"}`)
	in.putFile("/repository/files/f.txt", "content")
	in.createUser("rw", "rw-password", false, "files:read,write")
	in.createUser("ro", "ro-password", false, "files:read")
	in.createUser("leaver", "leaver-password", false, "files:read")
	upload := filepath.Join(t.TempDir(), "u.txt")
	os.WriteFile(upload, []byte("uploaded with a token"), 0o644)
	file := in.URL + "/repository/files/f.txt"
	put := func(cred ...string) string {
		return curlStatus(t, append(cred, "-H", "Expect:", "-T", upload, in.URL+"/repository/files/t.txt")...)
	}
	bearer := func(secret string) []string { return []string{"-H", "Authorization: Bearer " + secret} }

	rwID, rw := createToken(t, in, "rw:rw-password", "ci", "")
	for _, c := range []struct {
		name string
		cred []string
		want string
	}{
		{"Bearer", bearer(rw), "201"},
		{"basic __token__", []string{"-u", "__token__:" + rw}, "201"},
		{"basic owner", []string{"-u", "rw:" + rw}, "201"},
		{"basic other user's name", []string{"-u", "ro:" + rw}, "401"},
		{"basic admin's name", []string{"-u", "admin:" + rw}, "401"},
		{"bearer, lower-case scheme", []string{"-H", "Authorization: bearer " + rw}, "201"},
		{"unknown token", bearer("arca_" + strings.Repeat("A", 43)), "401"},
		{"not a token", bearer("rw-password"), "401"},
		{"token with a character changed", bearer(rw[:len(rw)-1] + flip(rw[len(rw)-1])), "401"},
	} {
		if got := put(c.cred...); got != c.want {
			t.Errorf("PUT with the rw token, %s: %s, want %s", c.name, got, c.want)
		}
	}

	// A read-only user's token reads but cannot write, delete or administer.
	_, ro := createToken(t, in, "ro:ro-password", "read only", "")
	if got := curlStatus(t, append(bearer(ro), file)...); got != "200" {
		t.Errorf("GET with the read-only token: %s, want 200", got)
	}
	if got := put(bearer(ro)...); got != "403" {
		t.Errorf("PUT with the read-only token: %s, want 403", got)
	}
	if got := put("-u", "__token__:"+ro); got != "403" {
		t.Errorf("PUT with the read-only token as __token__: %s, want 403", got)
	}
	if got := curlStatus(t, append(bearer(ro), "-X", "DELETE", file)...); got != "403" {
		t.Errorf("DELETE with the read-only token: %s, want 403", got)
	}
	if got := curlStatus(t, append(bearer(ro), "-X", "POST", "-d", `{"name":"x","password":"xxxxxxxxxx"}`,
		in.URL+"/api/v1/users")...); got != "403" {
		t.Errorf("create a user with the read-only token: %s, want 403", got)
	}
	// A token follows its user's permissions as they change.
	if got := curlStatus(t, "-u", admin(), "-X", "PUT", "-d", `{"permissions":[{"repository":"files","actions":["read"]}]}`,
		in.URL+"/api/v1/users/rw"); got != "200" {
		t.Fatalf("take write from rw: %s", got)
	}
	if got := put(bearer(rw)...); got != "403" {
		t.Errorf("PUT with rw's token after write was taken from rw: %s, want 403", got)
	}
	// Nobody revokes another user's token.
	if got := curlStatus(t, append(bearer(ro), "-X", "DELETE", in.URL+"/api/v1/tokens/"+rwID)...); got != "404" {
		t.Errorf("ro revokes rw's token: %s, want 404", got)
	}
	if got := curlStatus(t, append(bearer(rw), file)...); got != "200" {
		t.Errorf("rw's token after ro's attempt to revoke it: %s, want 200", got)
	}

	// Revoked: 401 whichever way it is sent.
	if got := curlStatus(t, append(bearer(rw), "-X", "DELETE", in.URL+"/api/v1/tokens/"+rwID)...); got != "204" {
		t.Fatalf("revoke: %s, want 204", got)
	}
	for _, cred := range [][]string{bearer(rw), {"-u", "__token__:" + rw}, {"-u", "rw:" + rw}} {
		if got := curlStatus(t, append(cred, file)...); got != "401" {
			t.Errorf("GET with a revoked token (%s): %s, want 401", cred[0], got)
		}
	}
	if got := curlStatus(t, "-u", "rw:rw-password", file); got != "200" {
		t.Errorf("rw's password after revoking its token: %s, want 200", got)
	}

	// Expired: a token of one second, two seconds later.
	_, short := createToken(t, in, "ro:ro-password", "short", "1s")
	_, long := createToken(t, in, "ro:ro-password", "long", "1h")
	var list struct {
		Items []struct {
			Name                 string
			CreatedAt, ExpiresAt time.Time
		}
	}
	if err := json.Unmarshal([]byte(curl(t, "-f", "-u", "ro:ro-password", in.URL+"/api/v1/tokens")), &list); err != nil {
		t.Fatal(err)
	}
	for _, tk := range list.Items {
		if tk.Name == "short" {
			if d := tk.ExpiresAt.Sub(tk.CreatedAt); d < 900*time.Millisecond || d > 1100*time.Millisecond {
				t.Errorf("a token with expiresIn 1s lives %s", d)
			}
		}
	}
	time.Sleep(2 * time.Second)
	for _, cred := range [][]string{bearer(short), {"-u", "__token__:" + short}, {"-u", "ro:" + short}} {
		if got := curlStatus(t, append(cred, file)...); got != "401" {
			t.Errorf("GET with an expired token (%s): %s, want 401", cred[0], got)
		}
	}
	if got := curlStatus(t, append(bearer(long), file)...); got != "200" {
		t.Errorf("GET with a token that has not expired: %s, want 200", got)
	}
	for _, bad := range []string{"0s", "-1h", "soon"} {
		if got := curlStatus(t, "-u", "ro:ro-password", "-X", "POST", "-d", `{"name":"x","expiresIn":"`+bad+`"}`,
			in.URL+"/api/v1/tokens"); got != "400" {
			t.Errorf("expiresIn %q: %s, want 400", bad, got)
		}
	}

	// A deleted user's tokens die with it.
	_, orphan := createToken(t, in, "leaver:leaver-password", "orphan", "")
	if got := curlStatus(t, append(bearer(orphan), file)...); got != "200" {
		t.Fatalf("leaver's token: %s", got)
	}
	if got := curlStatus(t, "-u", admin(), "-X", "DELETE", in.URL+"/api/v1/users/leaver"); got != "204" {
		t.Fatalf("delete leaver: %s", got)
	}
	if got := curlStatus(t, append(bearer(orphan), file)...); got != "401" {
		t.Errorf("a deleted user's token: %s, want 401", got)
	}
}

// flip returns a different character of the token alphabet.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
