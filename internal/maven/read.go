package maven

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// get serves an artifact, a generated maven-metadata.xml, a checksum of
// either, or a folder listing.
func (f *Format) get(w http.ResponseWriter, r *format.Request) error {
	if r.Path == "" || strings.HasSuffix(r.Path, "/") {
		return f.browse(w, r)
	}
	t := parseTarget(r.Path)
	switch r.Repo.Type {
	case repo.Group:
		// The edge sends a group here only for what Merges accepts.
		if !t.metadata {
			return fmt.Errorf("%s in group %s: %w", r.Path, r.Repo.Name, repo.ErrNotFound)
		}
		return f.getMerged(w, r, t)
	case repo.Proxy:
		return f.getProxied(w, r, t)
	}
	if t.metadata {
		body, updated, err := f.metadataAt(r.Context(), r.Repo, t.path)
		if err != nil {
			return err
		}
		d := blob.DigestBytes(body)
		if t.checksum != "" {
			serveChecksum(w, r, d.Get(t.checksum), updated)
			return nil
		}
		h := w.Header()
		h.Set("Content-Type", "application/xml")
		h.Set("ETag", `"`+d.SHA1+`"`)
		setChecksumHeaders(h, d.Digests)
		http.ServeContent(w, r.Request, metadataName, updated, bytes.NewReader(body))
		return nil
	}
	a, err := f.repos.Asset(r.Context(), r.Repo, t.path)
	if err != nil {
		return err
	}
	if t.checksum != "" {
		serveChecksum(w, r, a.Blob.Get(t.checksum), a.UpdatedAt)
		return nil
	}
	w.Header().Set("X-Checksum-Sha512", a.Blob.SHA512)
	return format.ServeAsset(w, r, f.repos, a)
}

// getProxied answers from a proxy repository's cache. Its
// maven-metadata.xml documents are the upstream's, kept as they came and
// revalidated after metadataMaxAge; snapshot files without a timestamp are
// revalidated too; every other file is fetched once. Checksums are served
// from the cached bytes.
func (f *Format) getProxied(w http.ResponseWriter, r *format.Request, t target) error {
	// What does not parse as an artifact (indexes, catalogs) may change.
	it := proxy.Item{Path: t.path, Mutable: true, Whole: t.metadata || t.checksum != "" || r.Header.Get("Range") != "",
		ContentType: "application/octet-stream"}
	if t.metadata {
		it.ContentType = "application/xml"
	} else if c, err := ParsePath(t.path); err == nil {
		it.Mutable = c.Snapshot() && !c.Timestamped()
		it.ContentType = contentType(c.Extension)
		it.Component = repo.Component{Name: c.GroupID + ":" + c.ArtifactID, Version: c.Version}
	}
	resp, err := f.cache.Get(r.Context(), r.Repo, it)
	if err != nil {
		return err
	}
	if t.checksum != "" {
		serveChecksum(w, r, resp.Asset.Blob.Get(t.checksum), resp.Asset.UpdatedAt)
		return nil
	}
	if resp.Asset != nil {
		w.Header().Set("X-Checksum-Sha512", resp.Asset.Blob.SHA512)
	}
	return format.ServeProxied(w, r, f.repos, resp)
}

// serveChecksum answers a checksum file: the lower-case hex digest alone,
// as Maven Central writes them.
func serveChecksum(w http.ResponseWriter, r *format.Request, hexDigest string, modified time.Time) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("ETag", `"`+hexDigest+`"`)
	http.ServeContent(w, r.Request, "", modified, strings.NewReader(hexDigest))
}

// setChecksumHeaders sets the X-Checksum-* headers Maven clients read to
// skip fetching checksum files.
func setChecksumHeaders(h http.Header, d blob.Digests) {
	h.Set("X-Checksum-Sha512", d.SHA512)
	h.Set("X-Checksum-Sha256", d.SHA256)
	h.Set("X-Checksum-Sha1", d.SHA1)
	h.Set("X-Checksum-Md5", d.MD5)
}

// browse lists a folder as HTML or JSON, adding the generated
// maven-metadata.xml and its checksums to the folders that have one.
func (f *Format) browse(w http.ResponseWriter, r *format.Request) error {
	l, err := format.ListFolder(r, f.repos, r.Path)
	if err != nil {
		return err
	}
	if r.Repo.Type == repo.Proxy {
		// A proxy lists what it has cached, upstream's documents included.
		return format.WriteListing(w, r, l)
	}
	stored := false
	for _, e := range l.Children {
		stored = stored || e.Name == metadataName
	}
	if !stored && r.Path != "" {
		if body, updated, err := f.metadataAt(r.Context(), r.Repo, r.Path+metadataName); err == nil {
			d := blob.DigestBytes(body)
			at := updated.UTC().Format(time.RFC3339)
			l.Children = append(l.Children, format.Entry{Name: metadataName, Type: "file",
				Size: int64(len(body)), SHA256: d.SHA256, LastModified: at})
			for _, cs := range checksumSuffixes {
				l.Children = append(l.Children, format.Entry{Name: metadataName + cs.suffix, Type: "file",
					Size: int64(len(d.Get(cs.alg))), LastModified: at})
			}
		}
	}
	return format.WriteListing(w, r, l)
}
