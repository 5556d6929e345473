package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/meta"
)

// testEnv is a Service over a real SQLite store and filesystem blob store.
type testEnv struct {
	svc   *Service
	db    *meta.DB
	blobs *blob.Store

	mu    sync.Mutex
	calls []json.RawMessage // sections the "test" format's validator saw
}

var errLevel = errors.New("level must not be negative")

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := filesystem.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{db: db, blobs: blob.NewStore(d)}
	e.svc = NewService(db, e.blobs)
	e.svc.RegisterFormat("raw", nil)
	e.svc.RegisterFormat("test", func(r *Repository, raw json.RawMessage) error {
		e.mu.Lock()
		e.calls = append(e.calls, raw)
		e.mu.Unlock()
		if raw == nil {
			return nil
		}
		var s struct{ Level int }
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if s.Level < 0 {
			return fmt.Errorf("%w: %w", ErrInvalid, errLevel)
		}
		return nil
	})
	if e.svc.Blobs() != e.blobs {
		t.Fatal("Blobs() is not the store the service was given")
	}
	return e
}

// create stores a definition read from JSON and returns the cached copy.
func (e *testEnv) create(t *testing.T, js string) *Repository {
	t.Helper()
	var r Repository
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("unmarshal %s: %v", js, err)
	}
	if err := e.svc.Create(context.Background(), &r); err != nil {
		t.Fatalf("Create %s: %v", js, err)
	}
	got, err := e.svc.Get(context.Background(), r.Name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"files", true},
		{"a.b-c_d", true},
		{"a", true},
		{"0", true},
		{"maven-central2", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{"A", false},
		{"Files", false},
		{"-a", false},
		{"a-", false},
		{".a", false},
		{"a..b", false},
		{"a-_b", false},
		{strings.Repeat("a", 65), false},
		{"token", false},
		{"_catalog", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
	}
	for _, tc := range tests {
		err := ValidName(tc.name)
		if tc.ok && err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func TestRepositoryUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		js   string
		want Repository
		bad  bool
	}{
		{
			name: "defaults",
			js:   `{"name":"a","format":"raw","type":"hosted"}`,
			want: Repository{Name: "a", Format: "raw", Type: Hosted, Online: true, WritePolicy: AllowOnce},
		},
		{
			name: "explicit",
			js:   `{"name":"a","format":"raw","type":"hosted","online":false,"anonymousRead":true,"writePolicy":"deny"}`,
			want: Repository{Name: "a", Format: "raw", Type: Hosted, Online: false, AnonymousRead: true, WritePolicy: Deny},
		},
		{
			name: "sections",
			js:   `{"name":"m","format":"maven","type":"proxy","maven":{"layout":"strict"},"proxy": {"url":"https://x"}}`,
			want: Repository{Name: "m", Format: "maven", Type: Proxy, Online: true, WritePolicy: AllowOnce,
				Sections: map[string]json.RawMessage{"maven": json.RawMessage(`{"layout":"strict"}`), "proxy": json.RawMessage(`{"url":"https://x"}`)}},
		},
		{name: "number field", js: `{"name":"a","format":"raw","type":"hosted","foo":1}`, bad: true},
		{name: "string field", js: `{"name":"a","format":"raw","type":"hosted","foo":"x"}`, bad: true},
		{name: "array field", js: `{"name":"a","format":"raw","type":"hosted","foo":[{}]}`, bad: true},
		{name: "null field", js: `{"name":"a","format":"raw","type":"hosted","foo":null}`, bad: true},
		{name: "wrong type", js: `{"name":"a","format":"raw","type":"hosted","online":"yes"}`, bad: true},
		{name: "not an object", js: `["a"]`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Repository
			err := json.Unmarshal([]byte(tc.js), &r)
			if tc.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("Unmarshal = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalRepo(r, tc.want) {
				t.Errorf("got  %+v\nwant %+v", r, tc.want)
			}
		})
	}
}

