package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// An oci proxy repository is a pull-through cache of another registry. It
// keeps what it fetched as assets of the repository, at the paths clients
// ask for, through the proxy cache (which coalesces concurrent misses,
// verifies digests and keeps upstream 404s and failures in check):
//
//   - <image>/blobs/<digest> and <image>/manifests/<digest>: fetched once,
//     verified against the digest;
//   - <image>/manifests/<tag>: the manifest the tag named when last
//     confirmed. After metadataMaxAge a HEAD asks the upstream for the
//     tag's digest; only when it moved is the manifest fetched, by digest.
//     Registries that count pulls count manifest GETs, not HEADs.
//   - <image>/tags/list and <image>/referrers/<digest>: the upstream's
//     documents, revalidated after metadataMaxAge.
//
// Assets keep their blobs from garbage collection like any other, and the
// proxy's cleanup (cacheMaxAge, cacheMaxSize) may drop any of them: what
// is gone is fetched again. Nothing goes into the OCI tables, which hold
// what clients pushed.

// manifestAccept is the Accept header of manifest requests upstream: every
// type arca serves, so that the cached manifest does not depend on the
// first client's Accept.
var manifestAccept = strings.Join([]string{mtOCIIndex, mtOCIManifest, mtDockerList, mtDockerManifest}, ", ")

// proxied is a request to an oci proxy repository, with what the upstream
// needs to know.
type proxied struct {
	*format.Request
	t        target
	settings repo.ProxySettings
	// upstreamImage is the image's name upstream, under the namespace.
	upstreamImage string
}

