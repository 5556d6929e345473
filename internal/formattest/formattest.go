// Package formattest runs a format behind arca's real HTTP edge, over
// stores in a temporary folder, for the format's own tests.
package formattest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/format"
	"arca/internal/meta"
	"arca/internal/proxy"
	"arca/internal/repo"
	"arca/internal/server"
)

// AdminPassword is the password of the user "admin" that Serve creates.
const AdminPassword = "secret"

// Env is a running test server.
type Env struct {
	// URL is the server's base URL, without a trailing slash.
	URL   string
	DB    *meta.DB
	Repos *repo.Service
	Auth  *auth.Service
}

// Serve starts a server with the one format that newFormat returns, and
// the administrator "admin" (AdminPassword). newFormat gets the services,
// and a proxy cache for proxy repositories. Everything stops when the test
// ends.
func Serve(t testing.TB, newFormat func(*repo.Service, *auth.Service, *proxy.Service) format.Format) *Env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	driver, err := filesystem.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := blob.NewStore(driver)
	repos := repo.NewService(db, blobs)
	if err := repos.SetSecretKey(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	authn := auth.NewService(db)
	cache, err := proxy.New(repos, filepath.Join(dir, "spool"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f := newFormat(repos, authn, cache)
	repos.RegisterFormat(f.ID(), f.ValidateSettings)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := server.New(server.Options{}, log, server.Services{DB: db, Blobs: blobs, Repos: repos,
		Auth: authn, Audit: audit.New(db, log), Cache: cache}, []format.Format{f})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); db.Close() })
	hash, err := bcrypt.GenerateFromPassword([]byte(AdminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := authn.CreateUser(ctx, &auth.User{Name: "admin", PasswordHash: string(hash), Admin: true}); err != nil {
		t.Fatal(err)
	}
	return &Env{URL: ts.URL, DB: db, Repos: repos, Auth: authn}
}

// Create creates a repository from its JSON definition, as the REST API
// would, and returns it.
func (e *Env) Create(t testing.TB, definition string) *repo.Repository {
	t.Helper()
	r := &repo.Repository{}
	if err := r.UnmarshalJSON([]byte(definition)); err != nil {
		t.Fatal(err)
	}
	if err := e.Repos.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}
