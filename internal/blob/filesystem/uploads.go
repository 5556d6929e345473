package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"arca/internal/blob"
)

const (
	uploadData  = "data"
	uploadState = "state"
)

// CreateUpload creates the session folder with an empty data file.
func (d *Driver) CreateUpload(ctx context.Context, id string) error {
	dir, err := d.uploadDir(id)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		return fmt.Errorf("create upload folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, uploadData), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create upload data: %w", err)
	}
	return f.Close()
}

// AppendUpload appends to the session's data file and syncs it.
func (d *Driver) AppendUpload(ctx context.Context, id string, r io.Reader) (int64, error) {
	p, err := d.uploadFile(id, uploadData)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("upload %s: %w", id, blob.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("open upload %s: %w", id, err)
	}
	defer f.Close()
	_, copyErr := io.Copy(f, r)
	syncErr := f.Sync()
	fi, statErr := f.Stat()
	if err := errors.Join(copyErr, syncErr, statErr); err != nil {
		var size int64
		if fi != nil {
			size = fi.Size()
		}
		return size, err
	}
	return fi.Size(), nil
}

// OpenUpload opens the session's data file for reading.
func (d *Driver) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	p, err := d.uploadFile(id, uploadData)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("upload %s: %w", id, blob.ErrNotFound)
	}
	if err != nil {
		// Returning f here would hand out a non-nil io.ReadCloser holding
		// a nil *os.File.
		return nil, fmt.Errorf("open upload %s: %w", id, err)
	}
	return f, nil
}

// StatUpload returns the data file's size and modification time.
func (d *Driver) StatUpload(ctx context.Context, id string) (int64, time.Time, error) {
	p, err := d.uploadFile(id, uploadData)
	if err != nil {
		return 0, time.Time{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, time.Time{}, fmt.Errorf("upload %s: %w", id, blob.ErrNotFound)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stat upload %s: %w", id, err)
	}
	return fi.Size(), fi.ModTime(), nil
}

// SaveUploadState replaces the state file atomically; nil removes it.
func (d *Driver) SaveUploadState(ctx context.Context, id string, state []byte) error {
	p, err := d.uploadFile(id, uploadState)
	if err != nil {
		return err
	}
	if state == nil {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp := p + ".new"
	if err := os.WriteFile(tmp, state, 0o640); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("upload %s: %w", id, blob.ErrNotFound)
		}
		return fmt.Errorf("write upload state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp) //nolint:errcheck // best effort; the rename error matters.
		return fmt.Errorf("save upload state: %w", err)
	}
	return nil
}

// UploadState reads the state file, or returns nil when there is none.
func (d *Driver) UploadState(ctx context.Context, id string) ([]byte, error) {
	p, err := d.uploadFile(id, uploadState)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// CommitUpload moves the data file into the blob tree and removes the session.
func (d *Driver) CommitUpload(ctx context.Context, id, key string) error {
	src, err := d.uploadFile(id, uploadData)
	if err != nil {
		return err
	}
	dst, err := d.blobPath(key)
	if err != nil {
		return err
	}
	// moveInto would report a missing session as a failed rename, or not at
	// all when the blob exists already.
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("upload %s: %w", id, blob.ErrNotFound)
	}
	if err := moveInto(src, dst); err != nil {
		return err
	}
	return d.DeleteUpload(ctx, id)
}

// DeleteUpload removes the session folder.
func (d *Driver) DeleteUpload(ctx context.Context, id string) error {
	dir, err := d.uploadDir(id)
	if err != nil {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// WalkUploads lists the session folders with their data files' times.
func (d *Driver) WalkUploads(ctx context.Context, fn func(id string, modified time.Time) error) error {
	entries, err := os.ReadDir(d.uploadsDir())
	if err != nil {
		return fmt.Errorf("read uploads folder: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := d.uploadDir(e.Name()); err != nil {
			// Not a session arca made (DeleteUpload would refuse it too):
			// reporting it would make ExpireUploads claim it every time.
			continue
		}
		fi, err := os.Stat(filepath.Join(d.uploadsDir(), e.Name(), uploadData))
		if err != nil {
			// A folder without data is a session cut off while being
			// created: report it as ancient so that it expires.
			fi = nil
		}
		modified := time.Time{}
		if fi != nil {
			modified = fi.ModTime()
		}
		if err := fn(e.Name(), modified); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) uploadFile(id, name string) (string, error) {
	dir, err := d.uploadDir(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}
