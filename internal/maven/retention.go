package maven

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"arca/internal/repo"
)

// Snapshot retention keeps the newest builds of each snapshot version in
// repositories whose "maven" section sets snapshotRetention. It runs when
// a deploy ends (the client's upload of the version's maven-metadata.xml,
// which mvn and Gradle send last) and with every garbage collection.

// retain deletes the files of all but the keep newest builds of the
// snapshot version in folder, and returns their paths; a dry run only
// returns them. Files named with the plain -SNAPSHOT version belong to no
// build and are kept, and so is the newest file of each classifier and
// extension.
func (f *Format) retain(ctx context.Context, r *repo.Repository, folder string, keep int, dryRun bool) ([]string, error) {
	files, err := f.filesUnder(ctx, r, folder, 1)
	if err != nil {
		return nil, err
	}
	var builds []build
	for _, fl := range files {
		b := build{fl.Timestamp, fl.BuildNumber}
		if fl.Timestamped() && !slices.Contains(builds, b) {
			builds = append(builds, b)
		}
	}
	if len(builds) <= keep {
		return nil, nil
	}
	slices.SortFunc(builds, func(a, b build) int {
		if a.newer(b) {
			return -1
		}
		return 1
	})
	old := builds[keep:]
	// The newest file of each classifier and extension is what the
	// version's metadata points at: it stays even when its build is old,
	// so that a later build of only some files (a sources jar deployed on
	// its own) never leaves the version without its main jar.
	type kind struct{ classifier, extension string }
	newest := map[kind]build{}
	for _, fl := range files {
		k, b := kind{fl.Classifier, fl.Extension}, build{fl.Timestamp, fl.BuildNumber}
		if cur, ok := newest[k]; fl.Timestamped() && (!ok || b.newer(cur)) {
			newest[k] = b
		}
	}
	var paths []string
	for _, fl := range files {
		b := build{fl.Timestamp, fl.BuildNumber}
		if fl.Timestamped() && slices.Contains(old, b) && newest[kind{fl.Classifier, fl.Extension}] != b {
			paths = append(paths, folder+fileName(fl.Coordinates))
		}
	}
	if dryRun || len(paths) == 0 {
		return paths, nil
	}
	if err := f.repos.PruneAssets(ctx, r, paths); err != nil {
		return nil, err
	}
	slog.InfoContext(ctx, "maven snapshot retention", "repository", r.Name, "folder", folder,
		"kept_builds", keep, "files_deleted", len(paths))
	return paths, nil
}

// fileName is the file name of the coordinates.
func fileName(c Coordinates) string {
	name := c.ArtifactID + "-" + c.FileVersion
	if c.Classifier != "" {
		name += "-" + c.Classifier
	}
	return name + "." + c.Extension
}

// Prune applies snapshot retention to every snapshot version of every
// Maven repository that sets it, for garbage collection, and returns the
// paths deleted as "repository/path"; a dry run deletes nothing.
func (f *Format) Prune(ctx context.Context, dryRun bool) ([]string, error) {
	var deleted []string
	for after := ""; ; {
		repos, err := f.repos.List(ctx, after, 500)
		if err != nil {
			return deleted, err
		}
		for _, r := range repos {
			keep := settingsOf(r).SnapshotRetention
			if r.Format != f.ID() || keep == 0 {
				continue
			}
			folders, err := f.snapshotFolders(ctx, r)
			if err != nil {
				return deleted, err
			}
			for _, folder := range folders {
				paths, err := f.retain(ctx, r, folder, keep, dryRun)
				if err != nil {
					return deleted, err
				}
				for _, p := range paths {
					deleted = append(deleted, r.Name+"/"+p)
				}
			}
		}
		if len(repos) < 500 {
			return deleted, nil
		}
		after = repos[len(repos)-1].Name
	}
}

// snapshotFolders lists the folders of the repository's snapshot versions
// that hold timestamped builds.
func (f *Format) snapshotFolders(ctx context.Context, r *repo.Repository) ([]string, error) {
	var folders []string
	seen := map[string]bool{}
	err := f.repos.AssetsUnder(ctx, r, "", func(a repo.Asset) error {
		c, err := ParsePath(a.Path)
		if err != nil || !c.Timestamped() {
			return nil //nolint:nilerr // not a snapshot build
		}
		folder := a.Path[:strings.LastIndex(a.Path, "/")+1]
		if !seen[folder] {
			seen[folder] = true
			folders = append(folders, folder)
		}
		return nil
	})
	return folders, err
}
