package npm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// A proxy repository keeps the upstream's full packument of each package
// as it came, as metadata at packumentCachePath, revalidated after
// metadataMaxAge. Clients never see it unchanged: their packuments,
// version documents and dist-tags are derived from it with every tarball
// link pointing back at arca. Tarballs are artifacts cached at the same
// paths as a hosted repository's, fetched from the link the upstream's
// packument gives and checked against its dist.integrity and dist.shasum.

// packumentCachePath is where a proxy keeps the upstream's packument of a
// package. No package is named "-", so the path cannot be a package's.
func packumentCachePath(name string) string { return "-/proxy/packuments/" + name + ".json" }

// searchCachePath is where a proxy keeps the upstream's answer to one
// search query, named by a digest of the query.
func searchCachePath(rawQuery string) string {
	sum := sha256.Sum256([]byte(rawQuery))
	return "-/proxy/search/" + hex.EncodeToString(sum[:16]) + ".json"
}

// upstreamPackument is the upstream's packument, decoded as far as arca
// needs it; fields keeps every top-level field so that the full packument
// passes through with only its tarball links changed.
type upstreamPackument struct {
	fields   map[string]json.RawMessage
	name     string
	distTags map[string]string
	versions map[string]manifest
	modified string
	// sha256 names the cached bytes, for the renderings made from them.
	sha256 string
}

// decodeUpstream decodes a packument as an npm registry serves it. Only
// the versions must be well-formed: registries disagree on the rest (an
// unpublished package's "time" holds an object, for one).
func decodeUpstream(b []byte, name string) (*upstreamPackument, error) {
	p := &upstreamPackument{name: name}
	if err := json.Unmarshal(b, &p.fields); err != nil || p.fields == nil {
		return nil, fmt.Errorf("%w: the upstream's packument of %s is not a JSON object", proxy.ErrUpstream, name)
	}
	if raw, ok := p.fields["versions"]; ok {
		if err := json.Unmarshal(raw, &p.versions); err != nil {
			return nil, fmt.Errorf("%w: the upstream's packument of %s has malformed versions: %v", proxy.ErrUpstream, name, err)
		}
	}
	json.Unmarshal(p.fields["dist-tags"], &p.distTags) //nolint:errcheck // no tags when malformed
	var times map[string]json.RawMessage
	json.Unmarshal(p.fields["time"], &times)       //nolint:errcheck // no times when malformed
	json.Unmarshal(times["modified"], &p.modified) //nolint:errcheck // "" when absent
	if p.distTags == nil {
		p.distTags = map[string]string{}
	}
	return p, nil
}

// version resolves a version or dist-tag.
func (p *upstreamPackument) version(v string) (string, manifest, bool) {
	if tagged, ok := p.distTags[v]; ok {
		v = tagged
	}
	m, ok := p.versions[v]
	return v, m, ok
}

// byFile finds the version whose tarball arca serves as file.
func (p *upstreamPackument) byFile(file string) (string, manifest, bool) {
	for v, m := range p.versions {
		if tarballFile(p.name, v) == file {
			return v, m, true
		}
	}
	return "", nil, false
}

// rewrite renders the packument for a client: the full one with all the
// upstream's fields, or the abbreviated one an install asks for, with
// every tarball link under repoURL.
func (p *upstreamPackument) rewrite(repoURL string, abbreviated bool) ([]byte, error) {
	versions := make(map[string]manifest, len(p.versions))
	for v, m := range p.versions {
		m = withTarball(m, p.name, repoURL)
		if abbreviated {
			m = abbreviate(m)
		}
		versions[v] = m
	}
	vs, err := marshal(versions)
	if err != nil {
		return nil, err
	}
	if abbreviated {
		return marshal(map[string]any{"name": p.name, "dist-tags": p.distTags,
			"versions": json.RawMessage(vs), "modified": p.modified})
	}
	out := make(map[string]json.RawMessage, len(p.fields))
	for k, raw := range p.fields {
		out[k] = raw
	}
	out["versions"] = vs
	return marshal(out)
}

// proxyCache returns the cache, which a proxy repository cannot do
// without.
func (f *Format) proxyCache(r *format.Request) (*proxy.Service, error) {
	if f.proxy == nil {
		return nil, fmt.Errorf("npm format has no proxy cache for repository %s", r.Repo.Name)
	}
	return f.proxy, nil
}

// upstreamPackumentURL is the packument's URL upstream. A scoped name's
// slash is encoded, as npm itself asks registries.
func upstreamPackumentURL(settings repo.ProxySettings, name string) string {
	return strings.TrimSuffix(settings.URL, "/") + "/" + url.PathEscape(name)
}

