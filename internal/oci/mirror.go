package oci

import (
	"net/http"
	"sync"
)

// MirrorSettings make /v2/ a registry mirror: a path whose first segment
// names no arca repository goes, whole, to a proxy repository: the one
// named for containerd's ns query parameter (the upstream registry's host)
// in Namespaces, else DefaultRepository.
type MirrorSettings struct {
	DefaultRepository string
	Namespaces        map[string]string
}

// mirror holds the format's mirror settings.
type mirror struct {
	mu       sync.RWMutex
	settings MirrorSettings
}

// SetMirror sets the mirror settings; the zero value turns mirroring off.
func (f *Format) SetMirror(m MirrorSettings) {
	f.mirror.mu.Lock()
	defer f.mirror.mu.Unlock()
	f.mirror.settings = m
}

// MirrorRepository names the repository that serves a /v2/ path whose
// first segment names no repository, or "" when mirroring is off.
func (f *Format) MirrorRepository(r *http.Request) string {
	f.mirror.mu.RLock()
	defer f.mirror.mu.RUnlock()
	if ns := r.URL.Query().Get("ns"); ns != "" {
		if name := f.mirror.settings.Namespaces[ns]; name != "" {
			return name
		}
	}
	return f.mirror.settings.DefaultRepository
}
