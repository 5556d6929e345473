package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	godigest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"arca/internal/auth"
	"arca/internal/format"
	"arca/internal/repo"
)

// Group repositories of the oci format. The edge answers most reads of a
// group from its first member that has the path (manifests, blobs, upload
// status) and sends writes to the group's write member. What it cannot
// answer that way are the lists, which must cover every member: the tag
// list and the referrers index are merged here (format.Merger).

var _ format.Merger = (*Format)(nil)

// maxGroupDepth bounds the nesting of groups walked here, as the edge
// bounds its own walk; the repository service refuses cycles.
const maxGroupDepth = 8

var _ format.MergeKeeper = (*Format)(nil)

// MergeVariant lets the edge keep every merged answer: a merged tag or
// referrers list depends on nothing but what the edge keys it by (its query
// carries n, last and artifactType).
func (f *Format) MergeVariant(r *http.Request, path string) (string, bool) { return "", true }

// Merges reports whether a read of a group's path is merged from all its
// members: the tag lists and referrers indexes are.
func (f *Format) Merges(r *http.Request, path string) bool {
	t, ok := parsePath(path)
	return ok && (t.kind == kindTags || t.kind == kindReferrers)
}

// memberLists runs the read handler for each member of a group that may
// hold the list, and returns the bodies of those that answered. Members
// that do not know the image, fail upstream or are offline are left out,
// as the edge leaves them out of first-member reads. query replaces the
// request's query for every member.
func (f *Format) memberLists(r *format.Request, query url.Values) ([][]byte, error) {
	handler := f.handle(f.get)
	var bodies [][]byte
	for _, m := range r.Members {
		if !m.Repo.Online && m.Repo.Type != repo.Proxy {
			continue
		}
		sub := *m
		sub.Request = m.Request.Clone(m.Context())
		sub.URL.RawQuery = query.Encode()
		got, err := format.Capture(handler, &sub)
		switch {
		case err == nil:
			bodies = append(bodies, got.Body)
		case format.IsNotFound(err), format.IsUnavailable(err):
			continue
		default:
			return nil, fmt.Errorf("member %s of group %s: %w", m.Repo.Name, r.Repo.Name, err)
		}
	}
	return bodies, nil
}

// groupTags answers a group's tag list: the union of its members' tags,
// sorted, paginated with n and last like a hosted repository's. An image
// none of the members knows is unknown.
func (f *Format) groupTags(w http.ResponseWriter, r *format.Request, t target) error {
	n, last, err := page(r.URL.Query(), allTags)
	if err != nil {
		return err
	}
	// The members answer their whole lists; the page is cut from the union.
	query := r.URL.Query()
	query.Del("n")
	query.Del("last")
	bodies, err := f.memberLists(r, query)
	if err != nil {
		return err
	}
	if len(bodies) == 0 {
		return ociErr(http.StatusNotFound, codeNameUnknown, "repository %s/%s is unknown", r.Repo.Name, t.image)
	}
	var union []string
	for _, b := range bodies {
		var doc struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("tag list of a member of group %s: %w", r.Repo.Name, err)
		}
		union = append(union, doc.Tags...)
	}
	slices.Sort(union)
	union = slices.Compact(union)
	tags := []string{}
	for _, tag := range union {
		if tag > last {
			tags = append(tags, tag)
		}
	}
	if len(tags) > n {
		tags = tags[:n]
		if n > 0 {
			w.Header().Set("Link", nextLink(imageURL(r, t.image)+"/tags/list", n, tags[n-1]))
		}
	}
	return writeJSON(w, r.Request, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{r.Repo.Name + "/" + t.image, tags})
}

// groupReferrers answers a group's referrers index: the manifests that
// refer to the subject in any member, each once, in the members' order.
func (f *Format) groupReferrers(w http.ResponseWriter, r *format.Request, t target) error {
	if _, err := digestOf(t.ref); err != nil {
		return err
	}
	bodies, err := f.memberLists(r, r.URL.Query())
	if err != nil {
		return err
	}
	filter, filtered := r.URL.Query()["artifactType"]
	descs := []v1.Descriptor{}
	seen := map[godigest.Digest]bool{}
	for _, b := range bodies {
		var index v1.Index
		if err := json.Unmarshal(b, &index); err != nil {
			return fmt.Errorf("referrers of a member of group %s: %w", r.Repo.Name, err)
		}
		for _, d := range index.Manifests {
			// A proxy member serves its upstream's index as it is, which
			// may not have applied the filter.
			if seen[d.Digest] || filtered && !contains(filter, d.ArtifactType) {
				continue
			}
			seen[d.Digest] = true
			descs = append(descs, d)
		}
	}
	if filtered {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	index := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: descs}
	index.SchemaVersion = 2
	return writeJSON(w, r.Request, v1.MediaTypeImageIndex, index)
}

// addressedRepository is the name of the repository the client addressed:
// a group whose write member or first member answers, or the repository
// itself. URLs given back to the client (upload sessions, next pages)
// name it, so that the follow-up requests come back the same way and are
// authorized with the token the client holds for that name.
func addressedRepository(r *format.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return r.Repo.Name
	}
	for _, prefix := range []string{Prefix, "/repository/"} {
		rest, ok := strings.CutPrefix(u.Path, prefix)
		if !ok {
			continue
		}
		// A mirror's path names no repository: its rest is not r.Path.
		if name, sub, _ := strings.Cut(rest, "/"); sub == r.Path && name != "" {
			return name
		}
	}
	return r.Repo.Name
}

// catalogBatch is how many images of a group's members the catalog reads
// at a time.
const catalogBatch = 1000

// groupCatalog lists, for the catalog, "<group>/<image>" for every image
// of the groups' members that user may read, after last, sorted. The
// members' images are read whole, since their order under the members'
// names is not their order under the group's.
func (f *Format) groupCatalog(ctx context.Context, user *auth.Principal, groups []*repo.Repository, last string) ([]string, error) {
	var out []string
	for _, g := range groups {
		leaves, err := f.catalogMembers(ctx, user, g, 0)
		if err != nil {
			return nil, err
		}
		if len(leaves) == 0 {
			continue
		}
		for after := ""; ; {
			images, err := f.repos.OCIImages(ctx, leaves, after, catalogBatch)
			if err != nil {
				return nil, fmt.Errorf("catalog of group %s: %w", g.Name, err)
			}
			for _, i := range images {
				if name := g.Name + "/" + i.Image; name > last {
					out = append(out, name)
				}
			}
			if len(images) < catalogBatch {
				break
			}
			after = images[len(images)-1].Repository + "/" + images[len(images)-1].Image
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// catalogMembers returns the repositories that hold the images of group g
// for user: its online members user may read, and theirs for the groups
// among them.
func (f *Format) catalogMembers(ctx context.Context, user *auth.Principal, g *repo.Repository, depth int) ([]*repo.Repository, error) {
	if depth > maxGroupDepth {
		return nil, fmt.Errorf("group %s: groups nested too deep", g.Name)
	}
	settings, err := repo.GroupSettingsOf(g)
	if err != nil {
		return nil, err
	}
	var out []*repo.Repository
	for _, name := range settings.Members {
		m, err := f.repos.Get(ctx, name)
		if errors.Is(err, repo.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !m.Online || !mayRead(user, m) {
			continue
		}
		if m.Type != repo.Group {
			out = append(out, m)
			continue
		}
		nested, err := f.catalogMembers(ctx, user, m, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, nested...)
	}
	return out, nil
}
