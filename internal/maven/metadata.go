package maven

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"time"

	"arca/internal/repo"
)

// arca writes maven-metadata.xml itself, from the files the repository
// holds, whenever it is asked for: what it says can never disagree with the
// artifacts, since both are read from one state of the database, and the
// same state always gives the same bytes, so that a checksum fetched after
// the document matches it. A client's upload of the document is read only
// for what arca cannot know (see plugins.go).

// Metadata is a maven-metadata.xml document, at artifact level (versions)
// or at snapshot version level (the builds).
type Metadata struct {
	XMLName      xml.Name    `xml:"metadata"`
	ModelVersion string      `xml:"modelVersion,attr,omitempty"`
	GroupID      string      `xml:"groupId,omitempty"`
	ArtifactID   string      `xml:"artifactId,omitempty"`
	Version      string      `xml:"version,omitempty"`
	Versioning   *Versioning `xml:"versioning,omitempty"`
	Plugins      *Plugins    `xml:"plugins,omitempty"`
}

// Plugins is the plugins element of group-level metadata.
type Plugins struct {
	List []Plugin `xml:"plugin"`
}

// Versions is the versions element.
type Versions struct {
	List []string `xml:"version"`
}

// SnapshotVersions is the snapshotVersions element.
type SnapshotVersions struct {
	List []SnapshotVersion `xml:"snapshotVersion"`
}

// Versioning is the versioning element of maven-metadata.xml.
type Versioning struct {
	Latest           string            `xml:"latest,omitempty"`
	Release          string            `xml:"release,omitempty"`
	Snapshot         *Snapshot         `xml:"snapshot,omitempty"`
	Versions         *Versions         `xml:"versions,omitempty"`
	LastUpdated      string            `xml:"lastUpdated,omitempty"`
	SnapshotVersions *SnapshotVersions `xml:"snapshotVersions,omitempty"`
}

// Snapshot names the newest build of a snapshot version.
type Snapshot struct {
	Timestamp   string `xml:"timestamp,omitempty"`
	BuildNumber int    `xml:"buildNumber,omitempty"`
	LocalCopy   bool   `xml:"localCopy,omitempty"`
}

// SnapshotVersion is the newest build of one classifier and extension of
// a snapshot version.
type SnapshotVersion struct {
	Classifier string `xml:"classifier,omitempty"`
	Extension  string `xml:"extension"`
	Value      string `xml:"value"`
	Updated    string `xml:"updated"`
}

// Plugin maps a Maven plugin's prefix to its artifact, in group-level
// metadata.
type Plugin struct {
	Name       string `xml:"name,omitempty"`
	Prefix     string `xml:"prefix"`
	ArtifactID string `xml:"artifactId"`
}

// lastUpdatedLayout is how maven-metadata.xml writes times, in UTC.
const lastUpdatedLayout = "20060102150405"

// encode writes the document with its XML declaration.
func (m *Metadata) encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// file is one stored artifact file with its coordinates.
type file struct {
	Coordinates
	updated time.Time
}

// filesUnder reads the artifact files stored under folder whose path has
// exactly depth more segments than folder; paths that do not parse are
// skipped.
func (f *Format) filesUnder(ctx context.Context, r *repo.Repository, folder string, depth int) ([]file, error) {
	var files []file
	err := f.repos.AssetsUnder(ctx, r, folder, func(a repo.Asset) error {
		if strings.Count(a.Path[len(folder):], "/") != depth-1 {
			return nil
		}
		c, err := ParsePath(a.Path)
		if err != nil {
			return nil //nolint:nilerr // a stored file outside the layout is no artifact
		}
		files = append(files, file{Coordinates: c, updated: a.UpdatedAt})
		return nil
	})
	return files, err
}

// artifactMetadata generates the artifact-level document of the artifact
// whose folder is folder ("org/example/lib/"): every version that holds a
// file, in Maven's order, the newest as latest and the newest release as
// release. It is repo.ErrNotFound when no version holds a file.
func (f *Format) artifactMetadata(ctx context.Context, r *repo.Repository, folder string) (*Metadata, error) {
	segs := strings.Split(strings.TrimSuffix(folder, "/"), "/")
	if len(segs) < 2 {
		return nil, fmt.Errorf("%s%s: %w", folder, metadataName, repo.ErrNotFound)
	}
	files, err := f.filesUnder(ctx, r, folder, 2)
	if err != nil {
		return nil, err
	}
	var versions []string
	var last time.Time
	for _, fl := range files {
		if !slices.Contains(versions, fl.Version) {
			versions = append(versions, fl.Version)
		}
		if fl.updated.After(last) {
			last = fl.updated
		}
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("%s%s: %w", folder, metadataName, repo.ErrNotFound)
	}
	SortVersions(versions)
	v := &Versioning{Latest: versions[len(versions)-1], Versions: &Versions{List: versions},
		LastUpdated: last.UTC().Format(lastUpdatedLayout)}
	for i := len(versions) - 1; i >= 0; i-- {
		if !IsSnapshot(versions[i]) {
			v.Release = versions[i]
			break
		}
	}
	return &Metadata{GroupID: strings.Join(segs[:len(segs)-1], "."), ArtifactID: segs[len(segs)-1], Versioning: v}, nil
}

