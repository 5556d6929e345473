package meta

import (
	"context"
	"crypto/md5"  //nolint:gosec // test digests only
	"crypto/sha1" //nolint:gosec // test digests only
	"crypto/sha256"
	"crypto/sha512"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"arca/internal/blob"
)

// openTest opens a fresh SQLite store in a temporary folder.
func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// infoOf returns the real digests of s.
func infoOf(s string) blob.Info {
	b := []byte(s)
	s256 := sha256.Sum256(b)
	s512 := sha512.Sum512(b)
	s1 := sha1.Sum(b) //nolint:gosec // test digests only
	m5 := md5.Sum(b)  //nolint:gosec // test digests only
	return blob.Info{Size: int64(len(b)), Digests: blob.Digests{
		SHA256: hex.EncodeToString(s256[:]), SHA512: hex.EncodeToString(s512[:]),
		SHA1: hex.EncodeToString(s1[:]), MD5: hex.EncodeToString(m5[:]),
	}}
}

// mustRepo creates a repository called name.
func mustRepo(t *testing.T, q Queries, name string) Repository {
	t.Helper()
	r := Repository{Name: name, Format: "raw", Type: "hosted", Settings: []byte(`{"name":"` + name + `"}`)}
	if err := q.CreateRepository(context.Background(), &r); err != nil {
		t.Fatalf("CreateRepository(%s): %v", name, err)
	}
	return r
}

