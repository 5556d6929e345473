// Package maven is the Maven format: hosted repositories in the Maven 2
// layout that mvn and Gradle deploy to with PUT and resolve from with GET,
// at /repository/{name}/GROUP/PATH/ARTIFACT/VERSION/FILE.
//
// Artifact files (jars, POMs, signatures, Gradle .module files, anything
// that parses as coordinates) are assets filed under the component
// (groupId:artifactId, version). Checksum files are never stored: uploaded
// ones are checked against the artifact, and every checksum is served from
// the digests of the stored bytes. maven-metadata.xml is generated from the
// stored files on each request (see metadata.go).
package maven

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/format"
	"arca/internal/proxy"
	"arca/internal/repo"
)

// Format serves Maven repositories.
type Format struct {
	repos *repo.Service
	cache *proxy.Service
	// pluginsMu serializes updates of group-level plugin documents.
	pluginsMu sync.Mutex
}

var _ format.Format = (*Format)(nil)

// New returns the Maven format over the repository service, with the cache
// of its proxy repositories (nil when it serves none).
func New(repos *repo.Service, cache *proxy.Service) *Format {
	return &Format{repos: repos, cache: cache}
}

// ID returns "maven".
func (f *Format) ID() string { return "maven" }

// Routes lists the Maven endpoints: every path is a file of the layout, and
// a path ending in "/" is a folder to browse.
func (f *Format) Routes() []format.Route {
	return []format.Route{
		{Method: "GET", Pattern: "/{path...}", Permission: auth.Read, Handle: f.get},
		{Method: "PUT", Pattern: "/{path...}", Permission: auth.Write, Handle: f.put},
		{Method: "DELETE", Pattern: "/{path...}", Permission: auth.Delete, Handle: f.delete},
	}
}

// Classify says that artifact files are artifacts, except those of
// snapshot versions, which can be redeployed; maven-metadata.xml, checksums
// and folders are metadata.
func (f *Format) Classify(p string) format.Kind {
	if p == "" || strings.HasSuffix(p, "/") {
		return format.Metadata
	}
	t := parseTarget(p)
	if t.metadata || t.checksum != "" {
		return format.Metadata
	}
	if c, err := ParsePath(p); err != nil || c.Snapshot() {
		return format.Metadata
	}
	return format.Artifact
}

// VersionPolicy says which versions a repository accepts.
type VersionPolicy string

// Version policies.
const (
	ReleasePolicy  VersionPolicy = "release"
	SnapshotPolicy VersionPolicy = "snapshot"
	MixedPolicy    VersionPolicy = "mixed"
)

// Settings is the "maven" section of a repository definition.
type Settings struct {
	// VersionPolicy is release (the default), snapshot or mixed.
	VersionPolicy VersionPolicy `json:"versionPolicy"`
	// SnapshotRetention keeps that many of the newest builds of each
	// snapshot version; 0 keeps all.
	SnapshotRetention int `json:"snapshotRetention"`
}

// ValidateSettings checks the "maven" section: only known keys, a known
// version policy and a non-negative retention.
func (f *Format) ValidateSettings(r *repo.Repository, raw json.RawMessage) error {
	var s Settings
	if err := repo.DecodeSection("maven", raw, &s); err != nil {
		return err
	}
	switch s.VersionPolicy {
	case "", ReleasePolicy, SnapshotPolicy, MixedPolicy:
	default:
		return fmt.Errorf("%w: maven settings: versionPolicy must be release, snapshot or mixed, not %q",
			repo.ErrInvalid, s.VersionPolicy)
	}
	if s.SnapshotRetention < 0 {
		return fmt.Errorf("%w: maven settings: snapshotRetention must not be negative", repo.ErrInvalid)
	}
	return nil
}

// settingsOf reads a repository's validated "maven" section, with defaults.
func settingsOf(r *repo.Repository) Settings {
	s := Settings{VersionPolicy: ReleasePolicy}
	if raw := r.Sections["maven"]; raw != nil {
		json.Unmarshal(raw, &s) //nolint:errcheck // validated by ValidateSettings
	}
	if s.VersionPolicy == "" {
		s.VersionPolicy = ReleasePolicy
	}
	return s
}

// WriteError answers the problem as plain text: mvn reports the status
// line, and the body is there for people and logs.
func (f *Format) WriteError(w http.ResponseWriter, r *http.Request, p format.Problem) {
	format.WritePlainError(w, p)
}

// expectSize is an expectation of n bytes and nothing else.
func expectSize(n int) blob.Expect {
	e := blob.NoExpectation
	e.Size = int64(n)
	return e
}
