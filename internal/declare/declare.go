// Package declare applies the repositories and users that the configuration
// file declares, so that a deployment can be kept in version control.
//
// Parse turns the file's declarations (config.Repository, config.User) into
// definitions and checks them without any store: `arca config check` stops
// there. Apply then brings the stores in line at start: it creates every
// declared repository that is missing and updates one whose settings
// differ, then does the same for users (admin flag, permissions, password),
// in file order, repositories first so that permissions can name them.
// Nothing that is not declared is ever changed or deleted.
//
// A repository definition has the shape the REST API takes; it is decoded by
// repo.Repository itself, so that format and type sections pass through to
// the format that owns them while an unknown common key is still an error.
package declare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/config"
	"arca/internal/meta"
	"arca/internal/repo"
)

// Formats maps every known format id to the validator of its settings
// section (nil when it has none), as the formats register them with
// repo.Service.
type Formats map[string]repo.SectionValidator

// Declarations are checked declarations, ready to apply.
type Declarations struct {
	repos []repository
	users []user
}

type repository struct {
	def *repo.Repository
	pos config.Pos
}

type user struct {
	def      auth.User // name, admin flag and permissions
	hash     string    // from passwordHash
	password string    // read from passwordFile
	pos      config.Pos
	grants   []config.Grant
}

// Empty reports whether nothing is declared.
func (d *Declarations) Empty() bool { return len(d.repos) == 0 && len(d.users) == 0 }

// Parse decodes and checks the declarations without touching any store, and
// returns every problem found, each naming the file, line and item.
// formats are the formats the server knows.
func Parse(repos []config.Repository, users []config.User, formats Formats) (*Declarations, error) {
	d := &Declarations{}
	var errs []error
	seenRepo := map[string]config.Pos{}
	for _, c := range repos {
		r, err := checkRepository(c, formats)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := seenRepo[r.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: repository %q is declared twice (first on line %d)",
				c.Pos, r.Name, first.Line))
			continue
		}
		seenRepo[r.Name] = c.Pos
		d.repos = append(d.repos, repository{def: r, pos: c.Pos})
	}
	seenUser := map[string]config.Pos{}
	for _, c := range users {
		u, err := checkUser(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := seenUser[c.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: user %q is declared twice (first on line %d)",
				c.Pos, c.Name, first.Line))
			continue
		}
		seenUser[c.Name] = c.Pos
		d.users = append(d.users, u)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// checkRepository decodes a definition as the REST API would and checks it
// with repo.Repository.Check, naming the line of the key at fault.
func checkRepository(c config.Repository, formats Formats) (*repo.Repository, error) {
	fail := func(key string, err error) error {
		what := "repository"
		if c.Name != "" {
			what = fmt.Sprintf("repository %q", c.Name)
		}
		return fmt.Errorf("%s: %s: %w", config.Pos{File: c.Pos.File, Line: c.KeyLine(key)}, what, err)
	}
	r := &repo.Repository{}
	if err := json.Unmarshal(c.JSON, r); err != nil {
		return nil, fail(culprit(c), err)
	}
	if err := r.Check(formats); err != nil {
		field := ""
		var fe *repo.FieldError
		if errors.As(err, &fe) {
			field = fe.Field
		}
		return nil, fail(field, err)
	}
	return r, nil
}

// culprit finds the top-level key that repo.Repository refuses, by decoding
// each key alone; "" when none is refused alone.
func culprit(c config.Repository) string {
	var all map[string]json.RawMessage
	if json.Unmarshal(c.JSON, &all) != nil {
		return ""
	}
	best := ""
	for k, v := range all {
		one, err := json.Marshal(map[string]json.RawMessage{k: v})
		if err != nil || json.Unmarshal(one, &repo.Repository{}) == nil {
			continue
		}
		if best == "" || c.KeyLine(k) < c.KeyLine(best) {
			best = k
		}
	}
	return best
}