// build identifies one deploy of a snapshot version.
type build struct {
	timestamp string
	number    int
}

// newer orders builds by build number, then timestamp.
func (b build) newer(o build) bool {
	if b.number != o.number {
		return b.number > o.number
	}
	return b.timestamp > o.timestamp
}

// snapshotMetadata generates the document of the snapshot version whose
// folder is folder ("org/example/lib/1.0-SNAPSHOT/"): its newest build,
// and for each classifier and extension the newest file. It is
// repo.ErrNotFound when the folder holds no file of that version.
func (f *Format) snapshotMetadata(ctx context.Context, r *repo.Repository, folder string) (*Metadata, error) {
	files, err := f.filesUnder(ctx, r, folder, 1)
	if err != nil {
		return nil, err
	}
	segs := strings.Split(strings.TrimSuffix(folder, "/"), "/")
	n := len(segs)
	files = slices.DeleteFunc(files, func(fl file) bool {
		return n < 3 || fl.ArtifactID != segs[n-2] || fl.Version != segs[n-1]
	})
	if len(files) == 0 {
		return nil, fmt.Errorf("%s%s: %w", folder, metadataName, repo.ErrNotFound)
	}
	m := &Metadata{ModelVersion: "1.1.0", GroupID: files[0].GroupID, ArtifactID: files[0].ArtifactID,
		Version: files[0].Version, Versioning: &Versioning{}}
	var newest build
	var last time.Time
	type key struct{ classifier, extension string }
	latest := map[key]file{}
	for _, fl := range files {
		if fl.updated.After(last) {
			last = fl.updated
		}
		b := build{fl.Timestamp, fl.BuildNumber}
		if b.newer(newest) {
			newest = b
		}
		k := key{fl.Classifier, fl.Extension}
		cur, seen := latest[k]
		if !seen || b.newer(build{cur.Timestamp, cur.BuildNumber}) {
			latest[k] = fl
		}
	}
	v := m.Versioning
	v.LastUpdated = last.UTC().Format(lastUpdatedLayout)
	if newest.number > 0 {
		v.Snapshot = &Snapshot{Timestamp: newest.timestamp, BuildNumber: newest.number}
	} else {
		// Only files named with the plain -SNAPSHOT version: Maven's
		// non-unique snapshots.
		v.Snapshot = &Snapshot{LocalCopy: true}
	}
	v.SnapshotVersions = &SnapshotVersions{}
	for _, fl := range latest {
		updated := v.LastUpdated
		if fl.Timestamp != "" {
			updated = strings.Replace(fl.Timestamp, ".", "", 1)
		}
		v.SnapshotVersions.List = append(v.SnapshotVersions.List, SnapshotVersion{Classifier: fl.Classifier,
			Extension: fl.Extension, Value: fl.FileVersion, Updated: updated})
	}
	slices.SortFunc(v.SnapshotVersions.List, func(a, b SnapshotVersion) int {
		return strings.Compare(a.Classifier+"\x00"+a.Extension, b.Classifier+"\x00"+b.Extension)
	})
	return m, nil
}

// metadataAt generates the document for a maven-metadata.xml path: at
// snapshot version level when its folder is a snapshot version, else at
// artifact level, else a group's stored plugin document.
func (f *Format) metadataAt(ctx context.Context, r *repo.Repository, p string) ([]byte, time.Time, error) {
	folder := strings.TrimSuffix(p, metadataName)
	var m *Metadata
	var err error
	if IsSnapshot(lastSegment(folder)) {
		m, err = f.snapshotMetadata(ctx, r, folder)
	} else {
		m, err = f.artifactMetadata(ctx, r, folder)
	}
	if err != nil {
		if plugins, perr := f.pluginMetadata(ctx, r, p); perr == nil {
			return plugins.body, plugins.updated, nil
		}
		return nil, time.Time{}, err
	}
	body, err := m.encode()
	if err != nil {
		return nil, time.Time{}, err
	}
	updated, _ := time.Parse(lastUpdatedLayout, m.Versioning.LastUpdated)
	return body, updated, nil
}

// lastSegment is the last segment of a folder path ending in "/".
func lastSegment(folder string) string {
	folder = strings.TrimSuffix(folder, "/")
	return folder[strings.LastIndex(folder, "/")+1:]
}
