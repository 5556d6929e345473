package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"arca/internal/blob"
	"arca/internal/meta"
)

// Asset is a stored path of a repository; see meta.Asset.
type Asset = meta.Asset

// testHookCommitted, when set by a test, runs in PutAsset between the commit
// of the blob and the transaction that records it.
var testHookCommitted func(blob.Info)

// PutOptions describe one asset write.
type PutOptions struct {
	Path        string
	ContentType string
	Uploader    string
	// Expect is what the client announced about the bytes.
	Expect blob.Expect
	// Immutable marks an artifact that allow-once keeps from being
	// overwritten. Content a format lets clients replace (a Maven
	// snapshot, say) is written with Immutable false; a read-only (deny)
	// repository refuses both.
	Immutable bool
	// Component, when its Name is set, files the asset under a component.
	Component Component
	// Origin, set by a proxy repository's cache, records where the bytes
	// came from. A cache fill is not a client's write: the write policy
	// does not apply to it.
	Origin *Origin
}

// Origin is where a proxy repository fetched an asset from.
type Origin struct {
	URL, ETag, LastModified string
	FetchedAt               time.Time
}

// Component names a package version in a format's terms.
type Component struct {
	Name, Version string
}

// PutAsset streams body into the blob store and then, in one transaction,
// records the blob, points the asset at it and links the blob to the
// repository. If anything fails, no asset changes: the bytes may stay in
// the blob store, unreferenced, until garbage collection.
//
// The bytes are staged without any lock; the blob store's sweep lock is
// held from the commit of the blob until the transaction has ended, so that
// garbage collection never frees the blob in between.
func (s *Service) PutAsset(ctx context.Context, r *Repository, body io.Reader, o PutOptions) (Asset, error) {
	defer s.changed(r.ID)
	if err := s.checkWrite(ctx, r, o); err != nil {
		return Asset{}, err
	}
	staged, err := s.blobs.Stage(ctx, body, o.Expect)
	if err != nil {
		return Asset{}, err
	}
	defer staged.Abort() //nolint:errcheck // a no-op after Commit; earlier errors win.
	release := s.blobs.Hold()
	defer release()
	if err := staged.Commit(ctx); err != nil {
		return Asset{}, err
	}
	info := staged.Info()
	if testHookCommitted != nil {
		testHookCommitted(info)
	}
	a := Asset{RepositoryID: r.ID, Path: o.Path, Blob: info, ContentType: o.ContentType, Uploader: o.Uploader}
	if o.Origin != nil {
		a.OriginURL, a.OriginETag, a.OriginLastModified, a.FetchedAt =
			o.Origin.URL, o.Origin.ETag, o.Origin.LastModified, o.Origin.FetchedAt
	}
	err = s.db.WithTx(ctx, func(q meta.Queries) error {
		old, err := q.Asset(ctx, r.ID, o.Path)
		exists := err == nil
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		// Checked again inside the transaction: a concurrent write of the
		// same path may have landed while the bytes streamed.
		if exists && o.Immutable && r.WritePolicy != Allow && o.Origin == nil {
			return fmt.Errorf("%s: %w", o.Path, ErrExists)
		}
		if err := q.PutBlob(ctx, info); err != nil {
			return err
		}
		if o.Component.Name != "" {
			if a.ComponentID, err = q.Component(ctx, r.ID, o.Component.Name, o.Component.Version); err != nil {
				return err
			}
		}
		if err := q.PutAsset(ctx, &a); err != nil {
			return err
		}
		if err := q.LinkBlob(ctx, r.ID, info.SHA256); err != nil {
			return err
		}
		if exists && old.Blob.SHA256 != info.SHA256 {
			return q.UnlinkBlobIfUnused(ctx, r.ID, old.Blob.SHA256)
		}
		return nil
	})
	return a, err
}

// checkWrite applies the write policy before any byte is read, so that a
// refused upload costs no transfer.
func (s *Service) checkWrite(ctx context.Context, r *Repository, o PutOptions) error {
	if o.Origin != nil {
		return nil
	}
	if !r.Online {
		return ErrOffline
	}
	if r.WritePolicy == Deny {
		return fmt.Errorf("%s: %w", r.Name, ErrWriteDenied)
	}
	if !o.Immutable || r.WritePolicy == Allow {
		return nil
	}
	_, err := s.db.Queries().Asset(ctx, r.ID, o.Path)
	if err == nil {
		return fmt.Errorf("%s: %w", o.Path, ErrExists)
	}
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	return err
}

// Asset returns the asset at path, or ErrNotFound.
func (s *Service) Asset(ctx context.Context, r *Repository, path string) (Asset, error) {
	return s.db.Queries().Asset(ctx, r.ID, path)
}

// Open returns the asset's bytes for reading.
func (s *Service) Open(ctx context.Context, a Asset) (io.ReadSeekCloser, error) {
	f, err := s.blobs.Open(ctx, a.Blob.SHA256)
	if errors.Is(err, blob.ErrNotFound) {
		// The metadata points at bytes the store lacks: that is damage,
		// not an absent asset, and must not be reported as a 404.
		return nil, fmt.Errorf("asset %s: blob %s missing from the store: %v", a.Path, a.Blob.SHA256, err) //nolint:errorlint // deliberately not ErrNotFound
	}
	return f, err
}

