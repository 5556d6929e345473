package repo

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"arca/internal/blob"
	"arca/internal/meta"
)

// SectionValidator checks a format's own settings section; raw is nil when
// the definition has none.
type SectionValidator func(r *Repository, raw json.RawMessage) error

// Service manages repositories and their assets. It is safe for concurrent
// use.
type Service struct {
	db      *meta.DB
	blobs   *blob.Store
	formats map[string]SectionValidator
	// secrets seals proxy credentials at rest; see SetSecretKey.
	secrets cipher.AEAD

	mu    sync.RWMutex
	cache map[string]*Repository // by name; definitions change rarely
	// gen counts invalidations. Get caches what it read only if none
	// happened meanwhile: a row read before an Update committed must not
	// be stored after that Update emptied the cache.
	gen uint64

	marksMu sync.Mutex
	marks   map[int64]time.Time // asset id -> last download, not yet written

	gensMu sync.Mutex
	gens   map[int64]uint64 // repository id -> content generation; see Generation
}

// testHookGetRead, when set by a test, runs in Get between reading a
// definition from the database and caching it.
var testHookGetRead func(name string)

// NewService returns a service over the stores, knowing no format yet.
func NewService(db *meta.DB, blobs *blob.Store) *Service {
	return &Service{db: db, blobs: blobs, formats: map[string]SectionValidator{},
		cache: map[string]*Repository{}, marks: map[int64]time.Time{}, gens: map[int64]uint64{}}
}

// RegisterFormat makes a format id known, with the validator of its
// settings section (nil when it has none). Call it before serving.
func (s *Service) RegisterFormat(id string, validate SectionValidator) {
	s.formats[id] = validate
}

// Blobs returns the blob store, for formats that serve blobs themselves.
func (s *Service) Blobs() *blob.Store { return s.blobs }

// Create stores a new repository definition.
func (s *Service) Create(ctx context.Context, r *Repository) error {
	if err := r.Check(s.formats); err != nil {
		return err
	}
	if err := s.checkMembers(ctx, r); err != nil {
		return err
	}
	if err := s.sealSecrets(r, nil); err != nil {
		return err
	}
	row, err := toRow(r)
	if err != nil {
		return err
	}
	if err := s.db.Queries().CreateRepository(ctx, &row); err != nil {
		return err
	}
	r.ID = row.ID
	return nil
}

// Update replaces a repository's settings; its name and format stay.
func (s *Service) Update(ctx context.Context, r *Repository) error {
	old, err := s.Get(ctx, r.Name)
	if err != nil {
		return err
	}
	if r.Format != old.Format {
		return fmt.Errorf("%w: the format of repository %s cannot change", ErrInvalid, r.Name)
	}
	if r.Type != old.Type {
		return fmt.Errorf("%w: the type of repository %s cannot change", ErrInvalid, r.Name)
	}
	if err := s.sealSecrets(r, old); err != nil {
		return err
	}
	if err := r.Check(s.formats); err != nil {
		return err
	}
	if err := s.checkMembers(ctx, r); err != nil {
		return err
	}
	row, err := toRow(r)
	if err != nil {
		return err
	}
	// Deferred calls run last first: the definition is forgotten before
	// the generation moves, so that no view stamped with the new
	// generation can have been made from the old definition.
	defer s.changed(old.ID)
	defer s.forget(r.Name)
	if err := s.db.Queries().UpdateRepository(ctx, &row); err != nil {
		return err
	}
	r.ID = old.ID
	return nil
}

// Delete removes a repository and everything in it but the blobs, which
// garbage collection removes once nothing uses them.
func (s *Service) Delete(ctx context.Context, name string) error {
	defer s.forget(name)
	return s.db.WithTx(ctx, func(q meta.Queries) error {
		group, err := groupOf(ctx, q, name)
		if err != nil {
			return err
		}
		if group != "" {
			return fmt.Errorf("%w: repository %s is a member of group %s", ErrInUse, name, group)
		}
		return q.DeleteRepository(ctx, name)
	})
}

// groupOf returns the name of a group repository that lists name as a
// member, or "".
func groupOf(ctx context.Context, q meta.Queries, name string) (string, error) {
	after := ""
	for {
		rows, err := q.ListRepositories(ctx, after, 500)
		if err != nil {
			return "", err
		}
		for _, row := range rows {
			if row.Type != string(Group) {
				continue
			}
			r, err := fromRow(row)
			if err != nil {
				return "", err
			}
			if slices.Contains(groupMembers(r), name) {
				return r.Name, nil
			}
		}
		if len(rows) < 500 {
			return "", nil
		}
		after = rows[len(rows)-1].Name
	}
}

// Get returns a repository definition. The result is shared: do not modify.
func (s *Service) Get(ctx context.Context, name string) (*Repository, error) {
	s.mu.RLock()
	r, gen := s.cache[name], s.gen
	s.mu.RUnlock()
	if r != nil {
		return r, nil
	}
	row, err := s.db.Queries().Repository(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err = fromRow(row)
	if err != nil {
		return nil, err
	}
	if testHookGetRead != nil {
		testHookGetRead(name)
	}
	s.mu.Lock()
	if s.gen == gen {
		s.cache[name] = r
	}
	s.mu.Unlock()
	return r, nil
}

// List returns up to limit repositories named after after, by name.
func (s *Service) List(ctx context.Context, after string, limit int) ([]*Repository, error) {
	rows, err := s.db.Queries().ListRepositories(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Repository, 0, len(rows))
	for _, row := range rows {
		r, err := fromRow(row)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Service) forget(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.gen++
	s.mu.Unlock()
}

// toRow turns a definition into its stored form: the whole JSON document.
func toRow(r *Repository) (meta.Repository, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return meta.Repository{}, fmt.Errorf("encode repository %s: %w", r.Name, err)
	}
	return meta.Repository{ID: r.ID, Name: r.Name, Format: r.Format, Type: string(r.Type), Settings: b}, nil
}

func fromRow(row meta.Repository) (*Repository, error) {
	r := &Repository{}
	if err := json.Unmarshal(row.Settings, r); err != nil {
		return nil, fmt.Errorf("decode repository %s: %w", row.Name, err)
	}
	r.ID, r.Name, r.Format, r.Type = row.ID, row.Name, row.Format, Type(row.Type)
	return r, nil
}