// equalRepo compares definitions, sections by their JSON meaning.
func equalRepo(a, b Repository) bool {
	if a.ID != b.ID || a.Name != b.Name || a.Format != b.Format || a.Type != b.Type ||
		a.Online != b.Online || a.AnonymousRead != b.AnonymousRead || a.WritePolicy != b.WritePolicy ||
		len(a.Sections) != len(b.Sections) {
		return false
	}
	for k, v := range a.Sections {
		w, ok := b.Sections[k]
		if !ok || !sameJSON(v, w) {
			return false
		}
	}
	return true
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func TestRepositoryUnmarshalMalformed(t *testing.T) {
	// json.Unmarshal rejects malformed input before calling UnmarshalJSON;
	// a decoder that hands the method bad bytes still gets ErrInvalid.
	for _, js := range []string{`{"name":`, `[]`, `"x"`} {
		var r Repository
		if err := r.UnmarshalJSON([]byte(js)); !errors.Is(err, ErrInvalid) {
			t.Errorf("UnmarshalJSON(%s) = %v, want ErrInvalid", js, err)
		}
	}
}

func TestRepositoryMarshal(t *testing.T) {
	plain := Repository{ID: 7, Name: "a", Format: "raw", Type: Hosted, Online: true, WritePolicy: Allow}
	b, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"a","format":"raw","type":"hosted","online":true,"anonymousRead":false,"writePolicy":"allow"}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}

	withSections := Repository{Name: "g", Format: "npm", Type: Group, Online: false, AnonymousRead: true,
		WritePolicy: Deny, Sections: map[string]json.RawMessage{
			"npm":   json.RawMessage(`{"a": [1, 2]}`),
			"group": json.RawMessage(`{"members":["x","y"]}`),
		}}
	b, err = json.Marshal(withSections)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Marshal gave invalid JSON %s: %v", b, err)
	}
	if _, ok := m["npm"].(map[string]any); !ok {
		t.Errorf("section npm missing in %s", b)
	}
	if _, ok := m["group"].(map[string]any); !ok {
		t.Errorf("section group missing in %s", b)
	}
	if len(m) != 8 {
		t.Errorf("%d keys in %s, want 8", len(m), b)
	}

	var back Repository
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !equalRepo(back, withSections) {
		t.Errorf("round trip: got %+v\nwant %+v", back, withSections)
	}
	// A second round trip gives the same bytes: sections are sorted.
	b2, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(b) {
		t.Errorf("second marshal differs:\n%s\n%s", b, b2)
	}

	// Sections follow the common settings in key order, every time.
	many := Repository{Name: "s", Format: "raw", Type: Hosted, WritePolicy: Allow, Sections: map[string]json.RawMessage{}}
	for _, k := range []string{"e", "a", "d", "c", "b"} {
		many.Sections[k] = json.RawMessage(`{"k":"` + k + `"}`)
	}
	want = `{"name":"s","format":"raw","type":"hosted","online":false,"anonymousRead":false,"writePolicy":"allow",` +
		`"a":{"k":"a"},"b":{"k":"b"},"c":{"k":"c"},"d":{"k":"d"},"e":{"k":"e"}}`
	for range 5 {
		b, err := json.Marshal(many)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Fatalf("Marshal = %s\nwant      %s", b, want)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tests := []struct {
		name string
		repo Repository
		ok   bool
	}{
		{"raw hosted", Repository{Name: "raw1", Format: "raw", Type: Hosted, Online: true, WritePolicy: AllowOnce}, true},
		{"raw proxy", Repository{Name: "raw2", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"https://x","metadataMaxAge":"1h"}`)}}, true},
		{"proxy without section", Repository{Name: "raw2a", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow}, false},
		{"proxy with relative url", Repository{Name: "raw2b", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"/x"}`)}}, false},
		{"proxy with credentials in url", Repository{Name: "raw2c", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"https://u:p@x"}`)}}, false},
		{"proxy with bad duration", Repository{Name: "raw2d", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"https://x","readTimeout":"soon"}`)}}, false},
		{"proxy with no connections", Repository{Name: "raw2e", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"https://x","maxConnections":0}`)}}, false},
		{"proxy with unknown key", Repository{Name: "raw2f", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"https://x","colour":"red"}`)}}, false},
		{"proxy password without user", Repository{Name: "raw2g2", Format: "raw", Type: Proxy, Online: true, WritePolicy: Allow,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{"url":"https://x","password":"p"}`)}}, false},
		{"group not served yet", Repository{Name: "raw2g", Format: "raw", Type: Group, Online: true,
			WritePolicy: Allow}, false},
		{"format section", Repository{Name: "raw3", Format: "raw", Type: Hosted, WritePolicy: Deny,
			Sections: map[string]json.RawMessage{"raw": json.RawMessage(`{}`)}}, true},
		{"unknown format", Repository{Name: "x1", Format: "nope", Type: Hosted, WritePolicy: AllowOnce}, false},
		{"unknown type", Repository{Name: "x2", Format: "raw", Type: "mirror", WritePolicy: AllowOnce}, false},
		{"bad write policy", Repository{Name: "x3", Format: "raw", Type: Hosted, WritePolicy: "sometimes"}, false},
		{"empty write policy", Repository{Name: "x4", Format: "raw", Type: Hosted}, false},
		{"bad name", Repository{Name: "Bad", Format: "raw", Type: Hosted, WritePolicy: AllowOnce}, false},
		{"foreign format section", Repository{Name: "x5", Format: "raw", Type: Hosted, WritePolicy: AllowOnce,
			Sections: map[string]json.RawMessage{"maven": json.RawMessage(`{}`)}}, false},
		{"other type section", Repository{Name: "x6", Format: "raw", Type: Hosted, WritePolicy: AllowOnce,
			Sections: map[string]json.RawMessage{"proxy": json.RawMessage(`{}`)}}, false},
		{"validator refuses", Repository{Name: "x7", Format: "test", Type: Hosted, WritePolicy: AllowOnce,
			Sections: map[string]json.RawMessage{"test": json.RawMessage(`{"level":-1}`)}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.repo
			err := e.svc.Create(ctx, &r)
			if tc.ok {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if r.ID == 0 {
					t.Error("Create did not set the id")
				}
				got, err := e.svc.Get(ctx, r.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !equalRepo(*got, r) {
					t.Errorf("Get = %+v, want %+v", *got, r)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Create = %v, want ErrInvalid", err)
			}
			if _, err := e.db.Queries().Repository(ctx, r.Name); !errors.Is(err, meta.ErrNotFound) {
				t.Errorf("refused definition was stored: %v", err)
			}
		})
	}

	dup := Repository{Name: "raw1", Format: "raw", Type: Hosted, WritePolicy: Allow}
	if err := e.svc.Create(ctx, &dup); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Create = %v, want ErrExists", err)
	}
}

func TestCreateCallsValidator(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := Repository{Name: "t1", Format: "test", Type: Hosted, WritePolicy: AllowOnce,
		Sections: map[string]json.RawMessage{"test": json.RawMessage(`{"level":3}`)}}
	if err := e.svc.Create(ctx, &r); err != nil {
		t.Fatal(err)
	}
	bad := Repository{Name: "t2", Format: "test", Type: Hosted, WritePolicy: AllowOnce,
		Sections: map[string]json.RawMessage{"test": json.RawMessage(`{"level":-2}`)}}
	if err := e.svc.Create(ctx, &bad); !errors.Is(err, errLevel) {
		t.Errorf("Create with a refused section = %v, want the validator's error", err)
	}
	none := Repository{Name: "t3", Format: "test", Type: Hosted, WritePolicy: AllowOnce}
	if err := e.svc.Create(ctx, &none); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.calls) != 3 {
		t.Fatalf("validator called %d times, want 3", len(e.calls))
	}
	if string(e.calls[0]) != `{"level":3}` || string(e.calls[1]) != `{"level":-2}` || e.calls[2] != nil {
		t.Errorf("validator saw %q", e.calls)
	}
}

func TestGetCachesAndUpdateDeleteInvalidate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"test","type":"hosted","test":{"level":1}}`)

	again, err := e.svc.Get(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if again != r {
		t.Error("second Get did not return the cached definition")
	}
	// A change behind the service's back is not seen: the cache answers.
	row, err := e.db.Queries().Repository(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	row.Settings = []byte(`{"online":false,"writePolicy":"deny"}`)
	if err := e.db.Queries().UpdateRepository(ctx, &row); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.Get(ctx, "files"); !got.Online {
		t.Error("Get read the database although the definition was cached")
	}

	up := *r
	up.Online = false
	up.WritePolicy = Allow
	up.Sections = map[string]json.RawMessage{"test": json.RawMessage(`{"level":9}`)}
	if err := e.svc.Update(ctx, &up); err != nil {
		t.Fatal(err)
	}
	if up.ID != r.ID {
		t.Errorf("Update set id %d, want %d", up.ID, r.ID)
	}
	got, err := e.svc.Get(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if got.Online || got.WritePolicy != Allow || !sameJSON(got.Sections["test"], []byte(`{"level":9}`)) || got.ID != r.ID {
		t.Errorf("Get after Update = %+v", got)
	}

	if err := e.svc.Delete(ctx, "files"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, "files"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := e.svc.Delete(ctx, "files"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	// A new repository of the same name is not served from a stale cache.
	re := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	if re.ID == r.ID || re.Format != "raw" {
		t.Errorf("recreated repository = %+v", re)
	}
}

func TestUpdateRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)

	changed := *r
	changed.Format = "test"
	if err := e.svc.Update(ctx, &changed); !errors.Is(err, ErrInvalid) {
		t.Errorf("format change = %v, want ErrInvalid", err)
	}
	bad := *r
	bad.WritePolicy = "never"
	if err := e.svc.Update(ctx, &bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad writePolicy = %v, want ErrInvalid", err)
	}
	got, err := e.svc.Get(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != "raw" || got.WritePolicy != AllowOnce {
		t.Errorf("refused updates changed the definition: %+v", got)
	}
	missing := Repository{Name: "missing", Format: "raw", Type: Hosted, WritePolicy: Allow}
	if err := e.svc.Update(ctx, &missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of a missing repository = %v, want ErrNotFound", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, n := range []string{"c", "a", "b"} {
		e.create(t, `{"name":"`+n+`","format":"raw","type":"hosted","writePolicy":"allow"}`)
	}
	rs, err := e.svc.List(ctx, "a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Name != "b" || rs[1].Name != "c" {
		t.Fatalf("List = %+v", rs)
	}
	if rs[0].ID == 0 || rs[0].WritePolicy != Allow || !rs[0].Online {
		t.Errorf("listed definition incomplete: %+v", rs[0])
	}
}

// TestGetReadBeforeUpdateIsNotCached makes an Update land exactly between
// a Get's database read and its cache store.
func TestGetReadBeforeUpdateIsNotCached(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	e.svc.forget("files") // the next Get reads the database

	fired := false
	testHookGetRead = func(string) {
		if fired {
			return
		}
		fired = true
		up := *r
		up.WritePolicy = Deny
		if err := e.svc.Update(ctx, &up); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookGetRead = nil })

	old, err := e.svc.Get(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if !fired {
		t.Fatal("Get did not read the database")
	}
	if old.WritePolicy != AllowOnce {
		t.Fatalf("the racing Get read %q, want the definition before the update", old.WritePolicy)
	}
	got, err := e.svc.Get(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if got.WritePolicy != Deny {
		t.Errorf("Get after Update serves writePolicy %q, want deny", got.WritePolicy)
	}
}

// TestGetUpdateRace checks that a Get racing an Update cannot leave an old
// definition in the cache: a Get that read the row before an Update
// committed must not store it after the Update cleared the cache.
func TestGetUpdateRace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.create(t, `{"name":"files","format":"raw","type":"hosted"}`)
	for round := range 6 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := e.svc.Get(ctx, "files"); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		// Back-to-back updates: each empties the cache, so the readers
		// go to the database while the next update commits.
		var last Repository
		for i := range 10 {
			last = *r
			last.AnonymousRead = i%2 == 0
			last.WritePolicy = []WritePolicy{AllowOnce, Allow, Deny}[i%3]
			if err := e.svc.Update(ctx, &last); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		got, err := e.svc.Get(ctx, "files")
		if err != nil {
			t.Fatal(err)
		}
		if got.AnonymousRead != last.AnonymousRead || got.WritePolicy != last.WritePolicy {
			t.Fatalf("round %d: Get after Update serves a stale definition %+v", round, got)
		}
	}
}
