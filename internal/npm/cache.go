package npm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"arca/internal/format"
)

// maxCached bounds the packuments kept; the cache is emptied when full.
const maxCached = 2048

// rendered is a packument ready to send, plain and gzip-compressed.
type rendered struct {
	body, gz []byte
	etag     string
}

// cacheKey names one rendering of a package's document: its content
// (revision and last change, so that a package deleted and published again
// is never confused with its former self), the base URL its tarball links
// are built from and the form.
type cacheKey struct {
	repositoryID int64
	name         string
	revision     int64
	updated      int64
	baseURL      string
	abbreviated  bool
	// source is, for a proxy repository, the SHA-256 of the upstream's
	// packument the rendering was made from; "" for hosted packages.
	source string
}

// packumentCache keeps rendered packuments. Entries of old revisions are
// never hit again and go when the cache is emptied.
type packumentCache struct {
	mu sync.Mutex
	m  map[cacheKey]*rendered
}

func (c *packumentCache) get(k cacheKey) *rendered {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *packumentCache) put(k cacheKey, r *rendered) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[cacheKey]*rendered{}
	}
	c.m[k] = r
}

// render compresses a body and computes its ETag.
func render(body []byte) (*rendered, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("gzip packument: %w", err)
	}
	zw.Write(body) //nolint:errcheck // writes to memory
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip packument: %w", err)
	}
	sum := sha256.Sum256(body)
	return &rendered{body: body, gz: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
}

// packumentKey returns the cache key of a package's packument as this
// request wants it, or ErrNotFound.
func (f *Format) packumentKey(r *format.Request, name string, abbreviated bool) (cacheKey, error) {
	rev, updated, err := f.repos.NpmPackageStamp(r.Context(), r.Repo, name)
	if err != nil {
		return cacheKey{}, notFound(err, name)
	}
	return cacheKey{repositoryID: r.Repo.ID, name: name, revision: rev, updated: updated.UnixNano(),
		baseURL: r.BaseURL, abbreviated: abbreviated}, nil
}

// servePackument answers a packument from the cache, rendering it on a
// miss.
func (f *Format) servePackument(w http.ResponseWriter, r *format.Request, name string, abbreviated bool) error {
	key, err := f.packumentKey(r, name, abbreviated)
	if err != nil {
		return err
	}
	out := f.cache.get(key)
	if out == nil {
		pkg, d, err := f.load(r, name)
		if err != nil {
			return err
		}
		body, err := marshal(d.packument(&pkg, r.RepositoryURL(), abbreviated))
		if err != nil {
			return err
		}
		if out, err = render(body); err != nil {
			return err
		}
		// Keyed by the stamp read before the document: a change in
		// between yields a new stamp, so this entry is at worst unused.
		f.cache.put(key, out)
	}
	ctype := "application/json"
	if abbreviated {
		ctype = abbreviatedType
	}
	serveRendered(w, r, ctype, out)
	return nil
}

// serveRendered answers a rendered document: 304 when the client has it,
// gzip-compressed when the client accepts that.
func serveRendered(w http.ResponseWriter, r *format.Request, ctype string, out *rendered) {
	h := w.Header()
	h.Set("ETag", out.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept, Accept-Encoding")
	for _, tag := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t := strings.TrimPrefix(strings.TrimSpace(tag), "W/"); t == out.etag || t == "*" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := out.body
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = out.gz
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body) //nolint:errcheck // the client went away
	}
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}