// url is the upstream URL of the image's endpoint rest ("manifests/1.0").
func (p *proxied) url(rest string) string {
	segs := strings.Split(p.upstreamImage, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return root(p.settings) + "/v2/" + strings.Join(segs, "/") + "/" + rest
}

// getProxied answers a GET or HEAD of a proxy repository.
func (f *Format) getProxied(w http.ResponseWriter, r *format.Request, t target) error {
	if f.cache == nil {
		return fmt.Errorf("proxy repository %s: this server has no proxy cache", r.Repo.Name)
	}
	s, err := f.repos.ProxySettings(r.Repo)
	if err != nil {
		return err
	}
	p := &proxied{Request: r, t: t, settings: s, upstreamImage: t.image}
	if ns := strings.Trim(s.Namespace, "/"); ns != "" {
		p.upstreamImage = ns + "/" + t.image
	}
	switch t.kind {
	case kindBlob:
		return f.proxyBlob(w, p)
	case kindManifest:
		if strings.Contains(t.ref, ":") {
			return f.proxyManifestByDigest(w, p)
		}
		return f.proxyTag(w, p)
	case kindTags:
		return f.proxyTags(w, p)
	case kindReferrers:
		return f.proxyReferrers(w, p)
	case kindUpload:
		return ociErr(http.StatusNotFound, codeBlobUploadUnknown,
			"repository %s is a proxy repository: it has no uploads", r.Repo.Name)
	}
	return notAllowed(w, r, t)
}

// fetch asks the cache for an item, with the upstream's token when it
// wants one. A cached artifact, and anything while the repository is
// offline, needs no upstream and so no token. A 401 with a token is tried
// once more with a new one: the upstream may have revoked it early.
func (f *Format) fetch(p *proxied, it proxy.Item) (proxy.Response, error) {
	ctx := p.Context()
	needAuth := p.Repo.Online
	if needAuth && !it.Mutable {
		if _, err := f.repos.Asset(ctx, p.Repo, it.Path); err == nil {
			needAuth = false
		}
	}
	scope := scopeOf(p.upstreamImage)
	for attempt := 0; ; attempt++ {
		header := it.Header.Clone()
		if header == nil {
			header = http.Header{}
		}
		var authErr error
		if needAuth {
			var auth http.Header
			auth, authErr = f.upstream.header(ctx, p.settings, scope)
			for k, v := range auth {
				header[k] = v
			}
		}
		it.Header = header
		resp, err := f.cache.Get(ctx, p.Repo, it)
		var ue *proxy.UpstreamError
		switch {
		case err == nil:
			return resp, nil
		case errors.Is(err, proxy.ErrUpstream) && errors.Is(err, blob.ErrDigestMismatch):
			// The upstream sent wrong bytes: a bad gateway, not a bad
			// request of the client's, which the mismatch alone means.
			return resp, &format.Error{Status: http.StatusBadGateway, Code: "UPSTREAM_FAILED",
				Message: err.Error(), Err: err}
		case authErr != nil && errors.Is(err, proxy.ErrUpstream):
			// The upstream refused us without a token: why there was
			// none is the better explanation.
			return resp, fmt.Errorf("%w (no upstream token: %w)", err, authErr)
		case attempt == 0 && needAuth && errors.As(err, &ue) && ue.Status == http.StatusUnauthorized:
			f.upstream.forget(p.settings, scope)
			continue
		}
		return resp, err
	}
}

// proxyBlob serves a blob, fetched once and verified by its digest.
func (f *Format) proxyBlob(w http.ResponseWriter, p *proxied) error {
	d, err := digestOf(p.t.ref)
	if err != nil {
		return err
	}
	resp, err := f.fetch(p, proxy.Item{
		Path: p.t.image + "/blobs/" + d.String(), URL: p.url("blobs/" + d.String()),
		Expect: d.expect(), ContentType: "application/octet-stream",
	})
	if err != nil {
		return notFoundAs(err, codeBlobUnknown, "blob %s is unknown to %s", d, p.t.image)
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	if resp.Asset == nil {
		// ServeAsset sets an ETag for the cached bytes; a download in
		// flight has the digest as its identity already.
		h.Set("ETag", `"`+d.String()+`"`)
	}
	return format.ServeProxied(w, p.Request, f.repos, resp)
}

// notFoundAs turns the cache's not-found into the registry's error code.
func notFoundAs(err error, code, msg string, args ...any) error {
	if errors.Is(err, repo.ErrNotFound) {
		e := ociErr(http.StatusNotFound, code, msg, args...)
		e.Err = err
		return e
	}
	return err
}

// proxyManifestByDigest serves a manifest by digest, fetched once and
// verified.
func (f *Format) proxyManifestByDigest(w http.ResponseWriter, p *proxied) error {
	d, err := digestOf(p.t.ref)
	if err != nil {
		return err
	}
	a, err := f.manifestByDigest(p, d)
	if err != nil {
		return err
	}
	return f.serveProxiedManifest(w, p, a, d.String())
}

// manifestByDigest returns the cached manifest with digest d, fetching it
// when needed.
func (f *Format) manifestByDigest(p *proxied, d digest) (repo.Asset, error) {
	resp, err := f.fetch(p, proxy.Item{
		Path: p.t.image + "/manifests/" + d.String(), URL: p.url("manifests/" + d.String()),
		Expect: d.expect(), Header: http.Header{"Accept": {manifestAccept}}, Whole: true,
	})
	if err != nil {
		return repo.Asset{}, notFoundAs(err, codeManifestUnknown, "manifest %s is unknown to %s", d, p.t.image)
	}
	return *resp.Asset, nil
}

// serveProxiedManifest serves a cached manifest with its media type and
// digest, if the client's Accept allows its type.
func (f *Format) serveProxiedManifest(w http.ResponseWriter, p *proxied, a repo.Asset, dg string) error {
	mt := f.mediaTypeOf(p.Context(), a)
	if !accepts(p.Header.Values("Accept"), mt) {
		return ociErr(http.StatusNotFound, codeManifestUnknown,
			"manifest %s is a %s, which the Accept header does not allow", p.t.ref, mt)
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Docker-Content-Digest", dg)
	return format.ServeAsset(w, p.Request, f.repos, a)
}

// mediaTypeOf is a cached manifest's media type: the Content-Type the
// upstream gave, or, when that names no manifest type, the document's own
// mediaType field.
func (f *Format) mediaTypeOf(ctx context.Context, a repo.Asset) string {
	ct, _, err := mime.ParseMediaType(a.ContentType)
	if _, ok := manifestTypes[ct]; ok && err == nil {
		return ct
	}
	body, err := f.repos.Open(ctx, a)
	if err != nil {
		return a.ContentType
	}
	defer body.Close()
	var doc manifestDoc
	if json.NewDecoder(io.LimitReader(body, maxManifestSize)).Decode(&doc) == nil && doc.MediaType != "" {
		return doc.MediaType
	}
	if a.ContentType == "" {
		return mtOCIManifest
	}
	return a.ContentType
}

// tagFlights coalesces the revalidations of one tag: however many clients
// pull a stale tag at once, the upstream gets one HEAD.
type tagFlights struct {
	mu      sync.Mutex
	flights map[tagKey]*tagFlight
}

type tagKey struct {
	repo int64
	path string
}

type tagFlight struct {
	done  chan struct{}
	asset repo.Asset
	err   error
}

// do runs refresh for k, or waits for the run under way.
func (g *tagFlights) do(ctx context.Context, k tagKey, refresh func() (repo.Asset, error)) (repo.Asset, error) {
	g.mu.Lock()
	if g.flights == nil {
		g.flights = map[tagKey]*tagFlight{}
	}
	fl := g.flights[k]
	if fl == nil {
		fl = &tagFlight{done: make(chan struct{})}
		g.flights[k] = fl
		g.mu.Unlock()
		fl.asset, fl.err = refresh()
		g.mu.Lock()
		delete(g.flights, k)
		g.mu.Unlock()
		close(fl.done)
	} else {
		g.mu.Unlock()
	}
	select {
	case <-fl.done:
		return fl.asset, fl.err
	case <-ctx.Done():
		return repo.Asset{}, ctx.Err()
	}
}

// proxyTag serves a manifest by tag: from the cache while it is younger
// than metadataMaxAge (or the repository is offline), else after asking
// the upstream what the tag names now.
func (f *Format) proxyTag(w http.ResponseWriter, p *proxied) error {
	if !tagPattern.MatchString(p.t.ref) {
		return ociErr(http.StatusNotFound, codeManifestUnknown, "manifest %s is unknown to %s", p.t.ref, p.t.image)
	}
	ctx := p.Context()
	path := p.t.image + "/manifests/" + p.t.ref
	cached, err := f.repos.Asset(ctx, p.Repo, path)
	have := err == nil
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		return err
	}
	if have && (!p.Repo.Online || time.Since(cached.FetchedAt) < time.Duration(p.settings.MetadataMaxAge)) {
		return f.serveProxiedManifest(w, p, cached, "sha256:"+cached.Blob.SHA256)
	}
	if !p.Repo.Online {
		return ociErr(http.StatusNotFound, codeManifestUnknown,
			"manifest %s of %s is not cached and proxy repository %s is offline", p.t.ref, p.t.image, p.Repo.Name)
	}
	a, err := f.tagFlights.do(ctx, tagKey{p.Repo.ID, path}, func() (repo.Asset, error) {
		// Detached from the first client: the others wait for the same
		// answer.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*requestTimeout(p.settings))
		defer cancel()
		// A refresh may have ended between the lookup above and now: what
		// it confirmed is the answer.
		again, err := f.repos.Asset(rctx, p.Repo, path)
		if err == nil && (!have || again.FetchedAt.After(cached.FetchedAt)) &&
			time.Since(again.FetchedAt) < time.Duration(p.settings.MetadataMaxAge) {
			return again, nil
		}
		return f.refreshTag(rctx, p, path, cached, have)
	})
	if err != nil {
		return err
	}
	return f.serveProxiedManifest(w, p, a, "sha256:"+a.Blob.SHA256)
}

// refreshTag learns the tag's digest from a HEAD upstream and returns the
// cached tag, confirmed, or the manifest it names now, fetched by digest
// and cached under the tag. When the upstream cannot be asked, a cached
// tag is served stale.
func (f *Format) refreshTag(ctx context.Context, p *proxied, path string, cached repo.Asset, have bool) (repo.Asset, error) {
	tagURL := p.url("manifests/" + url.PathEscape(p.t.ref))
	dg, err := f.headManifest(ctx, p, tagURL)
	switch {
	case errors.Is(err, repo.ErrNotFound):
		return repo.Asset{}, notFoundAs(err, codeManifestUnknown, "manifest %s is unknown to %s", p.t.ref, p.t.image)
	case err != nil && have:
		slog.WarnContext(ctx, "upstream failed: serving stale metadata", "repository", p.Repo.Name,
			"path", path, "fetched_at", cached.FetchedAt, "error", err)
		return cached, nil
	case err != nil:
		return repo.Asset{}, err
	}
	pc := *p
	pc.Request = &format.Request{Request: p.WithContext(ctx), Repo: p.Repo, Path: p.Path, User: p.User, BaseURL: p.BaseURL}
	if dg == "" {
		// The upstream names no digest: the tag's manifest is fetched
		// and revalidated as plain metadata, with its ETag.
		resp, err := f.fetch(&pc, proxy.Item{Path: path, URL: tagURL, Mutable: true, Whole: true,
			Header: http.Header{"Accept": {manifestAccept}}})
		if err != nil {
			return repo.Asset{}, notFoundAs(err, codeManifestUnknown, "manifest %s is unknown to %s", p.t.ref, p.t.image)
		}
		return *resp.Asset, nil
	}
	d, ok, err := parseDigest(dg)
	if err != nil || !ok {
		return repo.Asset{}, &proxy.UpstreamError{URL: tagURL,
			Err: fmt.Errorf("Docker-Content-Digest %q is not a sha256 or sha512 digest", dg)}
	}
	now := time.Now()
	if have && cached.Blob.Get(d.alg) == d.hex {
		if err := f.repos.Revalidated(ctx, cached, now); err != nil {
			return repo.Asset{}, err
		}
		cached.FetchedAt = now
		return cached, nil
	}
	m, err := f.manifestByDigest(&pc, d)
	if err != nil {
		return repo.Asset{}, err
	}
	body, err := f.repos.Open(ctx, m)
	if err != nil {
		return repo.Asset{}, err
	}
	defer body.Close()
	// The tag's asset shares the manifest's blob; it records when the
	// tag was last confirmed.
	want := d.expect()
	want.SHA256 = m.Blob.SHA256
	a, err := f.repos.PutAsset(ctx, p.Repo, body, repo.PutOptions{
		Path: path, ContentType: m.ContentType, Uploader: "proxy", Expect: want,
		Origin: &repo.Origin{URL: tagURL, FetchedAt: now},
	})
	if err != nil {
		return repo.Asset{}, fmt.Errorf("caching tag %s of %s: %w", p.t.ref, p.t.image, err)
	}
	return a, nil
}

// headManifest asks the upstream for the digest of a manifest, with a HEAD
// that registries do not count as a pull. It returns "" when the upstream
// answers without Docker-Content-Digest, and an error wrapping
// repo.ErrNotFound for a 404.
func (f *Format) headManifest(ctx context.Context, p *proxied, u string) (string, error) {
	scope := scopeOf(p.upstreamImage)
	for attempt := 0; ; attempt++ {
		auth, err := f.upstream.header(ctx, p.settings, scope)
		if err != nil {
			return "", err
		}
		header := http.Header{"Accept": {manifestAccept}}
		if auth != nil {
			header.Set("Authorization", auth.Get("Authorization"))
		}
		resp, err := f.cache.Head(ctx, p.Repo, u, header)
		if err != nil {
			return "", err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return resp.Header.Get("Docker-Content-Digest"), nil
		case resp.StatusCode == http.StatusNotFound:
			return "", fmt.Errorf("%s: not found upstream: %w", u, repo.ErrNotFound)
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			// A token that expired early, or an upstream that asks for
			// tokens only here: learn its challenge and try again.
			f.upstream.forget(p.settings, scope)
			if c, ok := parseChallenge(resp.Header.Values("WWW-Authenticate")); ok {
				f.upstream.learn(p.settings, challengeInfo{bearer: true, realm: c.realm, service: c.service, checked: time.Now()})
			}
			continue
		}
		return "", &proxy.UpstreamError{URL: u, Status: resp.StatusCode}
	}
}

// proxyTags serves the upstream's tag list, cached as metadata, under the
// name the client used, paginated here.
func (f *Format) proxyTags(w http.ResponseWriter, p *proxied) error {
	n, last, err := page(p.URL.Query(), allTags)
	if err != nil {
		return err
	}
	resp, err := f.fetch(p, proxy.Item{Path: p.t.image + "/tags/list", URL: p.url("tags/list"),
		Mutable: true, Whole: true, ContentType: "application/json"})
	if err != nil {
		return notFoundAs(err, codeNameUnknown, "repository %s/%s is unknown", p.Repo.Name, p.t.image)
	}
	var doc struct {
		Tags []string `json:"tags"`
	}
	if err := f.readJSON(p.Context(), *resp.Asset, &doc); err != nil {
		return &proxy.UpstreamError{URL: p.url("tags/list"), Err: fmt.Errorf("tag list: %w", err)}
	}
	tags := []string{}
	for _, tag := range doc.Tags {
		if tag > last && len(tags) < n {
			tags = append(tags, tag)
		}
	}
	return writeJSON(w, p.Request.Request, "application/json", map[string]any{
		"name": clientName(p.Request, p.t.image), "tags": tags})
}

// clientName is the image's name as the client addressed it: under the
// repository, or alone when the repository serves as a mirror.
func clientName(r *format.Request, image string) string {
	// The edge hands routes a rewritten URL; the client's is RequestURI.
	for _, prefix := range []string{Prefix, "/repository/"} {
		if strings.HasPrefix(r.RequestURI, prefix+r.Repo.Name+"/") {
			return r.Repo.Name + "/" + image
		}
	}
	return image
}

// proxyReferrers serves the upstream's referrers index, cached as
// metadata; an upstream without the referrers API has none to give.
func (f *Format) proxyReferrers(w http.ResponseWriter, p *proxied) error {
	d, err := digestOf(p.t.ref)
	if err != nil {
		return err
	}
	resp, err := f.fetch(p, proxy.Item{Path: p.t.image + "/referrers/" + d.String(),
		URL: p.url("referrers/" + d.String()), Mutable: true, Whole: true, ContentType: mtOCIIndex})
	if errors.Is(err, repo.ErrNotFound) {
		index := v1.Index{MediaType: mtOCIIndex, Manifests: []v1.Descriptor{}}
		index.SchemaVersion = 2
		return writeJSON(w, p.Request.Request, mtOCIIndex, index)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", mtOCIIndex)
	return format.ServeAsset(w, p.Request, f.repos, *resp.Asset)
}

// readJSON decodes a cached document.
func (f *Format) readJSON(ctx context.Context, a repo.Asset, v any) error {
	body, err := f.repos.Open(ctx, a)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(io.LimitReader(body, maxManifestSize)).Decode(v)
}
