package oci

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	godigest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/repo"
)

// Page sizes of the lists.
const (
	// allTags is the "n" of a tags list that asks for no page size.
	allTags = 100000
	// maxPage bounds the "n" a client asks for.
	maxPage = 10000
	// catalogPage is the catalog's page size when the client names none.
	catalogPage = 100
)

// page reads the n and last parameters of a paginated list; n is def when
// absent and at most maxPage.
func page(q url.Values, def int) (n int, last string, err error) {
	n, last = def, q.Get("last")
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", ociErr(http.StatusBadRequest, codePaginationInvalid, "n must be a number from 0")
		}
		n = min(v, maxPage)
	}
	return n, last, nil
}

// nextLink is the Link header of the page after last.
func nextLink(path string, n int, last string) string {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	return "<" + path + "?" + q.Encode() + `>; rel="next"`
}

// writeJSON answers v as JSON of the given media type.
func writeJSON(w http.ResponseWriter, r *http.Request, mediaType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", mediaType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b) //nolint:errcheck // the client went away
	}
	return nil
}

// tags lists an image's tags in byte order, n at a time after last, with a
// Link to the next page.
func (f *Format) tags(w http.ResponseWriter, r *format.Request, t target) error {
	if r.Repo.Type == repo.Group {
		return f.groupTags(w, r, t)
	}
	n, last, err := page(r.URL.Query(), allTags)
	if err != nil {
		return err
	}
	exists, err := f.repos.OCIImageExists(r.Context(), r.Repo, t.image)
	if err != nil {
		return err
	}
	if !exists {
		return ociErr(http.StatusNotFound, codeNameUnknown, "repository %s/%s is unknown", r.Repo.Name, t.image)
	}
	tags := []string{}
	if n > 0 {
		if tags, err = f.repos.OCITags(r.Context(), r.Repo, t.image, last, n+1); err != nil {
			return err
		}
		if len(tags) > n {
			tags = tags[:n]
			w.Header().Set("Link", nextLink(imageURL(r, t.image)+"/tags/list", n, tags[n-1]))
		}
	}
	return writeJSON(w, r.Request, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{r.Repo.Name + "/" + t.image, tags})
}

// referrers lists the manifests whose subject is the digest, as an image
// index, filtered by artifactType when asked. An unknown subject has no
// referrers: an empty index, not a 404.
func (f *Format) referrers(w http.ResponseWriter, r *format.Request, t target) error {
	if r.Repo.Type == repo.Group {
		return f.groupReferrers(w, r, t)
	}
	d, err := digestOf(t.ref)
	if err != nil {
		return err
	}
	ms, err := f.repos.OCIReferrers(r.Context(), r.Repo, t.image, d.alg, d.hex)
	if err != nil {
		return err
	}
	filter, filtered := r.URL.Query()["artifactType"]
	descs := []v1.Descriptor{}
	for _, m := range ms {
		if filtered && !contains(filter, m.ArtifactType) {
			continue
		}
		desc := v1.Descriptor{MediaType: m.MediaType, ArtifactType: m.ArtifactType, Size: m.Blob.Size}
		desc.Digest = godigest.Digest(m.Digest)
		if m.Annotations != "" {
			json.Unmarshal([]byte(m.Annotations), &desc.Annotations) //nolint:errcheck // written by arca as a JSON object
		}
		descs = append(descs, desc)
	}
	if filtered {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	index := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: descs}
	index.SchemaVersion = 2
	return writeJSON(w, r.Request, v1.MediaTypeImageIndex, index)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// catalog lists "<repository>/<image>" for every image of the oci
// repositories the caller may read, in byte order, n at a time after last.
// A group the caller may read lists, under its own name, the images of the
// members the caller may read.
func (f *Format) catalog(w http.ResponseWriter, r *format.RootRequest) error {
	w.Header().Set(apiVersionHeader, apiVersion)
	if !presented(r) {
		// Challenge first, as for /v2/: a client that answered an empty
		// list would never send the credentials it has.
		return fmt.Errorf("%w: log in to list the registry", auth.ErrUnauthenticated)
	}
	n, last, err := page(r.URL.Query(), catalogPage)
	if err != nil {
		return err
	}
	var readable, groups []*repo.Repository
	for after := ""; ; {
		list, err := f.repos.List(r.Context(), after, 500)
		if err != nil {
			return err
		}
		for _, rp := range list {
			switch {
			case rp.Format != f.ID() || !rp.Online || !mayRead(r.User, rp):
			case rp.Type == repo.Group:
				groups = append(groups, rp)
			default:
				readable = append(readable, rp)
			}
		}
		if len(list) < 500 {
			break
		}
		after = list[len(list)-1].Name
	}
	names := []string{}
	if n > 0 && len(readable) > 0 {
		images, err := f.repos.OCIImages(r.Context(), readable, last, n+1)
		if err != nil {
			return err
		}
		for _, i := range images {
			names = append(names, i.Repository+"/"+i.Image)
		}
	}
	if n > 0 && len(groups) > 0 {
		grouped, err := f.groupCatalog(r.Context(), r.User, groups, last)
		if err != nil {
			return err
		}
		names = append(names, grouped...)
		slices.Sort(names)
		names = slices.Compact(names)
	}
	if len(names) > n {
		names = names[:n]
		w.Header().Set("Link", nextLink(Prefix+"_catalog", n, names[n-1]))
	}
	return writeJSON(w, r.Request, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{names})
}

// mayRead reports whether a caller may read a repository by their own
// permissions. A registry token's scope is not consulted: the catalog
// lists what the user may read, and a token asked for "registry:catalog:*"
// names no repository.
func mayRead(p *auth.Principal, r *repo.Repository) bool {
	target := auth.Target{Repository: r.Name, AnonymousRead: r.AnonymousRead}
	return auth.Authorize(p, target, auth.Read) == nil || p != nil && (p.Admin || p.Can(r.Name, auth.Read))
}
