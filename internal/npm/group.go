package npm

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"arca/internal/format"
	"arca/internal/repo"
)

// A group repository answers package documents by merging those of its
// members, which the edge hands over in Request.Members: each member's
// full packument is captured from the member's own handler, the versions
// of all members are kept (the first member in the group's order wins a
// version several have), and every tarball link points at the group, so
// that the client fetches the tarball back through the group, where the
// edge answers it from the first member that has it. The merged bytes,
// and with them the ETag, change whenever a member's document does; the
// edge keeps the answer until then (format.MergeKeeper).

var _ format.Merger = (*Format)(nil)

// Merges accepts the reads a group answers with merged documents: a
// packument (full or abbreviated), a version or dist-tag document, the
// dist-tags of npm dist-tag ls, and whoami, which needs no member.
func (f *Format) Merges(r *http.Request, p string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if p == "-/whoami" {
		return true
	}
	if strings.HasPrefix(p, "-/package/") {
		_, _, ok := distTagsPath(p)
		return ok
	}
	t, ok := parsePath(p)
	return ok && !strings.HasPrefix(t.name, "-") && t.file == "" && t.rev == ""
}

var _ format.MergeKeeper = (*Format)(nil)

// MergeVariant lets the edge keep merged documents, except whoami, which
// is the caller's, and the reads made for a write (forWrite), which must
// see the write member as it is.
func (f *Format) MergeVariant(r *http.Request, p string) (string, bool) {
	return "", p != "-/whoami" && !forWrite(r)
}

// mergedDoc is a package's document as several members give it.
type mergedDoc struct {
	name string
	// fields are the top-level fields of the first member that has the
	// package: its description, readme and the like.
	fields   map[string]json.RawMessage
	distTags map[string]string
	versions map[string]manifest
	// times holds each kept version's publication time, from the member
	// whose version was kept, with "created" and "modified".
	times map[string]string
}

// parseMemberDoc decodes a member's full packument.
func parseMemberDoc(b []byte, name string) (*mergedDoc, error) {
	d := newMergedDoc(name)
	if err := json.Unmarshal(b, &d.fields); err != nil || d.fields == nil {
		return nil, fmt.Errorf("%w: a member's packument of %s is not a JSON object", repo.ErrInvalid, name)
	}
	if raw, ok := d.fields["versions"]; ok {
		if err := json.Unmarshal(raw, &d.versions); err != nil {
			return nil, fmt.Errorf("a member's packument of %s has malformed versions: %w", name, err)
		}
	}
	json.Unmarshal(d.fields["dist-tags"], &d.distTags) //nolint:errcheck // no tags when malformed
	// An unpublished package's "time" holds an object; only strings count.
	var times map[string]json.RawMessage
	json.Unmarshal(d.fields["time"], &times) //nolint:errcheck // no times when malformed
	for k, raw := range times {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			d.times[k] = s
		}
	}
	if d.versions == nil {
		d.versions = map[string]manifest{}
	}
	if d.distTags == nil {
		d.distTags = map[string]string{}
	}
	return d, nil
}

// add merges o, a later member's document, into d: o's versions d lacks,
// with their times, and o's tags d lacks. "created" becomes the earliest
// and "modified" the latest of both.
func (d *mergedDoc) add(o *mergedDoc) {
	if d.fields == nil {
		d.fields = o.fields
	}
	for v, m := range o.versions {
		if _, ok := d.versions[v]; ok {
			continue
		}
		d.versions[v] = m
		if t, ok := o.times[v]; ok {
			d.times[v] = t
		}
	}
	for tag, v := range o.distTags {
		if _, ok := d.distTags[tag]; !ok {
			d.distTags[tag] = v
		}
	}
	if t, ok := o.times["created"]; ok {
		if cur, ok := d.times["created"]; !ok || laterTime(cur, t) {
			d.times["created"] = t
		}
	}
	if t, ok := o.times["modified"]; ok {
		if cur, ok := d.times["modified"]; !ok || laterTime(t, cur) {
			d.times["modified"] = t
		}
	}
}

// laterTime reports whether the time a is after b; times that do not
// parse compare as strings, which the ISO form keeps in order.
func laterTime(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a > b
	}
	return ta.After(tb)
}

// newMergedDoc is an empty merge for a package.
func newMergedDoc(name string) *mergedDoc {
	return &mergedDoc{name: name, distTags: map[string]string{}, versions: map[string]manifest{}, times: map[string]string{}}
}

// version resolves a version or dist-tag of the merged document.
func (d *mergedDoc) version(v string) (manifest, bool) {
	if tagged, ok := d.distTags[v]; ok {
		v = tagged
	}
	m, ok := d.versions[v]
	return m, ok
}

// render encodes the merged packument, full or abbreviated, with every
// tarball link under repoURL. The full one keeps the first member's other
// fields, without its _rev, which means nothing for a group, unless
// keepRev.
func (d *mergedDoc) render(repoURL string, abbreviated, keepRev bool) ([]byte, error) {
	versions := make(map[string]manifest, len(d.versions))
	for v, m := range d.versions {
		m = withTarball(m, d.name, repoURL)
		if abbreviated {
			m = abbreviate(m)
		}
		versions[v] = m
	}
	if abbreviated {
		return marshal(map[string]any{"name": d.name, "dist-tags": d.distTags, "versions": versions,
			"modified": d.times["modified"]})
	}
	out := make(map[string]any, len(d.fields)+4)
	for k, raw := range d.fields {
		out[k] = raw
	}
	if !keepRev {
		delete(out, "_rev")
	}
	out["_id"], out["name"] = d.name, d.name
	out["dist-tags"], out["versions"], out["time"] = d.distTags, versions, d.times
	return marshal(out)
}

