// Package keyfile keeps the secret keys a server makes for itself in its
// data folder: random, written once with mode 0600, read back at every
// start, unless the configuration gives the key.
package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Size is the length of a key this package makes.
const Size = 32

// Load returns configured when it is set (it must be at least Size bytes
// long), else the key in dataDir/name, made and written there first when
// there is none.
func Load(dataDir, name, configured string) ([]byte, error) {
	if configured != "" {
		if len(configured) < Size {
			return nil, fmt.Errorf("the configured %s needs at least %d characters", name, Size)
		}
		return []byte(configured), nil
	}
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= Size {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	key := make([]byte, Size)
	rand.Read(key) //nolint:errcheck // crypto/rand.Read never fails
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	return key, nil
}
