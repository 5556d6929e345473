// Package filesystem is the blob driver that keeps blobs as files on a local
// disk. It is the embedded default.
//
// Layout under the root folder; paths are built only by the path helpers
// below:
//
//	<root>/blobs/<first two hex digits>/<sha256 hex>   committed blobs
//	<root>/tmp/<random>                                 plain uploads in flight
//	<root>/uploads/<id>/data                            resumable session bytes
//	<root>/uploads/<id>/state                           saved hash state
//
// Every commit writes to a temporary name, fsyncs it, renames it into place
// and fsyncs the folder, so a crash leaves either no blob or a whole one. A
// commit of bytes already stored drops the temporary file and sets the
// blob file's modification time to now, which is the time Stat and Walk
// report and garbage collection's grace period counts from.
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"arca/internal/blob"
)

// Driver stores blobs under one root folder.
type Driver struct {
	root string
}

var _ blob.Driver = (*Driver)(nil)

// New returns a driver rooted at root, creating its folders.
func New(root string) (*Driver, error) {
	d := &Driver{root: root}
	for _, dir := range []string{d.blobsDir(), d.tmpDir(), d.uploadsDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create blob folder: %w", err)
		}
	}
	return d, nil
}

func (d *Driver) blobsDir() string   { return filepath.Join(d.root, "blobs") }
func (d *Driver) tmpDir() string     { return filepath.Join(d.root, "tmp") }
func (d *Driver) uploadsDir() string { return filepath.Join(d.root, "uploads") }

// blobPath is the one place a blob key becomes a path. Keys are checked to
// be hex, so they can never climb out of the root.
func (d *Driver) blobPath(key string) (string, error) {
	if !blob.ValidHex(blob.SHA256, key) {
		return "", fmt.Errorf("blob key %q: %w", key, blob.ErrNotFound)
	}
	return filepath.Join(d.blobsDir(), key[:2], key), nil
}

func (d *Driver) uploadDir(id string) (string, error) {
	if id == "" || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("upload id %q: %w", id, blob.ErrNotFound)
	}
	return filepath.Join(d.uploadsDir(), id), nil
}

// Name returns "filesystem".
func (d *Driver) Name() string { return "filesystem" }

// Ping writes and removes a small file in the temporary folder.
func (d *Driver) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(d.tmpDir(), "ping-*")
	if err != nil {
		return fmt.Errorf("blob store not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// RemoveTemp empties the temporary folder.
func (d *Driver) RemoveTemp(ctx context.Context) error {
	entries, err := os.ReadDir(d.tmpDir())
	if err != nil {
		return fmt.Errorf("read temporary folder: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(d.tmpDir(), e.Name())); err != nil {
			return fmt.Errorf("remove temporary file: %w", err)
		}
	}
	return nil
}

// Create starts a temporary file.
func (d *Driver) Create(ctx context.Context) (blob.TempObject, error) {
	f, err := os.CreateTemp(d.tmpDir(), "put-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	return &tempFile{d: d, f: f}, nil
}

// tempFile is a plain upload in flight.
type tempFile struct {
	d    *Driver
	f    *os.File
	done bool
}

func (t *tempFile) Write(p []byte) (int, error) { return t.f.Write(p) }

func (t *tempFile) Commit(ctx context.Context, key string) error {
	dst, err := t.d.blobPath(key)
	if err != nil {
		return err
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync temporary file: %w", err)
	}
	if err := t.f.Close(); err != nil {
		return fmt.Errorf("close temporary file: %w", err)
	}
	// Only a successful move ends the temporary file's life: after a failed
	// one, Abort must still remove it, or it would stay in tmp/ until the
	// next start.
	if err := moveInto(t.f.Name(), dst); err != nil {
		return err
	}
	t.done = true
	return nil
}

func (t *tempFile) Abort() error {
	if t.done {
		return nil
	}
	t.done = true
	t.f.Close() //nolint:errcheck // Commit may have closed it already.
	if err := os.Remove(t.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	return nil
}

// moveInto renames a synced file to dst unless dst exists, and syncs dst's
// folder. When dst exists the bytes are the same (same SHA-256), so src is
// simply dropped, and dst's modification time is set to now: the blob is
// being used again, so garbage collection must see it young.
func moveInto(src, dst string) error {
	now := time.Now()
	err := os.Chtimes(dst, now, now)
	if err == nil {
		return os.Remove(src)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("refresh blob time: %w", err)
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create blob folder: %w", err)
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("move blob into place: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder for sync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// Open returns the blob's *os.File.
func (d *Driver) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	p, err := d.blobPath(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", key, err)
	}
	return f, nil
}

// Stat returns a blob file's size and modification time.
func (d *Driver) Stat(ctx context.Context, key string) (int64, time.Time, error) {
	p, err := d.blobPath(key)
	if err != nil {
		return 0, time.Time{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, time.Time{}, fmt.Errorf("stat blob %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	return fi.Size(), fi.ModTime(), nil
}

// Delete removes a blob file.
func (d *Driver) Delete(ctx context.Context, key string) error {
	p, err := d.blobPath(key)
	if err != nil {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// Walk lists the blob files with their sizes and modification times.
func (d *Driver) Walk(ctx context.Context, fn func(key string, size int64, modified time.Time) error) error {
	return filepath.WalkDir(d.blobsDir(), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !blob.ValidHex(blob.SHA256, e.Name()) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the folder was read
		}
		if err != nil {
			return err
		}
		return fn(e.Name(), fi.Size(), fi.ModTime())
	})
}