// fetchPackument returns the upstream's packument of a package from the
// cache, fetched or revalidated as due; revalidate asks the upstream now,
// within the throttle of the cache.
func (f *Format) fetchPackument(r *format.Request, name string, revalidate bool) (*upstreamPackument, error) {
	cache, err := f.proxyCache(r)
	if err != nil {
		return nil, err
	}
	settings, err := f.repos.ProxySettings(r.Repo)
	if err != nil {
		return nil, err
	}
	resp, err := cache.Get(r.Context(), r.Repo, proxy.Item{
		Path:        packumentCachePath(name),
		URL:         upstreamPackumentURL(settings, name),
		Mutable:     true,
		Revalidate:  revalidate,
		Header:      http.Header{"Accept": {"application/json"}},
		ContentType: "application/json",
		Whole:       true,
	})
	if err != nil {
		return nil, notFound(err, name)
	}
	body, err := f.repos.Open(r.Context(), *resp.Asset)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read cached packument of %s: %w", name, err)
	}
	p, err := decodeUpstream(b, name)
	if err != nil {
		return nil, err
	}
	p.sha256 = resp.Asset.Blob.SHA256
	return p, nil
}

// proxiedPackument returns the upstream's packument, asking the upstream
// again at once when the cached one lacks what has(p) wants: a version
// published upstream since is then found without waiting for
// metadataMaxAge. has may be nil.
func (f *Format) proxiedPackument(r *format.Request, name string, has func(*upstreamPackument) bool) (*upstreamPackument, error) {
	p, err := f.fetchPackument(r, name, false)
	if err == nil && has != nil && !has(p) {
		p, err = f.fetchPackument(r, name, true)
	}
	if err != nil {
		return nil, err
	}
	if len(p.versions) == 0 {
		return nil, npmErr(http.StatusNotFound, "package %s not found", name)
	}
	return p, nil
}

// getProxied answers a GET of a proxy repository: a packument, a version
// document or a tarball.
func (f *Format) getProxied(w http.ResponseWriter, r *format.Request, t target) error {
	switch {
	case t.file != "":
		return f.proxiedTarball(w, r, t)
	case t.rest == "":
		abbreviated := strings.Contains(r.Header.Get("Accept"), abbreviatedType) &&
			r.URL.Query().Get("write") != "true"
		return f.serveProxiedPackument(w, r, t.name, abbreviated)
	}
	p, err := f.proxiedPackument(r, t.name, func(p *upstreamPackument) bool {
		_, _, ok := p.version(t.rest)
		return ok
	})
	if err != nil {
		return err
	}
	_, m, ok := p.version(t.rest)
	if !ok {
		return fmt.Errorf("%w: %s has no version or dist-tag %q", repo.ErrNotFound, t.name, t.rest)
	}
	return serveJSON(w, r, "application/json", withTarball(m, t.name, r.RepositoryURL()))
}

// serveProxiedPackument answers the rewritten packument, rendered once
// per upstream document, base URL and form.
func (f *Format) serveProxiedPackument(w http.ResponseWriter, r *format.Request, name string, abbreviated bool) error {
	p, err := f.proxiedPackument(r, name, nil)
	if err != nil {
		return err
	}
	key := cacheKey{repositoryID: r.Repo.ID, name: name, baseURL: r.BaseURL,
		abbreviated: abbreviated, source: p.sha256}
	out := f.cache.get(key)
	if out == nil {
		body, err := p.rewrite(r.RepositoryURL(), abbreviated)
		if err != nil {
			return err
		}
		if out, err = render(body); err != nil {
			return err
		}
		f.cache.put(key, out)
	}
	ctype := "application/json"
	if abbreviated {
		ctype = abbreviatedType
	}
	serveRendered(w, r, ctype, out)
	return nil
}

