package maven

import (
	"context"
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"time"

	"arca/internal/repo"
)

// Group-level maven-metadata.xml maps plugin prefixes ("jar" for
// maven-jar-plugin) to artifacts, so that "mvn PREFIX:goal" finds a
// plugin. Only the plugin's own descriptor, inside its jar, says what its
// prefix is; arca keeps what the deploying client uploads instead, merged
// by prefix into the group's document.

// storedDoc is a document kept as an asset.
type storedDoc struct {
	body    []byte
	updated time.Time
}

// maxStoredDoc bounds a group's plugin document.
const maxStoredDoc = 1 << 20

// pluginMetadata reads the stored plugin document at p.
func (f *Format) pluginMetadata(ctx context.Context, r *repo.Repository, p string) (storedDoc, error) {
	a, err := f.repos.Asset(ctx, r, p)
	if err != nil {
		return storedDoc{}, err
	}
	body, err := f.repos.Open(ctx, a)
	if err != nil {
		return storedDoc{}, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxStoredDoc))
	return storedDoc{body: b, updated: a.UpdatedAt}, err
}

// storePlugins merges the plugins of an uploaded group-level document into
// the one stored at p, the upload winning for a prefix both name.
func (f *Format) storePlugins(ctx context.Context, r *repo.Repository, p string, up *Metadata, uploader string) error {
	// TODO: the read-merge-write is serialized within this process only;
	// two nodes deploying plugins of one group at the same moment can
	// drop one plugin's entry until it is deployed again.
	f.pluginsMu.Lock()
	defer f.pluginsMu.Unlock()
	merged := &Metadata{}
	if old, err := f.pluginMetadata(ctx, r, p); err == nil {
		xml.Unmarshal(old.body, merged) //nolint:errcheck // arca wrote it; a damaged one is replaced
	}
	if merged.Plugins == nil {
		merged.Plugins = &Plugins{}
	}
	for _, pl := range up.Plugins.List {
		if pl.Prefix == "" || pl.ArtifactID == "" {
			continue
		}
		merged.Plugins.List = slices.DeleteFunc(merged.Plugins.List, func(o Plugin) bool { return o.Prefix == pl.Prefix })
		merged.Plugins.List = append(merged.Plugins.List, pl)
	}
	slices.SortFunc(merged.Plugins.List, func(a, b Plugin) int { return strings.Compare(a.Prefix, b.Prefix) })
	merged.ModelVersion, merged.GroupID, merged.ArtifactID, merged.Version, merged.Versioning = "", "", "", "", nil
	body, err := merged.encode()
	if err != nil {
		return err
	}
	_, err = f.repos.PutAsset(ctx, r, strings.NewReader(string(body)), repo.PutOptions{
		Path: p, ContentType: "application/xml", Uploader: uploader, Expect: expectSize(len(body)),
	})
	return err
}