// mergeMembers merges the package documents of the members, in order.
// Members that lack the package are passed over; members that fail (an
// unreachable upstream, an offline repository) are skipped with a
// warning, unless none has the package: the failure is then the answer.
func (f *Format) mergeMembers(r *format.Request, members []*format.Request, name string, depth int) (*mergedDoc, error) {
	if depth > maxMergeDepth {
		return nil, fmt.Errorf("group %s: groups nested more than %d deep", r.Repo.Name, maxMergeDepth)
	}
	merged := newMergedDoc(name)
	found := false
	var failure error
	for _, m := range members {
		d, err := f.memberDoc(m, name, depth)
		switch {
		case err == nil:
			merged.add(d)
			found = true
			continue
		case format.IsNotFound(err):
			continue
		case format.IsUnavailable(err):
			slog.WarnContext(r.Context(), "npm group member skipped", "group", r.Repo.Name,
				"member", m.Repo.Name, "package", name, "error", err)
			failure = err
			continue
		}
		return nil, fmt.Errorf("package %s in member %s of group %s: %w", name, m.Repo.Name, r.Repo.Name, err)
	}
	switch {
	case found:
		return merged, nil
	case failure != nil:
		return nil, failure
	}
	return nil, npmErr(http.StatusNotFound, "package %s not found", name)
}

// maxMergeDepth bounds the nesting of groups a merge walks; the edge
// bounds it too.
const maxMergeDepth = 8

// memberDoc returns one member's document of a package: a nested group's
// merge, or what the member's handler answers for the full packument.
func (f *Format) memberDoc(m *format.Request, name string, depth int) (*mergedDoc, error) {
	if m.Repo.Type == repo.Group {
		return f.mergeMembers(m, m.Members, name, depth+1)
	}
	if !m.Repo.Online && m.Repo.Type != repo.Proxy {
		return nil, fmt.Errorf("%s: %w", m.Repo.Name, repo.ErrOffline)
	}
	sub := *m
	sub.Request = m.Request.Clone(m.Context())
	sub.Path = name
	sub.Members = nil
	// The full form, uncompressed, is what is merged.
	sub.Header.Set("Accept", "application/json")
	sub.Header.Del("Accept-Encoding")
	c, err := format.Capture(f.get, &sub)
	if err != nil {
		return nil, err
	}
	if c.Status != http.StatusOK {
		return nil, fmt.Errorf("member %s answered the packument of %s with status %d", m.Repo.Name, name, c.Status)
	}
	d, err := parseMemberDoc(c.Body, name)
	if err != nil {
		return nil, err
	}
	if len(d.versions) == 0 {
		return nil, npmErr(http.StatusNotFound, "package %s not found", name)
	}
	return d, nil
}

// forWrite reports whether a read is made for a write that follows:
// ?write=true, which npm deprecate and unpublish ask for before they send
// the document back changed, and the check npm publish makes that the
// version is new (npm names its command in the Npm-Command header).
func forWrite(r *http.Request) bool {
	return r.URL.Query().Get("write") == "true" || strings.EqualFold(r.Header.Get("Npm-Command"), "publish")
}

// groupDoc merges the package's document for a read of a group. A read
// made for a write (forWrite) is answered from the write member alone,
// whose document the write will change: a version another member has
// must not stop a publish to the write member.
func (f *Format) groupDoc(r *format.Request, name string) (*mergedDoc, bool, error) {
	if !forWrite(r.Request) {
		d, err := f.mergeMembers(r, r.Members, name, 0)
		return d, false, err
	}
	g, err := repo.GroupSettingsOf(r.Repo)
	if err != nil {
		return nil, false, err
	}
	var members []*format.Request
	for _, m := range r.Members {
		if g.WriteMember != "" && m.Repo.Name == g.WriteMember {
			members = append(members, m)
		}
	}
	d, err := f.mergeMembers(r, members, name, 0)
	return d, true, err
}

// getGroup answers a packument or a version document of a group.
func (f *Format) getGroup(w http.ResponseWriter, r *format.Request, t target) error {
	d, forWrite, err := f.groupDoc(r, t.name)
	if err != nil {
		return err
	}
	if t.rest != "" {
		m, ok := d.version(t.rest)
		if !ok {
			return fmt.Errorf("%w: %s has no version or dist-tag %q", repo.ErrNotFound, t.name, t.rest)
		}
		return serveJSON(w, r, "application/json", withTarball(m, t.name, r.RepositoryURL()))
	}
	abbreviated := strings.Contains(r.Header.Get("Accept"), abbreviatedType) &&
		r.URL.Query().Get("write") != "true"
	body, err := d.render(r.RepositoryURL(), abbreviated, forWrite)
	if err != nil {
		return err
	}
	out, err := render(body)
	if err != nil {
		return err
	}
	ctype := "application/json"
	if abbreviated {
		ctype = abbreviatedType
	}
	serveRendered(w, r, ctype, out)
	return nil
}

// groupTags answers npm dist-tag ls on a group from the merged tags.
func (f *Format) groupTags(w http.ResponseWriter, r *format.Request, name, tag string) error {
	d, err := f.mergeMembers(r, r.Members, name, 0)
	if err != nil {
		return err
	}
	if tag != "" {
		v, ok := d.distTags[tag]
		if !ok {
			return npmErr(http.StatusNotFound, "%s has no dist-tag %s", name, tag)
		}
		return writeJSON(w, http.StatusOK, v)
	}
	return writeJSON(w, http.StatusOK, d.distTags)
}
