package npm

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"arca/internal/repo"
)

// manifest is one version's package.json as published, field by field so
// that unknown fields pass through unchanged.
type manifest map[string]json.RawMessage

// document is what arca keeps of a package: the source of its packument.
type document struct {
	Name     string              `json:"name"`
	DistTags map[string]string   `json:"dist-tags"`
	Versions map[string]manifest `json:"versions"`
	// Time holds "created", "modified" and each version's publication,
	// unpublished ones included.
	Time map[string]string `json:"time"`
	// Unpublished lists the versions removed, with when.
	Unpublished map[string]string `json:"unpublished,omitempty"`
	Readme      string            `json:"readme,omitempty"`
}

// timeFormat is the ISO form npm writes times in.
const timeFormat = "2006-01-02T15:04:05.000Z"

func now() string { return time.Now().UTC().Format(timeFormat) }

// loadDocument decodes a stored package.
func loadDocument(p *repo.NpmPackage) (*document, error) {
	d := &document{Name: p.Name}
	if len(p.Document) > 0 {
		if err := json.Unmarshal(p.Document, d); err != nil {
			return nil, fmt.Errorf("decode npm package %s: %w", p.Name, err)
		}
	}
	if d.DistTags == nil {
		d.DistTags = map[string]string{}
	}
	if d.Versions == nil {
		d.Versions = map[string]manifest{}
	}
	if d.Time == nil {
		d.Time = map[string]string{}
	}
	return d, nil
}

// store encodes d into p, with the search fields; a document without
// versions empties p, which deletes the package.
func (d *document) store(p *repo.NpmPackage) error {
	if len(d.Versions) == 0 {
		p.Document = nil
		return nil
	}
	d.Time["modified"] = now()
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode npm package %s: %w", d.Name, err)
	}
	p.Document = b
	p.Description, p.Keywords = "", ""
	if m := d.latest(); m != nil {
		p.Description = m.str("description")
		var kw []string
		json.Unmarshal(m["keywords"], &kw) //nolint:errcheck // keywords are optional
		p.Keywords = strings.Join(kw, " ")
	}
	return nil
}

// str returns a string field of a manifest, "" when absent or not a string.
func (m manifest) str(key string) string {
	var s string
	json.Unmarshal(m[key], &s) //nolint:errcheck // "" when not a string
	return s
}

// latest is the manifest of the "latest" tag, else of the highest version.
func (d *document) latest() manifest {
	if m, ok := d.Versions[d.DistTags["latest"]]; ok {
		return m
	}
	vs := d.sortedVersions()
	if len(vs) == 0 {
		return nil
	}
	return d.Versions[vs[len(vs)-1]]
}

// sortedVersions lists the versions in semver order.
func (d *document) sortedVersions() []string {
	vs := make([]string, 0, len(d.Versions))
	for v := range d.Versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool {
		a, errA := semver.NewVersion(vs[i])
		b, errB := semver.NewVersion(vs[j])
		if errA != nil || errB != nil {
			return vs[i] < vs[j]
		}
		return a.LessThan(b)
	})
	return vs
}

// fixTags drops tags whose version is gone and points "latest" at the
// highest remaining release when it lost its version.
func (d *document) fixTags() {
	for tag, v := range d.DistTags {
		if _, ok := d.Versions[v]; !ok {
			delete(d.DistTags, tag)
		}
	}
	if _, ok := d.DistTags["latest"]; !ok && len(d.Versions) > 0 {
		vs := d.sortedVersions()
		d.DistTags["latest"] = vs[len(vs)-1]
	}
}

// revision is the packument's _rev, CouchDB style.
func revision(p *repo.NpmPackage) string {
	return strconv.FormatInt(p.Revision, 10) + "-arca"
}

// tarballFile is the file name of a version's tarball: the unscoped name,
// the version and ".tgz".
func tarballFile(name, version string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name + "-" + version + ".tgz"
}

// tarballPath is the asset path of a tarball.
func tarballPath(name, file string) string { return name + "/-/" + file }

// withTarball returns a copy of m whose dist.tarball is the absolute URL of
// its tarball under repoURL (ending in "/").
func withTarball(m manifest, name, repoURL string) manifest {
	out := make(manifest, len(m))
	for k, v := range m {
		out[k] = v
	}
	var dist map[string]json.RawMessage
	if json.Unmarshal(m["dist"], &dist) != nil || dist == nil {
		dist = map[string]json.RawMessage{}
	}
	u, _ := json.Marshal(repoURL + tarballPath(name, tarballFile(name, m.str("version"))))
	dist["tarball"] = u
	out["dist"], _ = json.Marshal(dist)
	return out
}

// abbreviatedFields are the fields of a version an install needs.
var abbreviatedFields = []string{
	"name", "version", "dependencies", "optionalDependencies", "devDependencies",
	"bundleDependencies", "bundledDependencies", "peerDependencies", "peerDependenciesMeta",
	"bin", "directories", "dist", "engines", "cpu", "os", "libc", "deprecated",
	"_hasShrinkwrap", "hasInstallScript", "funding", "license",
}

// packument renders the full or abbreviated packument.
func (d *document) packument(p *repo.NpmPackage, repoURL string, abbreviated bool) map[string]any {
	versions := make(map[string]manifest, len(d.Versions))
	for v, m := range d.Versions {
		m = withTarball(m, d.Name, repoURL)
		if abbreviated {
			m = abbreviate(m)
		}
		versions[v] = m
	}
	out := map[string]any{"name": d.Name, "dist-tags": d.DistTags, "versions": versions}
	if abbreviated {
		out["modified"] = d.Time["modified"]
		return out
	}
	out["_id"] = d.Name
	out["_rev"] = revision(p)
	out["time"] = d.Time
	if d.Readme != "" {
		out["readme"] = d.Readme
	}
	if m := d.latest(); m != nil {
		for _, k := range []string{"description", "keywords", "license", "homepage", "repository",
			"bugs", "author", "maintainers", "contributors"} {
			if raw, ok := m[k]; ok {
				out[k] = raw
			}
		}
	}
	if len(d.Versions) == 0 {
		out["time"] = map[string]any{"unpublished": map[string]any{"time": d.Time["modified"]}}
	}
	return out
}

// abbreviate keeps of a manifest the fields an install needs, noting
// whether it runs install scripts.
func abbreviate(m manifest) manifest {
	small := manifest{}
	for _, k := range abbreviatedFields {
		if raw, ok := m[k]; ok {
			small[k] = raw
		}
	}
	if _, ok := m["scripts"]; ok && hasInstallScript(m) {
		small["hasInstallScript"] = json.RawMessage("true")
	}
	return small
}

// hasInstallScript reports whether a manifest runs scripts at install.
func hasInstallScript(m manifest) bool {
	var scripts map[string]json.RawMessage
	json.Unmarshal(m["scripts"], &scripts) //nolint:errcheck // none when malformed
	for _, s := range []string{"preinstall", "install", "postinstall"} {
		if _, ok := scripts[s]; ok {
			return true
		}
	}
	return false
}