// proxiedTarball answers a tarball from the cache. On a miss it is
// fetched from the link of the upstream's packument and verified against
// the digests the packument publishes, so that bytes the upstream did not
// announce are never cached.
func (f *Format) proxiedTarball(w http.ResponseWriter, r *format.Request, t target) error {
	cache, err := f.proxyCache(r)
	if err != nil {
		return err
	}
	it := proxy.Item{Path: tarballPath(t.name, t.file), ContentType: "application/octet-stream"}
	// A cached tarball needs no packument: the cache answers it alone,
	// even when the upstream is away.
	if _, err := f.repos.Asset(r.Context(), r.Repo, it.Path); errors.Is(err, repo.ErrNotFound) {
		p, err := f.proxiedPackument(r, t.name, func(p *upstreamPackument) bool {
			_, _, ok := p.byFile(t.file)
			return ok
		})
		if err != nil {
			return err
		}
		v, m, ok := p.byFile(t.file)
		if !ok {
			return fmt.Errorf("%w: %s has no tarball %s", repo.ErrNotFound, t.name, t.file)
		}
		settings, err := f.repos.ProxySettings(r.Repo)
		if err != nil {
			return err
		}
		if it.URL, err = upstreamTarballURL(settings, m); err != nil {
			return err
		}
		if it.Expect, err = distExpect(m); err != nil {
			return err
		}
		it.Component = repo.Component{Name: t.name, Version: v}
	} else if err != nil {
		return err
	}
	resp, err := cache.Get(r.Context(), r.Repo, it)
	if errors.Is(err, proxy.ErrUpstream) && errors.Is(err, blob.ErrDigestMismatch) {
		// The mismatch is the upstream's, not the client's: a bad
		// gateway, not the bad request the edge makes of a mismatch.
		return &format.Error{Status: http.StatusBadGateway, Code: "UPSTREAM_FAILED",
			Message: fmt.Sprintf("the upstream's %s does not match the integrity its packument publishes", t.file), Err: err}
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	return format.ServeProxied(w, r, f.repos, resp)
}

// upstreamTarballURL is the absolute URL of a version's tarball upstream:
// its dist.tarball, resolved against the upstream's URL when relative, or
// "" (the upstream's URL joined with arca's path) when there is none.
func upstreamTarballURL(settings repo.ProxySettings, m manifest) (string, error) {
	var dist struct {
		Tarball string `json:"tarball"`
	}
	json.Unmarshal(m["dist"], &dist) //nolint:errcheck // no link when malformed
	if dist.Tarball == "" {
		return "", nil
	}
	base, err := url.Parse(settings.URL)
	if err != nil {
		return "", fmt.Errorf("proxy url: %w", err)
	}
	ref, err := url.Parse(dist.Tarball)
	if err != nil {
		return "", fmt.Errorf("%w: the upstream's tarball link %q: %v", proxy.ErrUpstream, dist.Tarball, err)
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: the upstream's tarball link %q is not http(s)", proxy.ErrUpstream, dist.Tarball)
	}
	return u.String(), nil
}

// distExpect turns a manifest's dist.integrity (the sha512 and sha1
// entries of its Subresource Integrity list) and dist.shasum into the
// digests a download must have. A malformed digest is the upstream's
// fault: the tarball could never be verified.
func distExpect(m manifest) (blob.Expect, error) {
	var dist struct {
		Integrity string `json:"integrity"`
		Shasum    string `json:"shasum"`
	}
	json.Unmarshal(m["dist"], &dist) //nolint:errcheck // nothing to check when malformed
	want := blob.NoExpectation
	for _, sri := range strings.Fields(dist.Integrity) {
		alg, b64, ok := strings.Cut(sri, "-")
		if !ok {
			continue
		}
		// An SRI entry may carry options after "?".
		b64, _, _ = strings.Cut(b64, "?")
		sum, err := base64.StdEncoding.DecodeString(b64)
		bad := err != nil
		switch {
		case alg == "sha512" && !bad && len(sum) == sha512Size:
			want.SHA512 = hex.EncodeToString(sum)
		case alg == "sha1" && !bad && len(sum) == sha1Size:
			want.SHA1 = hex.EncodeToString(sum)
		case alg == "sha512" || alg == "sha1":
			return want, fmt.Errorf("%w: malformed integrity %q", proxy.ErrUpstream, sri)
		}
	}
	if s := strings.ToLower(dist.Shasum); s != "" {
		if !blob.ValidHex(blob.SHA1, s) {
			return want, fmt.Errorf("%w: malformed shasum %q", proxy.ErrUpstream, dist.Shasum)
		}
		if want.SHA1 != "" && want.SHA1 != s {
			return want, fmt.Errorf("%w: the shasum and the integrity disagree", proxy.ErrUpstream)
		}
		want.SHA1 = s
	}
	return want, nil
}

// Digest lengths in bytes.
const (
	sha512Size = 64
	sha1Size   = 20
)

// proxiedTags answers npm dist-tag ls on a proxy, from the upstream's
// packument.
func (f *Format) proxiedTags(w http.ResponseWriter, r *format.Request, name, tag string) error {
	p, err := f.proxiedPackument(r, name, func(p *upstreamPackument) bool {
		_, ok := p.distTags[tag]
		return tag == "" || ok
	})
	if err != nil {
		return err
	}
	if tag != "" {
		v, ok := p.distTags[tag]
		if !ok {
			return npmErr(http.StatusNotFound, "%s has no dist-tag %s", name, tag)
		}
		return writeJSON(w, http.StatusOK, v)
	}
	return writeJSON(w, http.StatusOK, p.distTags)
}

// proxiedSearch passes npm search to the upstream, its answers cached as
// metadata for metadataMaxAge. An upstream without search answers no
// results.
func (f *Format) proxiedSearch(w http.ResponseWriter, r *format.Request) error {
	cache, err := f.proxyCache(r)
	if err != nil {
		return err
	}
	settings, err := f.repos.ProxySettings(r.Repo)
	if err != nil {
		return err
	}
	q := r.URL.RawQuery
	resp, err := cache.Get(r.Context(), r.Repo, proxy.Item{
		Path:        searchCachePath(q),
		URL:         strings.TrimSuffix(settings.URL, "/") + "/-/v1/search?" + q,
		Mutable:     true,
		Header:      http.Header{"Accept": {"application/json"}},
		ContentType: "application/json",
	})
	if errors.Is(err, repo.ErrNotFound) {
		return writeJSON(w, http.StatusOK, map[string]any{"objects": []any{}, "total": 0})
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return format.ServeProxied(w, r, f.repos, resp)
}
