package auth_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/meta"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		scope   string
		want    auth.Access
		wantErr bool
	}{
		{"repository:containers/team/app:pull,push", auth.Access{Type: "repository",
			Name: "containers/team/app", Actions: []string{"pull", "push"}}, false},
		{"repository:containers/app:*", auth.Access{Type: "repository", Name: "containers/app",
			Actions: []string{"*"}}, false},
		{"registry:catalog:*", auth.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}, false},
		{"repository", auth.Access{}, true},
		{"repository:name", auth.Access{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			got, err := auth.ParseScope(tt.scope)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (got.Type != tt.want.Type || got.Name != tt.want.Name ||
				strings.Join(got.Actions, ",") != strings.Join(tt.want.Actions, ",")) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// registryEnv has repositories "a" (private), "b" (private), "pub"
// (anonymous read) and "grp" (standing for a group writing to a), and a
// user "reader" with read on a.
func registryEnv(t *testing.T) (*auth.Service, string) {
	t.Helper()
	s, db, dir := newService(t)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, dir, "admin-password"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "pub", "grp"} {
		r := meta.Repository{Name: name, Format: "oci", Type: "hosted", Settings: []byte("{}")}
		if err := db.Queries().CreateRepository(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	u := &auth.User{Name: "reader", Password: "reader-password",
		Permissions: []auth.Grant{{Repository: "a", Actions: []string{"read"}}}}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadRegistryKey(dir, ""); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// lookup knows the repositories a and b, pub (anonymous read) and the
// group grp, whose writes go to a.
func lookup(_ context.Context, name string, perm auth.Permission) (auth.Target, bool) {
	switch name {
	case "a", "b":
		return auth.Target{Repository: name}, true
	case "pub":
		return auth.Target{Repository: name, AnonymousRead: true}, true
	case "grp":
		if perm == auth.Read {
			return auth.Target{Repository: name}, true
		}
		return auth.Target{Repository: "a", Via: name}, true
	}
	return auth.Target{}, false
}

func bearer(t *testing.T, s *auth.Service, token string) (*auth.Principal, error) {
	t.Helper()
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return s.Authenticate(context.Background(), r)
}

func TestRegistryTokenGrantsOnlyWhatTheUserHolds(t *testing.T) {
	s, _ := registryEnv(t)
	ctx := context.Background()
	reader, err := s.CheckPassword(ctx, "reader", "reader-password")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := s.IssueRegistryToken(ctx, reader, "arca.test", []auth.Access{
		{Type: "repository", Name: "a/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "b/app", Actions: []string{"pull"}},
		{Type: "repository", Name: "pub/app", Actions: []string{"pull"}},
		{Type: "repository", Name: "missing/app", Actions: []string{"*"}},
	}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	p, err := bearer(t, s, token)
	if err != nil || p == nil || p.Name != "reader" {
		t.Fatalf("token check = %+v, %v", p, err)
	}
	cases := []struct {
		repo string
		anon bool
		perm auth.Permission
		want error
	}{
		{"a", false, auth.Read, nil},
		{"a", false, auth.Write, auth.ErrDenied}, // not held, so no token could grant it
		{"b", false, auth.Read, auth.ErrDenied},  // likewise
		{"pub", true, auth.Read, nil},
	}
	for _, c := range cases {
		err := auth.Authorize(p, auth.Target{Repository: c.repo, AnonymousRead: c.anon}, c.perm)
		t.Logf("%s %s: %v", c.perm, c.repo, err)
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s %s: %v, want %v", c.perm, c.repo, err, c.want)
		}
	}
}

func TestRegistryTokenBoundsAnAdmin(t *testing.T) {
	s, _ := registryEnv(t)
	ctx := context.Background()
	admin, err := s.CheckPassword(ctx, "admin", "admin-password")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := s.IssueRegistryToken(ctx, admin, "arca.test",
		[]auth.Access{{Type: "repository", Name: "a/app", Actions: []string{"*"}}}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	p, err := bearer(t, s, token)
	if err != nil || p == nil || !p.Admin {
		t.Fatalf("token check = %+v, %v", p, err)
	}
	for _, perm := range []auth.Permission{auth.Read, auth.Write, auth.Delete} {
		if err := auth.Authorize(p, auth.Target{Repository: "a"}, perm); err != nil {
			t.Errorf("%s on a: %v", perm, err)
		}
	}
	if err := auth.Authorize(p, auth.Target{Repository: "b"}, auth.Read); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("an admin's token scoped to a reads b: %v", err)
	}
}

func TestAnonymousAndBadRegistryTokens(t *testing.T) {
	s, dir := registryEnv(t)
	ctx := context.Background()
	token, _, err := s.IssueRegistryToken(ctx, nil, "arca.test",
		[]auth.Access{{Type: "repository", Name: "a/app", Actions: []string{"pull"}}}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := bearer(t, s, token); p != nil || err != nil {
		t.Fatalf("anonymous token = %+v, %v; want nil, nil", p, err)
	}
	for name, bad := range map[string]string{
		"garbage":  "not.a.token",
		"tampered": token[:len(token)-2] + "xx",
		"none alg": "eyJhbGciOiJub25lIn0.eyJpc3MiOiJhcmNhIiwic3ViIjoiYWRtaW4ifQ.",
	} {
		if _, err := bearer(t, s, bad); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s token: %v, want ErrUnauthenticated", name, err)
		}
	}

	// The key survives a restart: a new service over the same folder
	// accepts a token the old one issued.
	reader, _ := s.CheckPassword(ctx, "reader", "reader-password")
	token, _, _ = s.IssueRegistryToken(ctx, reader, "arca.test",
		[]auth.Access{{Type: "repository", Name: "a/app", Actions: []string{"pull"}}}, lookup)
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again := auth.NewService(db)
	if err := again.LoadRegistryKey(dir, ""); err != nil {
		t.Fatal(err)
	}
	if p, err := bearer(t, again, token); err != nil || p == nil || p.Name != "reader" {
		t.Fatalf("token after restart = %+v, %v", p, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "registry-token.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
}

// TestRegistryTokenMissingScopeAsksForAnother checks that a user who holds a
// permission the token was not asked for gets 401, so that the client
// fetches a token with that scope.
func TestRegistryTokenMissingScopeAsksForAnother(t *testing.T) {
	s, _ := registryEnv(t)
	ctx := context.Background()
	reader, err := s.CheckPassword(ctx, "reader", "reader-password")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := s.IssueRegistryToken(ctx, reader, "arca.test", nil, lookup)
	if err != nil {
		t.Fatal(err)
	}
	p, err := bearer(t, s, token)
	if err != nil || p == nil {
		t.Fatalf("token check = %+v, %v", p, err)
	}
	if err := auth.Authorize(p, auth.Target{Repository: "a"}, auth.Read); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("read on a with a token that lacks it: %v, want ErrUnauthenticated", err)
	}
}

// TestRegistryTokenForGroup: a write to a group is granted by the user's
// permission on the group's write member, and the token's scope, which
// names the group, then admits the write there through Target.Via.
func TestRegistryTokenForGroup(t *testing.T) {
	s, _ := registryEnv(t)
	ctx := context.Background()
	u := &auth.User{Name: "dev", Password: "dev-password", Permissions: []auth.Grant{
		{Repository: "grp", Actions: []string{"read"}}, {Repository: "a", Actions: []string{"read", "write"}}}}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, password string
		want           string
	}{
		{"dev", "dev-password", "pull,push"},
		{"reader", "reader-password", ""}, // no read on grp, no write on a
	} {
		p, err := s.CheckPassword(ctx, tt.user, tt.password)
		if err != nil {
			t.Fatal(err)
		}
		token, _, err := s.IssueRegistryToken(ctx, p, "arca.test",
			[]auth.Access{{Type: "repository", Name: "grp/app", Actions: []string{"pull", "push"}}}, lookup)
		if err != nil {
			t.Fatal(err)
		}
		bp, err := bearer(t, s, token)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if auth.Authorize(bp, auth.Target{Repository: "grp"}, auth.Read) == nil {
			got = append(got, "pull")
		}
		if auth.Authorize(bp, auth.Target{Repository: "a", Via: "grp"}, auth.Write) == nil {
			got = append(got, "push")
		}
		if s := strings.Join(got, ","); s != tt.want {
			t.Errorf("%s's token for grp allows %q, want %q", tt.user, s, tt.want)
		}
	}
}
