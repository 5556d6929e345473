package maven

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// A group repository answers maven-metadata.xml with one document made of
// its members' documents: the versions of every member at artifact level,
// the first member's build list at snapshot version level, and the plugins
// of every member at group level. Its checksums are those of the merged
// bytes, never a member's. Every other file of a group comes from the first
// member that has it, which the edge arranges without the format.

var _ format.Merger = (*Format)(nil)

var _ format.MergeKeeper = (*Format)(nil)

// MergeVariant lets the edge keep every merged answer: maven-metadata.xml
// merged from the members depends on nothing but what the edge keys it by.
func (f *Format) MergeVariant(r *http.Request, path string) (string, bool) { return "", true }

// Merges reports whether a read of a group at path is merged from its
// members: maven-metadata.xml and its checksum files.
func (f *Format) Merges(r *http.Request, path string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return parseTarget(path).metadata
}

// memberDoc is one member's maven-metadata.xml as it answered.
type memberDoc struct {
	body []byte
	doc  Metadata
}

// getMerged serves a group's maven-metadata.xml, or one of its checksums,
// merged from the members' documents.
func (f *Format) getMerged(w http.ResponseWriter, r *format.Request, t target) error {
	body, err := f.mergedMetadata(r, t.path)
	if err != nil {
		return err
	}
	// No Last-Modified: the newest member's time does not move when a
	// member leaves or loses versions, and If-Modified-Since would then
	// answer 304 for a changed document. The ETag, of the merged bytes,
	// always moves.
	d := blob.DigestBytes(body)
	if t.checksum != "" {
		serveChecksum(w, r, d.Get(t.checksum), time.Time{})
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("ETag", `"`+d.SHA1+`"`)
	setChecksumHeaders(h, d.Digests)
	http.ServeContent(w, r.Request, metadataName, time.Time{}, bytes.NewReader(body))
	return nil
}

// mergedMetadata returns the merged document at p for the group r.
func (f *Format) mergedMetadata(r *format.Request, p string) ([]byte, error) {
	docs, err := f.memberDocs(r, p)
	if err != nil {
		return nil, err
	}
	if IsSnapshot(lastSegment(strings.TrimSuffix(p, metadataName))) {
		// A snapshot version's builds are those of one repository: mixing
		// two members' lists could name files neither of them holds.
		return docs[0].body, nil
	}
	return mergeDocs(docs)
}

// memberDocs collects the document at p from each member the caller may
// read, in the group's order, those of nested groups in their place. A
// member without the document is passed over; one that fails (an
// unreachable upstream, an offline repository, a damaged document) is
// skipped with a warning, unless no member answers at all.
func (f *Format) memberDocs(r *format.Request, p string) ([]memberDoc, error) {
	var docs []memberDoc
	failed := fmt.Errorf("no member of group %s that you may read has %s: %w", r.Repo.Name, p, repo.ErrNotFound)
	var walk func(g *format.Request) error
	walk = func(g *format.Request) error {
		for _, m := range g.Members {
			if m.Repo.Type == repo.Group {
				if err := walk(m); err != nil {
					return err
				}
				continue
			}
			doc, err := f.captureDoc(m, p)
			switch {
			case err == nil:
				docs = append(docs, doc)
			case format.IsNotFound(err):
			case format.IsUnavailable(err), errors.Is(err, errBadDocument):
				slog.WarnContext(r.Context(), "maven group member skipped", "group", r.Repo.Name,
					"member", m.Repo.Name, "path", p, "error", err)
				failed = err
			default:
				return fmt.Errorf("%s of group member %s: %w", p, m.Repo.Name, err)
			}
		}
		return nil
	}
	if err := walk(r); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, failed
	}
	return docs, nil
}

// errBadDocument marks a member's answer that is no usable document.
var errBadDocument = errors.New("member answered no maven-metadata.xml")

// captureDoc runs the read of p in one member, a hosted or proxy
// repository, and keeps its answer in memory.
func (f *Format) captureDoc(m *format.Request, p string) (memberDoc, error) {
	if !m.Repo.Online && m.Repo.Type != repo.Proxy {
		return memberDoc{}, fmt.Errorf("%s: %w", m.Repo.Name, repo.ErrOffline)
	}
	sub := *m
	sub.Path = p
	c, err := format.Capture(f.get, &sub)
	if err != nil {
		return memberDoc{}, err
	}
	if c.Status != http.StatusOK {
		return memberDoc{}, fmt.Errorf("%s answered %d: %w", m.Repo.Name, c.Status, errBadDocument)
	}
	d := memberDoc{body: c.Body}
	if err := xml.Unmarshal(c.Body, &d.doc); err != nil {
		err = fmt.Errorf("%s: %w: %w", m.Repo.Name, errBadDocument, err)
		if m.Repo.Type == repo.Proxy {
			// What an upstream sends is the upstream's failure.
			err = fmt.Errorf("%w: %w", proxy.ErrUpstream, err)
		}
		return memberDoc{}, err
	}
	return d, nil
}

// mergeDocs merges artifact-level and group-level documents: versions are
// united and put in Maven's order, latest and release computed again from
// them and lastUpdated set to the newest; plugins are united by prefix, the
// first member naming a prefix winning.
func mergeDocs(docs []memberDoc) ([]byte, error) {
	out := &Metadata{}
	var versions []string
	seen := map[string]bool{}
	var lastUpdated string
	for _, d := range docs {
		m := d.doc
		if out.GroupID == "" {
			out.GroupID = m.GroupID
		}
		if out.ArtifactID == "" {
			out.ArtifactID = m.ArtifactID
		}
		if v := m.Versioning; v != nil {
			if v.Versions != nil {
				for _, ver := range v.Versions.List {
					if ver = strings.TrimSpace(ver); ver != "" && !seen[ver] {
						seen[ver] = true
						versions = append(versions, ver)
					}
				}
			}
			if v.LastUpdated > lastUpdated {
				lastUpdated = v.LastUpdated
			}
		}
		if m.Plugins != nil {
			if out.Plugins == nil {
				out.Plugins = &Plugins{}
			}
			for _, pl := range m.Plugins.List {
				if !slices.ContainsFunc(out.Plugins.List, func(o Plugin) bool { return o.Prefix == pl.Prefix }) {
					out.Plugins.List = append(out.Plugins.List, pl)
				}
			}
		}
	}
	if len(versions) > 0 || lastUpdated != "" {
		SortVersions(versions)
		v := &Versioning{LastUpdated: lastUpdated}
		if len(versions) > 0 {
			v.Versions = &Versions{List: versions}
			v.Latest = versions[len(versions)-1]
		}
		for i := len(versions) - 1; i >= 0; i-- {
			if !IsSnapshot(versions[i]) {
				v.Release = versions[i]
				break
			}
		}
		out.Versioning = v
	}
	if out.Plugins != nil {
		slices.SortFunc(out.Plugins.List, func(a, b Plugin) int { return strings.Compare(a.Prefix, b.Prefix) })
	}
	body, err := out.encode()
	if err != nil {
		return nil, fmt.Errorf("encoding merged maven-metadata.xml: %w", err)
	}
	return body, nil
}
