package auth_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"arca/internal/auth"
	"arca/internal/meta"
)

// newService returns an auth service over a fresh SQLite database, and the
// data folder it lives in.
func newService(t *testing.T) (*auth.Service, *meta.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(context.Background(), filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return auth.NewService(db), db, dir
}

func TestBootstrapWithPassword(t *testing.T) {
	t.Parallel()
	s, _, dir := newService(t)
	ctx := context.Background()
	where, err := s.Bootstrap(ctx, dir, "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if where != "ARCA_ADMIN_PASSWORD" {
		t.Errorf("Bootstrap says the password is at %q, want ARCA_ADMIN_PASSWORD", where)
	}
	if _, err := os.Stat(filepath.Join(dir, auth.AdminPasswordFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a given password was written to a file: %v", err)
	}
	tests := []struct {
		name, user, password string
		wantErr              error
	}{
		{"right password", "admin", "hunter2", nil},
		{"wrong password", "admin", "hunter3", auth.ErrUnauthenticated},
		{"empty password", "admin", "", auth.ErrUnauthenticated},
		{"unknown user", "root", "hunter2", auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.CheckPassword(ctx, tt.user, tt.password)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || p != nil {
					t.Fatalf("CheckPassword = %v, %v; want nil, %v", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p == nil || p.Name != "admin" || !p.Admin {
				t.Errorf("principal = %+v, want admin with Admin set", p)
			}
		})
	}
}

func TestBootstrapGeneratesPassword(t *testing.T) {
	t.Parallel()
	s, _, dir := newService(t)
	ctx := context.Background()
	where, err := s.Bootstrap(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, auth.AdminPasswordFile)
	if where != file {
		t.Errorf("Bootstrap says the password is at %q, want %q", where, file)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(b))
	if len(password) < 16 {
		t.Fatalf("generated password %q is too short", password)
	}
	if _, err := s.CheckPassword(ctx, "admin", password); err != nil {
		t.Errorf("the written password does not work: %v", err)
	}
	if _, err := s.CheckPassword(ctx, "admin", password+"x"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("a wrong password: err = %v, want ErrUnauthenticated", err)
	}
}

func TestBootstrapTwiceKeepsPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		first, second string
	}{
		{"given then other given", "first-pw", "second-pw"},
		{"given then generated", "first-pw", ""},
		{"generated then given", "", "second-pw"},
		{"generated then generated", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db, dir := newService(t)
			ctx := context.Background()
			if _, err := s.Bootstrap(ctx, dir, tt.first); err != nil {
				t.Fatal(err)
			}
			first := tt.first
			if first == "" {
				b, err := os.ReadFile(filepath.Join(dir, auth.AdminPasswordFile))
				if err != nil {
					t.Fatal(err)
				}
				first = strings.TrimSpace(string(b))
			}
			// A fresh service, as after a restart, so that no remembered
			// check hides the stored hash.
			s2 := auth.NewService(db)
			if _, err := s2.Bootstrap(ctx, dir, tt.second); err != nil {
				t.Fatal(err)
			}
			if tt.first == "" {
				b, err := os.ReadFile(filepath.Join(dir, auth.AdminPasswordFile))
				if err != nil || strings.TrimSpace(string(b)) != first {
					t.Errorf("password file changed: %q, %v", b, err)
				}
			}
			if _, err := s2.CheckPassword(ctx, "admin", first); err != nil {
				t.Errorf("the first password no longer works: %v", err)
			}
			if tt.second != "" {
				if _, err := s2.CheckPassword(ctx, "admin", tt.second); !errors.Is(err, auth.ErrUnauthenticated) {
					t.Errorf("the second password works: err = %v", err)
				}
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s, _, dir := newService(t)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, dir, "secret"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		setup     func(r *http.Request)
		wantAdmin bool // a principal named admin is expected
		wantErr   error
	}{
		{"no header", func(r *http.Request) {}, false, nil},
		{"basic good", func(r *http.Request) { r.SetBasicAuth("admin", "secret") }, true, nil},
		{"basic wrong password", func(r *http.Request) { r.SetBasicAuth("admin", "Secret") }, false, auth.ErrUnauthenticated},
		{"basic unknown user", func(r *http.Request) { r.SetBasicAuth("nobody", "secret") }, false, auth.ErrUnauthenticated},
		{"basic empty", func(r *http.Request) { r.SetBasicAuth("", "") }, false, auth.ErrUnauthenticated},
		{"basic malformed", func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }, false, auth.ErrUnauthenticated},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc.def.ghi") }, false, auth.ErrUnauthenticated},
		{"unknown scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, false, auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://arca.test/", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(r)
			p, err := s.Authenticate(ctx, r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || p != nil {
					t.Fatalf("Authenticate = %+v, %v; want nil, %v", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if tt.wantAdmin {
				if p == nil || p.Name != "admin" || !p.Admin {
					t.Errorf("principal = %+v, want admin", p)
				}
			} else if p != nil {
				t.Errorf("principal = %+v, want nil (anonymous)", p)
			}
		})
	}
}

// TestRememberedCheck makes sure that remembering a right password never
// lets a wrong one through, for the same user or another.
func TestRememberedCheck(t *testing.T) {
	t.Parallel()
	s, _, dir := newService(t)
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx, dir, "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckPassword(ctx, "admin", "secret"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
		wantOK               bool
	}{
		{"right again", "admin", "secret", true},
		{"wrong after right", "admin", "secreT", false},
		{"prefix of the right one", "admin", "secre", false},
		{"right one extended", "admin", "secret\x00", false},
		{"user and password shifted", "admin\x00secret", "", false},
		{"other user, same password", "guest", "secret", false},
		{"right once more", "admin", "secret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.CheckPassword(ctx, tt.user, tt.password)
			if tt.wantOK {
				if err != nil || p == nil || p.Name != "admin" {
					t.Fatalf("CheckPassword = %+v, %v; want admin", p, err)
				}
				return
			}
			if !errors.Is(err, auth.ErrUnauthenticated) || p != nil {
				t.Fatalf("CheckPassword = %+v, %v; want ErrUnauthenticated", p, err)
			}
		})
	}

	// The returned principal is a copy: changing it must not change what
	// is remembered.
	p, err := s.CheckPassword(ctx, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	p.Admin = false
	p.Name = "mallory"
	if p2, err := s.CheckPassword(ctx, "admin", "secret"); err != nil || p2.Name != "admin" || !p2.Admin {
		t.Errorf("remembered principal was changed through a returned pointer: %+v, %v", p2, err)
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	admin := &auth.Principal{Name: "admin", Admin: true}
	user := &auth.Principal{Name: "alice"}
	public := auth.Target{Repository: "public", AnonymousRead: true}
	private := auth.Target{Repository: "private"}
	tests := []struct {
		name    string
		p       *auth.Principal
		target  auth.Target
		perm    auth.Permission
		wantErr error
	}{
		{"anonymous read with anonymousRead", nil, public, auth.Read, nil},
		{"anonymous read without anonymousRead", nil, private, auth.Read, auth.ErrUnauthenticated},
		{"anonymous write with anonymousRead", nil, public, auth.Write, auth.ErrUnauthenticated},
		{"anonymous write", nil, private, auth.Write, auth.ErrUnauthenticated},
		{"anonymous delete with anonymousRead", nil, public, auth.Delete, auth.ErrUnauthenticated},
		{"anonymous admin", nil, private, auth.Admin, auth.ErrUnauthenticated},
		{"admin read", admin, private, auth.Read, nil},
		{"admin write", admin, private, auth.Write, nil},
		{"admin delete", admin, private, auth.Delete, nil},
		{"admin admin", admin, private, auth.Admin, nil},
		{"user read public", user, public, auth.Read, nil},
		{"user read private", user, private, auth.Read, auth.ErrDenied},
		{"user write public", user, public, auth.Write, auth.ErrDenied},
		{"user write private", user, private, auth.Write, auth.ErrDenied},
		{"user delete", user, private, auth.Delete, auth.ErrDenied},
		{"user admin", user, private, auth.Admin, auth.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.Authorize(tt.p, tt.target, tt.perm)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Authorize = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authorize = %v, want %v", err, tt.wantErr)
			}
			// The two outcomes must stay distinct: 401 and 403.
			other := auth.ErrDenied
			if tt.wantErr == auth.ErrDenied {
				other = auth.ErrUnauthenticated
			}
			if errors.Is(err, other) {
				t.Errorf("Authorize = %v, which is also %v", err, other)
			}
		})
	}
}