// checkUser checks a user and reads its password file, returning every
// problem found.
func checkUser(c config.User) (user, error) {
	var errs []error
	fail := func(pos config.Pos, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: user %q: %s", pos, c.Name, fmt.Sprintf(format, args...)))
	}
	if err := auth.ValidUserName(c.Name); err != nil {
		fail(c.Pos, "%v", err)
	}
	u := user{def: auth.User{Name: c.Name, Admin: c.Admin, Permissions: []auth.Grant{}},
		hash: c.PasswordHash, pos: c.Pos, grants: c.Permissions}
	switch {
	case c.PasswordHash != "" && c.PasswordFile != "":
		fail(c.Pos, "give passwordHash or passwordFile, not both")
	case c.PasswordHash != "":
		if err := auth.ValidPasswordHash(c.PasswordHash); err != nil {
			fail(c.Pos, "passwordHash: %v", err)
		}
	case c.PasswordFile != "":
		pw, err := config.ReadSecretFile(c.PasswordFile)
		switch {
		case err != nil:
			fail(c.Pos, "passwordFile: %v", err)
		case auth.ValidPassword(pw) != nil:
			fail(c.Pos, "passwordFile %s: %v", c.PasswordFile, auth.ValidPassword(pw))
		}
		u.password = pw
	}
	seen := map[string]bool{}
	for _, g := range c.Permissions {
		pos := g.Pos
		if pos.Line == 0 {
			pos = c.Pos
		}
		if err := repo.ValidName(g.Repository); err != nil {
			fail(pos, "permission: %v", err)
		}
		if seen[g.Repository] {
			fail(pos, "repository %s has two permissions; list its actions once", g.Repository)
		}
		seen[g.Repository] = true
		if err := auth.ValidGrant(auth.Grant{Repository: g.Repository, Actions: g.Actions}); err != nil {
			fail(pos, "%v", err)
		}
		u.def.Permissions = append(u.def.Permissions,
			auth.Grant{Repository: g.Repository, Actions: slices.Clone(g.Actions)})
	}
	return u, errors.Join(errs...)
}

// Stores are what Apply reads and changes.
type Stores struct {
	// DB is read for the stored password hashes, to tell whether a
	// declared password changed.
	DB    *meta.DB
	Repos *repo.Service
	Auth  *auth.Service
	// Audit, when set, records every change as made by "configuration".
	Audit *audit.Log
}

// step is one change Apply makes.
type step struct {
	kind, name, verb string // "repository"/"user", name, "created"/"updated"
	pos              config.Pos
	changed          []string
	do               func(ctx context.Context) error
}

// Apply creates or updates every declaration, repositories first, each in
// file order, and logs one line per item it changes. It first plans every
// change, so that a problem it can foresee (a format that would change, a
// permission on a repository that neither is declared nor exists, a new
// user without a password) changes nothing; all such problems are returned
// together.
func (d *Declarations) Apply(ctx context.Context, st Stores, log *slog.Logger) error {
	steps, err := d.plan(ctx, st)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if err := s.do(ctx); err != nil {
			return fmt.Errorf("%s: %s %q: %w", s.pos, s.kind, s.name, err)
		}
		attrs := []any{s.kind, s.name, "source", s.pos.String()}
		if len(s.changed) > 0 {
			attrs = append(attrs, "changed", strings.Join(s.changed, ","))
		}
		log.Info("declared "+s.kind+" "+s.verb, attrs...)
		if st.Audit != nil {
			e := audit.Event{Actor: "configuration", Action: s.kind + "." + auditVerb[s.verb],
				Remote: s.pos.String(), Outcome: audit.Success, Detail: strings.Join(s.changed, ",")}
			if s.kind == "repository" {
				e.Repository = s.name
			} else {
				e.Path = s.kind + "/" + s.name
			}
			st.Audit.Record(ctx, e)
		}
	}
	return nil
}

// auditVerb names a step's verb as the audit log's actions do.
var auditVerb = map[string]string{"created": "create", "updated": "update"}