// Downloaded notes that an asset was downloaded, for cleanup policies. The
// marks are kept in memory and written in batches by FlushDownloads, so that
// a download costs no database write.
func (s *Service) Downloaded(a Asset) {
	s.marksMu.Lock()
	s.marks[a.ID] = time.Now()
	s.marksMu.Unlock()
}

// FlushDownloads writes the pending download marks in one transaction.
func (s *Service) FlushDownloads(ctx context.Context) error {
	s.marksMu.Lock()
	marks := s.marks
	s.marks = map[int64]time.Time{}
	s.marksMu.Unlock()
	if len(marks) == 0 {
		return nil
	}
	err := s.db.WithTx(ctx, func(q meta.Queries) error {
		for id, at := range marks {
			if err := q.TouchAsset(ctx, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing was written: keep the marks for the next flush, unless
		// a newer download of the same asset was noted meanwhile.
		s.marksMu.Lock()
		for id, at := range marks {
			if cur, ok := s.marks[id]; !ok || at.After(cur) {
				s.marks[id] = at
			}
		}
		s.marksMu.Unlock()
	}
	return err
}

// RunDownloadMarks flushes the download marks every interval until ctx
// ends, and once more then.
func (s *Service) RunDownloadMarks(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	flush := func(ctx context.Context) {
		if err := s.FlushDownloads(ctx); err != nil {
			log.WarnContext(ctx, "write download marks", "error", err)
		}
	}
	for {
		select {
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		}
	}
}

// DeleteAsset removes the asset at path and the repository's link to its
// blob when no other asset of the repository uses it.
func (s *Service) DeleteAsset(ctx context.Context, r *Repository, path string) error {
	defer s.changed(r.ID)
	if !r.Online {
		return ErrOffline
	}
	if r.WritePolicy == Deny {
		return fmt.Errorf("%s: %w", r.Name, ErrWriteDenied)
	}
	return s.db.WithTx(ctx, func(q meta.Queries) error {
		a, err := q.DeleteAsset(ctx, r.ID, path)
		if err != nil {
			return err
		}
		return q.UnlinkBlobIfUnused(ctx, r.ID, a.Blob.SHA256)
	})
}

// Revalidated records that a proxy's cached asset was confirmed unchanged
// by its upstream at t.
func (s *Service) Revalidated(ctx context.Context, a Asset, t time.Time) error {
	return s.db.Queries().SetFetched(ctx, a.ID, t)
}

// LeastRecentlyUsed returns up to limit assets of r, those downloaded
// longest ago first.
func (s *Service) LeastRecentlyUsed(ctx context.Context, r *Repository, limit int) ([]Asset, error) {
	return s.db.Queries().LeastRecentlyUsed(ctx, r.ID, limit)
}

// Usage returns the number of assets of r and the sum of their sizes.
func (s *Service) Usage(ctx context.Context, r *Repository) (items, bytes int64, err error) {
	return s.db.Queries().RepositoryUsage(ctx, r.ID)
}

// PruneAssets deletes the assets at paths in one transaction, whatever the
// write policy: it is for cleanup that the repository's own settings ask
// for (Maven snapshot retention, say), not for clients. Paths already gone
// are skipped.
func (s *Service) PruneAssets(ctx context.Context, r *Repository, paths []string) error {
	defer s.changed(r.ID)
	return s.db.WithTx(ctx, func(q meta.Queries) error {
		for _, p := range paths {
			a, err := q.DeleteAsset(ctx, r.ID, p)
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
		return nil
	})
}

// FolderEntries calls fn, in path order, for each entry directly under
// folder ("" for the root, else a path ending in "/"): a file with its
// asset, or a sub-folder by name with a nil asset. Its cost follows the
// number of entries, not of the files below them.
func (s *Service) FolderEntries(ctx context.Context, r *Repository, folder string, fn func(dir string, a *Asset) error) error {
	return s.db.Queries().FolderEntries(ctx, r.ID, folder, fn)
}

// AssetsUnder calls fn, in path order, for each asset whose path starts
// with prefix.
func (s *Service) AssetsUnder(ctx context.Context, r *Repository, prefix string, fn func(Asset) error) error {
	return s.db.Queries().AssetsUnder(ctx, r.ID, prefix, fn)
}

// HeldBlob returns the blob with the digests want names (SHA-256 or
// SHA-512) when r already holds it under some asset: a proxy can then fill
// another path with those bytes without asking its upstream again.
func (s *Service) HeldBlob(ctx context.Context, r *Repository, want blob.Expect) (blob.Info, bool, error) {
	var info blob.Info
	var err error
	switch {
	case want.SHA256 != "":
		info, err = s.FindBlob(ctx, blob.SHA256, want.SHA256)
	case want.SHA512 != "":
		info, err = s.FindBlob(ctx, blob.SHA512, want.SHA512)
	default:
		return blob.Info{}, false, nil
	}
	if errors.Is(err, meta.ErrNotFound) {
		return blob.Info{}, false, nil
	}
	if err != nil {
		return blob.Info{}, false, err
	}
	linked, err := s.db.Queries().BlobLinked(ctx, r.ID, info.SHA256)
	if err != nil || !linked {
		return blob.Info{}, false, err
	}
	return info, true, nil
}
