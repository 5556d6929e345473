package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataFolder takes an exclusive lock on <data>/arca.lock for the life of
// the process, so that a second arca on the same folder refuses to start
// instead of sweeping the first one's uploads in flight. The lock goes with
// the process, also on kill -9. Several nodes share data through PostgreSQL
// and an object store instead, never through one folder.
func lockDataFolder(data string) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(data, "arca.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data folder %s is in use by another arca process", data)
		}
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	return func() { f.Close() }, nil
}