func (d *Declarations) plan(ctx context.Context, st Stores) ([]step, error) {
	var steps []step
	var errs []error
	declared := map[string]bool{}
	for _, r := range d.repos {
		declared[r.def.Name] = true
		s, err := planRepository(ctx, st, r)
		if err != nil {
			if !errors.Is(err, repo.ErrInvalid) {
				return nil, err // the store failed
			}
			errs = append(errs, fmt.Errorf("%s: repository %q: %w", r.pos, r.def.Name, err))
			continue
		}
		if s != nil {
			steps = append(steps, *s)
		}
	}
	for _, u := range d.users {
		s, err := planUser(ctx, st, u, declared)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalid) {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		if s != nil {
			steps = append(steps, *s)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return steps, nil
}

func planRepository(ctx context.Context, st Stores, r repository) (*step, error) {
	def := *r.def
	s := &step{kind: "repository", name: def.Name, pos: r.pos}
	old, err := st.Repos.Get(ctx, def.Name)
	switch {
	case errors.Is(err, repo.ErrNotFound):
		s.verb = "created"
		s.do = func(ctx context.Context) error { return st.Repos.Create(ctx, &def) }
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read repository %s: %w", def.Name, err)
	}
	if old.Format != def.Format {
		return nil, fmt.Errorf("%w: the repository exists with format %s, and a format cannot change",
			repo.ErrInvalid, old.Format)
	}
	if old.Type != def.Type {
		return nil, fmt.Errorf("%w: the repository exists with type %s, and a type cannot change",
			repo.ErrInvalid, old.Type)
	}
	// Stored secrets are sealed; the file has them in the clear.
	if old, err = st.Repos.Unsealed(old); err != nil {
		return nil, err
	}
	same, err := sameRepository(old, &def)
	if err != nil || same {
		return nil, err
	}
	s.verb = "updated"
	s.do = func(ctx context.Context) error { return st.Repos.Update(ctx, &def) }
	return s, nil
}

// sameRepository compares two definitions as JSON values, so that the order
// of keys and spacing in sections do not count.
func sameRepository(a, b *repo.Repository) (bool, error) {
	var va, vb any
	for _, x := range []struct {
		r *repo.Repository
		v *any
	}{{a, &va}, {b, &vb}} {
		js, err := json.Marshal(x.r)
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal(js, x.v); err != nil {
			return false, err
		}
	}
	return reflect.DeepEqual(va, vb), nil
}

func planUser(ctx context.Context, st Stores, u user, declared map[string]bool) (*step, error) {
	fail := func(pos config.Pos, format string, args ...any) error {
		return fmt.Errorf("%s: user %q: %w: %s", pos, u.def.Name, auth.ErrInvalid, fmt.Sprintf(format, args...))
	}
	for _, g := range u.grants {
		if declared[g.Repository] {
			continue
		}
		_, err := st.Repos.Get(ctx, g.Repository)
		if errors.Is(err, repo.ErrNotFound) {
			pos := g.Pos
			if pos.Line == 0 {
				pos = u.pos
			}
			return nil, fail(pos, "permission on repository %s, which is neither declared nor exists",
				g.Repository)
		}
		if err != nil {
			return nil, fmt.Errorf("read repository %s: %w", g.Repository, err)
		}
	}
	def := u.def
	def.Permissions = slices.Clone(u.def.Permissions)
	s := &step{kind: "user", name: def.Name, pos: u.pos}
	old, err := st.Auth.User(ctx, def.Name)
	if errors.Is(err, meta.ErrNotFound) {
		if u.hash == "" && u.password == "" {
			return nil, fail(u.pos, "the user does not exist yet: give passwordHash or passwordFile")
		}
		def.PasswordHash, def.Password = u.hash, u.password
		s.verb = "created"
		s.do = func(ctx context.Context) error { return st.Auth.CreateUser(ctx, &def) }
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", def.Name, err)
	}
	if old.Admin != def.Admin {
		s.changed = append(s.changed, "admin")
	}
	if !reflect.DeepEqual(grantSet(old.Permissions), grantSet(def.Permissions)) {
		s.changed = append(s.changed, "permissions")
	}
	if u.hash != "" || u.password != "" {
		row, err := st.DB.Queries().User(ctx, def.Name)
		if err != nil {
			return nil, fmt.Errorf("read user %s: %w", def.Name, err)
		}
		if u.hash != "" && u.hash != row.PasswordHash ||
			u.password != "" && bcrypt.CompareHashAndPassword([]byte(row.PasswordHash), []byte(u.password)) != nil {
			s.changed = append(s.changed, "password")
			def.PasswordHash, def.Password = u.hash, u.password
		}
	}
	if len(s.changed) == 0 {
		return nil, nil
	}
	s.verb = "updated"
	s.do = func(ctx context.Context) error { return st.Auth.UpdateUser(ctx, &def) }
	return s, nil
}

// grantSet is a comparable form of permissions: repository -> sorted actions.
func grantSet(grants []auth.Grant) map[string][]string {
	out := map[string][]string{}
	for _, g := range grants {
		a := slices.Clone(g.Actions)
		sort.Strings(a)
		out[g.Repository] = slices.Compact(a)
	}
	return out
}
