package repo

import (
	"context"
	"errors"
	"fmt"

	"arca/internal/blob"
	"arca/internal/meta"
)

// PyPI distribution files. Each file's bytes are an asset, filed under the
// component (normalized project, version); its core metadata is a row of
// pypi_files written in the same transaction. A file name is uploaded once,
// unless the write policy is allow.

// PyPIFile is a stored distribution file; see meta.PyPIFile.
type PyPIFile = meta.PyPIFile

// PyPIUpload is one file being uploaded. File.RepositoryID, SHA256, Size and
// CreatedAt are filled in by PutPyPIFile.
type PyPIUpload struct {
	File        PyPIFile
	ContentType string
	// Staged holds the file's bytes, staged with Blobs().Stage; the caller
	// aborts it.
	Staged *blob.Staged
}

// PutPyPIFile commits a staged file and then, in one transaction, refuses a
// file name that exists (ErrExists, unless the write policy is allow),
// stores the asset and records the file.
func (s *Service) PutPyPIFile(ctx context.Context, r *Repository, u PyPIUpload) (PyPIFile, error) {
	defer s.changed(r.ID)
	f := u.File
	if err := s.CheckPyPIWrite(ctx, r, f.Filename); err != nil {
		return f, err
	}
	staged := u.Staged
	release := s.blobs.Hold()
	defer release()
	if err := staged.Commit(ctx); err != nil {
		return f, err
	}
	info := staged.Info()
	f.RepositoryID, f.SHA256, f.Size = r.ID, info.SHA256, info.Size
	a := Asset{RepositoryID: r.ID, Path: f.Path, Blob: info, ContentType: u.ContentType, Uploader: f.Uploader}
	err := s.db.WithPyPITx(ctx, func(q meta.PyPIQueries) error {
		if _, err := q.PyPIFile(ctx, r.ID, f.Filename); err == nil && r.WritePolicy != Allow {
			return fmt.Errorf("%s: %w", f.Filename, ErrExists)
		} else if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		old, err := q.Asset(ctx, r.ID, f.Path)
		exists := err == nil
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if exists && r.WritePolicy != Allow {
			return fmt.Errorf("%s: %w", f.Path, ErrExists)
		}
		if err := q.PutBlob(ctx, info); err != nil {
			return err
		}
		if a.ComponentID, err = q.Component(ctx, r.ID, f.Project, f.Version); err != nil {
			return err
		}
		if err := q.PutAsset(ctx, &a); err != nil {
			return err
		}
		if err := q.LinkBlob(ctx, r.ID, info.SHA256); err != nil {
			return err
		}
		if exists && old.Blob.SHA256 != info.SHA256 {
			if err := q.UnlinkBlobIfUnused(ctx, r.ID, old.Blob.SHA256); err != nil {
				return err
			}
		}
		return q.PutPyPIFile(ctx, &f)
	})
	return f, err
}

// CheckPyPIWrite applies the write policy to a file name, before any byte
// is read.
func (s *Service) CheckPyPIWrite(ctx context.Context, r *Repository, filename string) error {
	if !r.Online {
		return ErrOffline
	}
	switch r.WritePolicy {
	case Deny:
		return fmt.Errorf("%s: %w", r.Name, ErrWriteDenied)
	case Allow:
		return nil
	}
	_, err := s.db.PyPI().PyPIFile(ctx, r.ID, filename)
	if err == nil {
		return fmt.Errorf("%s: %w", filename, ErrExists)
	}
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	return err
}

// PyPIFile returns a file by name, or ErrNotFound.
func (s *Service) PyPIFile(ctx context.Context, r *Repository, filename string) (PyPIFile, error) {
	return s.db.PyPI().PyPIFile(ctx, r.ID, filename)
}

// PyPIFiles returns the files of a normalized project, oldest first.
func (s *Service) PyPIFiles(ctx context.Context, r *Repository, project string) ([]PyPIFile, error) {
	return s.db.PyPI().PyPIFiles(ctx, r.ID, project)
}

// PyPIProjects returns the normalized names of the repository's projects.
func (s *Service) PyPIProjects(ctx context.Context, r *Repository) ([]string, error) {
	return s.db.PyPI().PyPIProjects(ctx, r.ID)
}

// checkPyPIChange refuses changes to an offline or read-only repository.
func checkPyPIChange(r *Repository) error {
	if !r.Online {
		return ErrOffline
	}
	if r.WritePolicy == Deny {
		return fmt.Errorf("%s: %w", r.Name, ErrWriteDenied)
	}
	return nil
}

// YankPyPIRelease yanks (or, with yanked false, unyanks) every file of a
// normalized project's version, or gives ErrNotFound when it has none.
func (s *Service) YankPyPIRelease(ctx context.Context, r *Repository, project, version string, yanked bool, reason string) error {
	defer s.changed(r.ID)
	if err := checkPyPIChange(r); err != nil {
		return err
	}
	n, err := s.db.PyPI().YankPyPIRelease(ctx, r.ID, project, version, yanked, reason)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s %s: %w", project, version, ErrNotFound)
	}
	return nil
}

// DeletePyPIRelease removes every file of a normalized project's version:
// the rows, the assets and the repository's links to blobs no longer used.
// It returns the deleted file names, or ErrNotFound when there were none.
func (s *Service) DeletePyPIRelease(ctx context.Context, r *Repository, project, version string) ([]string, error) {
	defer s.changed(r.ID)
	if err := checkPyPIChange(r); err != nil {
		return nil, err
	}
	var names []string
	err := s.db.WithPyPITx(ctx, func(q meta.PyPIQueries) error {
		files, err := q.PyPIFiles(ctx, r.ID, project)
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.Version != version {
				continue
			}
			names = append(names, f.Filename)
			if err := q.DeletePyPIFile(ctx, r.ID, f.Filename); err != nil {
				return err
			}
			a, err := q.DeleteAsset(ctx, r.ID, f.Path)
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
		if len(names) == 0 {
			return fmt.Errorf("%s %s: %w", project, version, ErrNotFound)
		}
		return nil
	})
	return names, err
}