func count(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.sql.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestMigrationsApplyOnceAndReopenIsNoOp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	latest := len(migrations) - 1

	db, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("first open: %v", err)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM schema_migrations`); got != latest {
		t.Fatalf("schema_migrations rows after first open = %d, want %d", got, latest)
	}
	for _, table := range []string{"repositories", "blobs", "repository_blobs", "components", "assets", "users"} {
		if n := count(t, db, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table); n != 1 {
			t.Errorf("table %s missing after migration", table)
		}
	}
	mustRepo(t, db.Queries(), "kept")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	var rows, maxVersion int
	err = db.sql.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&rows, &maxVersion)
	if err != nil {
		t.Fatal(err)
	}
	if rows != latest || maxVersion != latest {
		t.Errorf("after reopen: %d rows, max version %d; want %d and %d", rows, maxVersion, latest, latest)
	}
	if _, err := db.Queries().Repository(ctx, "kept"); err != nil {
		t.Errorf("data lost on reopen: %v", err)
	}
}

func TestWALMode(t *testing.T) {
	db := openTest(t)
	var mode string
	if err := db.sql.QueryRowContext(context.Background(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var fk int
	if err := db.sql.QueryRowContext(context.Background(), `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d, want 1", fk)
	}
	if db.Dialect() != "sqlite" {
		t.Errorf("Dialect() = %q", db.Dialect())
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	future := len(migrations)
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, future); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = OpenSQLite(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("opening a database with a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestRepositoryCRUD(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()

	r := Repository{Name: "files", Format: "raw", Type: "hosted", Settings: []byte(`{"a":1}`)}
	before := time.Now()
	if err := q.CreateRepository(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if r.ID == 0 || r.CreatedAt.Before(before.Add(-time.Second)) || !r.CreatedAt.Equal(r.UpdatedAt) {
		t.Errorf("created repository: id %d, created %v, updated %v", r.ID, r.CreatedAt, r.UpdatedAt)
	}

	got, err := q.Repository(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Name != "files" || got.Format != "raw" || got.Type != "hosted" ||
		string(got.Settings) != `{"a":1}` || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("Repository = %+v, want %+v", got, r)
	}

	dup := Repository{Name: "files", Format: "raw", Type: "proxy", Settings: []byte(`{}`)}
	if err := q.CreateRepository(ctx, &dup); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate CreateRepository: %v, want ErrExists", err)
	}
	if _, err := q.Repository(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Repository(missing): %v, want ErrNotFound", err)
	}

	time.Sleep(2 * time.Millisecond)
	up := Repository{Name: "files", Format: "raw", Type: "proxy", Settings: []byte(`{"a":2}`)}
	if err := q.UpdateRepository(ctx, &up); err != nil {
		t.Fatal(err)
	}
	got, err = q.Repository(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "proxy" || string(got.Settings) != `{"a":2}` || !got.UpdatedAt.After(got.CreatedAt) ||
		!got.CreatedAt.Equal(r.CreatedAt) || got.ID != r.ID {
		t.Errorf("after update: %+v", got)
	}
	missing := Repository{Name: "missing", Type: "hosted", Settings: []byte(`{}`)}
	if err := q.UpdateRepository(ctx, &missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateRepository(missing): %v, want ErrNotFound", err)
	}

	if err := q.DeleteRepository(ctx, "files"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Repository(ctx, "files"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Repository after delete: %v, want ErrNotFound", err)
	}
	if err := q.DeleteRepository(ctx, "files"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteRepository: %v, want ErrNotFound", err)
	}
}

func TestListRepositoriesPagination(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	for _, name := range []string{"c", "a", "e", "b", "d"} {
		mustRepo(t, q, name)
	}
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 2, []string{"a", "b"}},
		{"b", 2, []string{"c", "d"}},
		{"d", 2, []string{"e"}},
		{"e", 2, nil},
		{"", 10, []string{"a", "b", "c", "d", "e"}},
		{"bb", 1, []string{"c"}},
		{"", 0, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after=%q,limit=%d", tc.after, tc.limit), func(t *testing.T) {
			rs, err := q.ListRepositories(ctx, tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range rs {
				names = append(names, r.Name)
				if r.ID == 0 || r.Format != "raw" {
					t.Errorf("incomplete row %+v", r)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("names = %v, want %v", names, tc.want)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	for _, u := range []User{
		{Name: "admin", PasswordHash: "hash-a", Admin: true},
		{Name: "reader", PasswordHash: "hash-r", Admin: false},
	} {
		if err := q.CreateUser(ctx, &u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
		if u.ID == 0 || u.CreatedAt.IsZero() {
			t.Errorf("CreateUser did not set ID and time: %+v", u)
		}
		got, err := q.User(ctx, u.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || got.Name != u.Name || got.PasswordHash != u.PasswordHash ||
			got.Admin != u.Admin || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("User(%s) = %+v, want %+v", u.Name, got, u)
		}
	}
	dup := User{Name: "admin", PasswordHash: "other"}
	if err := q.CreateUser(ctx, &dup); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate CreateUser: %v, want ErrExists", err)
	}
	if got, _ := q.User(ctx, "admin"); got.PasswordHash != "hash-a" {
		t.Errorf("duplicate create changed the user: %+v", got)
	}
	if _, err := q.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("User(nobody): %v, want ErrNotFound", err)
	}
}

func TestGrantsOfUsers(t *testing.T) {
	ctx := context.Background()
	q := openTest(t).Queries()
	for _, name := range []string{"files", "docs"} {
		if err := q.CreateRepository(ctx, &Repository{Name: name, Format: "raw", Type: "hosted", Settings: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	users := map[string]*User{}
	for _, name := range []string{"a", "b", "none"} {
		u := &User{Name: name, PasswordHash: "h"}
		if err := q.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	if err := q.SetGrants(ctx, users["a"].ID, []Grant{{Repository: "files", Actions: []string{"read", "write"}}, {Repository: "docs", Actions: []string{"read"}}}); err != nil {
		t.Fatal(err)
	}
	if err := q.SetGrants(ctx, users["b"].ID, []Grant{{Repository: "docs", Actions: []string{"read"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := q.GrantsOfUsers(ctx, []int64{users["a"].ID, users["b"].ID, users["none"].ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "none"} {
		want, err := q.Grants(ctx, users[name].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			want = nil
		}
		if !reflect.DeepEqual(got[users[name].ID], want) {
			t.Errorf("grants of %s = %+v, want %+v", name, got[users[name].ID], want)
		}
	}
	if len(got[users["a"].ID]) != 2 {
		t.Errorf("grants of a = %+v, want 2", got[users["a"].ID])
	}
	if got, err := q.GrantsOfUsers(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no users: %v, %v", got, err)
	}
}

func TestWithTx(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	b := infoOf("tx blob")
	boom := errors.New("boom")

	err := db.WithTx(ctx, func(q Queries) error {
		r := mustRepo(t, q, "rolled")
		if err := q.PutBlob(ctx, b); err != nil {
			return err
		}
		if err := q.LinkBlob(ctx, r.ID, b.SHA256); err != nil {
			return err
		}
		// Writes are visible inside the transaction.
		if _, err := q.Repository(ctx, "rolled"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx returned %v, want fn's error", err)
	}
	if _, err := db.Queries().Repository(ctx, "rolled"); !errors.Is(err, ErrNotFound) {
		t.Errorf("repository survived rollback: %v", err)
	}
	if _, err := db.Queries().BlobByDigest(ctx, blob.SHA256, b.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("blob survived rollback: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM repository_blobs`); n != 0 {
		t.Errorf("%d links survived rollback", n)
	}

	var id int64
	err = db.WithTx(ctx, func(q Queries) error {
		r := mustRepo(t, q, "committed")
		id = r.ID
		if err := q.PutBlob(ctx, b); err != nil {
			return err
		}
		return q.LinkBlob(ctx, r.ID, b.SHA256)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Queries().Repository(ctx, "committed"); err != nil {
		t.Errorf("committed repository missing: %v", err)
	}
	if linked, err := db.Queries().BlobLinked(ctx, id, b.SHA256); err != nil || !linked {
		t.Errorf("committed link: %v, %v", linked, err)
	}
}

func TestWithTxPanicReleasesTransaction(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic did not propagate")
			}
		}()
		db.WithTx(ctx, func(q Queries) error { //nolint:errcheck // it panics
			mustRepo(t, q, "half")
			panic("in the middle")
		})
	}()
	// A transaction left open would hold SQLite's write lock and make this
	// write wait for the busy timeout and fail.
	ctx2, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.WithTx(ctx2, func(q Queries) error {
		mustRepo(t, q, "after")
		return nil
	}); err != nil {
		t.Fatalf("write after a panicking transaction: %v", err)
	}
	if _, err := db.Queries().Repository(ctx, "half"); !errors.Is(err, ErrNotFound) {
		t.Errorf("write of the panicking transaction survived: %v", err)
	}
}

func TestConcurrentTransactions(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	shared := infoOf("shared")
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = db.WithTx(ctx, func(q Queries) error {
				r := Repository{Name: fmt.Sprintf("r%d", i), Format: "raw", Type: "hosted", Settings: []byte(`{}`)}
				if err := q.CreateRepository(ctx, &r); err != nil {
					return err
				}
				own := infoOf(fmt.Sprintf("own %d", i))
				for _, b := range []blob.Info{shared, own} {
					if err := q.PutBlob(ctx, b); err != nil {
						return err
					}
					if err := q.LinkBlob(ctx, r.ID, b.SHA256); err != nil {
						return err
					}
				}
				a := Asset{RepositoryID: r.ID, Path: "p", Blob: own, ContentType: "x", Uploader: "u"}
				return q.PutAsset(ctx, &a)
			})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	rs, err := db.Queries().ListRepositories(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != n {
		t.Errorf("%d repositories, want %d", len(rs), n)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM blobs`); got != n+1 {
		t.Errorf("%d blobs, want %d", got, n+1)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM repository_blobs`); got != 2*n {
		t.Errorf("%d links, want %d", got, 2*n)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM assets`); got != n {
		t.Errorf("%d assets, want %d", got, n)
	}
}

func TestRebind(t *testing.T) {
	tests := []struct {
		d     dialect
		query string
		want  string
	}{
		{postgres, "? ?", "$1 $2"},
		{postgres, "SELECT a FROM t WHERE x = ? AND y = ?", "SELECT a FROM t WHERE x = $1 AND y = $2"},
		{postgres, "SELECT 1", "SELECT 1"},
		{postgres, "(?,?,?,?,?,?,?,?,?,?,?)", "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"},
		{postgres, "'é' = ?", "'é' = $1"},
		{sqlite, "? ?", "? ?"},
	}
	for _, tc := range tests {
		if got := tc.d.rebind(tc.query); got != tc.want {
			t.Errorf("%s.rebind(%q) = %q, want %q", tc.d.name, tc.query, got, tc.want)
		}
	}
	if got := postgres.ddl("id {{serial}}"); !strings.Contains(got, "IDENTITY") {
		t.Errorf("postgres ddl = %q", got)
	}
	if got := sqlite.ddl("id {{serial}}"); got != "id INTEGER PRIMARY KEY AUTOINCREMENT" {
		t.Errorf("sqlite ddl = %q", got)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix string
		want   string
		ok     bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"a/", "a0", true},
		{"abc", "abd", true},
		{"a\xff", "b", true},
		{"ab\xff\xff", "ac", true},
		{"\xff", "", false},
		{"\xff\xff\xff", "", false},
		{"\x00", "\x01", true},
		{"é", "\xc3\xaa", true},
	}
	for _, tc := range tests {
		got, ok := prefixEnd(tc.prefix)
		if got != tc.want || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.prefix, got, ok, tc.want, tc.ok)
		}
		if ok && !(got > tc.prefix && got > tc.prefix+"\xff\xff") {
			t.Errorf("prefixEnd(%q) = %q is not above every extension", tc.prefix, got)
		}
	}
}

func TestIsUniqueViolation(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{sql.ErrNoRows, false},
		{errors.New("constraint failed: UNIQUE constraint failed: users.name (2067)"), true},
		{errors.New(`ERROR: duplicate key value violates unique constraint "users_name_key"`), true},
	}
	for _, tc := range tests {
		if got := isUniqueViolation(tc.err); got != tc.want {
			t.Errorf("isUniqueViolation(%v) = %v", tc.err, got)
		}
	}
}

func TestTimesRoundTrip(t *testing.T) {
	if nanos(time.Time{}) != 0 || !fromNanos(0).IsZero() {
		t.Error("zero time is not stored as 0")
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	if got := fromNanos(nanos(at)); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("round trip of %v gave %v", at, got)
	}
}
