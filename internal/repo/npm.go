package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"arca/internal/blob"
	"arca/internal/meta"
)

// npm packages. A package's tarballs are assets (one per version, filed
// under the version's component); its metadata is one document in the
// metadata store, which the npm format reads and rewrites whole inside a
// transaction, so that concurrent publishes of different versions both
// land. Every version ever published is remembered: npm never lets a
// version be published twice, whatever the write policy.

// NpmPackage is an npm package's stored metadata; see meta.NpmPackage.
type NpmPackage = meta.NpmPackage

// NpmPackage returns a package of the repository, or ErrNotFound.
func (s *Service) NpmPackage(ctx context.Context, r *Repository, name string) (NpmPackage, error) {
	return s.db.Npm().NpmPackage(ctx, r.ID, name)
}

// NpmPackageStamp returns a package's revision and last change, which
// change whenever its document does, or ErrNotFound.
func (s *Service) NpmPackageStamp(ctx context.Context, r *Repository, name string) (int64, time.Time, error) {
	return s.db.Npm().NpmPackageStamp(ctx, r.ID, name)
}

// NpmVersionKnown reports whether a version of a package was ever
// published in the repository, unpublished or not.
func (s *Service) NpmVersionKnown(ctx context.Context, r *Repository, name, version string) (bool, error) {
	return s.db.Npm().NpmVersionKnown(ctx, r.ID, name, version)
}

// SearchNpm returns up to limit packages whose name, description or
// keywords contain every word.
func (s *Service) SearchNpm(ctx context.Context, r *Repository, words []string, offset, limit int) ([]NpmPackage, error) {
	return s.db.Npm().SearchNpmPackages(ctx, r.ID, words, offset, limit)
}

// NpmPublish is one version being published.
type NpmPublish struct {
	Name, Version string
	// Path is the tarball's asset path.
	Path     string
	Uploader string
	// Tarball holds the staged bytes of the tarball.
	Tarball *blob.Staged
	// Update changes the package (a zero NpmPackage with its Name set when
	// the package is new) to include the version.
	Update func(p *NpmPackage) error
}

// PublishNpm commits a staged tarball and, in one transaction, records the
// version (ErrExists when it was ever published), stores the tarball's
// asset and updates the package's document.
func (s *Service) PublishNpm(ctx context.Context, r *Repository, p NpmPublish) error {
	defer s.changed(r.ID)
	if err := checkNpmWrite(r); err != nil {
		return err
	}
	release := s.blobs.Hold()
	defer release()
	if err := p.Tarball.Commit(ctx); err != nil {
		return err
	}
	info := p.Tarball.Info()
	return s.db.WithNpmTx(ctx, func(q meta.NpmQueries) error {
		if err := q.AddNpmVersion(ctx, r.ID, p.Name, p.Version); err != nil {
			return err
		}
		if _, err := q.Asset(ctx, r.ID, p.Path); err == nil {
			return fmt.Errorf("%s: %w", p.Path, ErrExists)
		} else if !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if err := q.PutBlob(ctx, info); err != nil {
			return err
		}
		cid, err := q.Component(ctx, r.ID, p.Name, p.Version)
		if err != nil {
			return err
		}
		a := Asset{RepositoryID: r.ID, Path: p.Path, Blob: info, ComponentID: cid,
			ContentType: "application/octet-stream", Uploader: p.Uploader}
		if err := q.PutAsset(ctx, &a); err != nil {
			return err
		}
		if err := q.LinkBlob(ctx, r.ID, info.SHA256); err != nil {
			return err
		}
		return updateNpm(ctx, q, r, p.Name, func(pkg *NpmPackage) ([]string, error) {
			return nil, p.Update(pkg)
		})
	})
}

// UpdateNpmPackage changes an existing package in one transaction. fn
// returns the tarball paths to delete; when it empties pkg.Document the
// package itself is deleted.
func (s *Service) UpdateNpmPackage(ctx context.Context, r *Repository, name string, fn func(pkg *NpmPackage) (remove []string, err error)) error {
	defer s.changed(r.ID)
	if err := checkNpmWrite(r); err != nil {
		return err
	}
	return s.db.WithNpmTx(ctx, func(q meta.NpmQueries) error {
		if _, err := q.NpmPackage(ctx, r.ID, name); err != nil {
			return err
		}
		return updateNpm(ctx, q, r, name, fn)
	})
}

// updateNpm reads a package (or starts a new one), lets fn change it and
// writes it back, deleting the assets fn names. The read-modify-write is
// safe because SQLite write transactions begin IMMEDIATE and so run one at a
// time; a PostgreSQL dialect will need the read to lock the row.
func updateNpm(ctx context.Context, q meta.NpmQueries, r *Repository, name string, fn func(pkg *NpmPackage) ([]string, error)) error {
	pkg, err := q.NpmPackage(ctx, r.ID, name)
	if errors.Is(err, meta.ErrNotFound) {
		pkg, err = NpmPackage{RepositoryID: r.ID, Name: name}, nil
	}
	if err != nil {
		return err
	}
	remove, err := fn(&pkg)
	if err != nil {
		return err
	}
	for _, path := range remove {
		a, err := q.DeleteAsset(ctx, r.ID, path)
		if errors.Is(err, meta.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := q.UnlinkBlobIfUnused(ctx, r.ID, a.Blob.SHA256); err != nil {
			return err
		}
	}
	if len(pkg.Document) == 0 {
		return q.DeleteNpmPackage(ctx, r.ID, name)
	}
	pkg.Revision++
	return q.PutNpmPackage(ctx, &pkg)
}

// checkNpmWrite refuses writes to an offline or read-only repository.
func checkNpmWrite(r *Repository) error {
	if !r.Online {
		return ErrOffline
	}
	if r.WritePolicy == Deny {
		return fmt.Errorf("%s: %w", r.Name, ErrWriteDenied)
	}
	return nil
}
