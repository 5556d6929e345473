package meta

import (
	"context"
	"fmt"
	"time"
)

// PruneOCIManifests deletes, in one transaction, the manifests of a
// repository that nothing keeps, and returns them; with dryRun it only
// returns them. A manifest is kept when a tag points to it, when it was
// pushed at or after pushedBefore (a push may be under way), when a kept
// index lists it, or when its subject is a kept manifest of the image.
func (db *DB) PruneOCIManifests(ctx context.Context, repositoryID int64, pushedBefore time.Time, dryRun bool) ([]OCIManifest, error) {
	var doomed []OCIManifest
	err := db.WithTx(ctx, func(qq Queries) error {
		q := qq.(queries)
		var err error
		if doomed, err = q.unkeptOCIManifests(ctx, repositoryID, pushedBefore); err != nil || dryRun {
			return err
		}
		for _, m := range doomed {
			if err := q.DeleteOCIManifest(ctx, repositoryID, m.Image, m.Blob.SHA256); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return doomed, nil
}

func (q queries) unkeptOCIManifests(ctx context.Context, repositoryID int64, pushedBefore time.Time) ([]OCIManifest, error) {
	type node struct {
		m     OCIManifest
		young bool
		kept  bool
	}
	key := func(image, sha string) string { return image + "\x00" + sha }
	nodes := map[string]*node{}
	byDigest := map[string]string{} // image + digest string -> key
	rows, err := q.query(ctx, `SELECT `+ociManifestColumns+`, m.pushed_at`+ociManifestFrom+
		`WHERE m.repository_id = ?`, repositoryID)
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	var order []string
	for rows.Next() {
		var n node
		var created, pushed int64
		if err := rows.Scan(&n.m.RepositoryID, &n.m.Image, &n.m.Blob.SHA256, &n.m.Blob.SHA512, &n.m.Blob.SHA1,
			&n.m.Blob.MD5, &n.m.Blob.Size, &n.m.Digest, &n.m.MediaType, &n.m.ArtifactType, &n.m.Subject,
			&n.m.Annotations, &created, &pushed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan manifest: %w", err)
		}
		n.m.CreatedAt = fromNanos(created)
		n.young = pushed >= nanos(pushedBefore)
		k := key(n.m.Image, n.m.Blob.SHA256)
		nodes[k] = &n
		order = append(order, k)
		byDigest[key(n.m.Image, "sha256:"+n.m.Blob.SHA256)] = k
		byDigest[key(n.m.Image, "sha512:"+n.m.Blob.SHA512)] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	children := map[string][]string{}
	rows, err = q.query(ctx, `SELECT image, manifest, target FROM oci_references
		WHERE repository_id = ? AND kind = ?`, repositoryID, OCIRefManifest)
	if err != nil {
		return nil, fmt.Errorf("list index references: %w", err)
	}
	for rows.Next() {
		var image, parent, child string
		if err := rows.Scan(&image, &parent, &child); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan reference: %w", err)
		}
		children[key(image, parent)] = append(children[key(image, parent)], key(image, child))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list index references: %w", err)
	}
	referrers := map[string][]string{}
	for _, k := range order {
		n := nodes[k]
		if n.m.Subject == "" {
			continue
		}
		if s, ok := byDigest[key(n.m.Image, n.m.Subject)]; ok {
			referrers[s] = append(referrers[s], k)
		}
	}
	tagged, err := q.query(ctx, `SELECT DISTINCT image, sha256 FROM oci_tags WHERE repository_id = ?`, repositoryID)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	var queue []string
	for tagged.Next() {
		var image, sha string
		if err := tagged.Scan(&image, &sha); err != nil {
			tagged.Close()
			return nil, fmt.Errorf("scan tag: %w", err)
		}
		queue = append(queue, key(image, sha))
	}
	tagged.Close()
	if err := tagged.Err(); err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	for _, k := range order {
		if nodes[k].young {
			queue = append(queue, k)
		}
	}
	for len(queue) > 0 {
		k := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		n := nodes[k]
		if n == nil || n.kept {
			continue
		}
		n.kept = true
		queue = append(queue, children[k]...)
		queue = append(queue, referrers[k]...)
	}
	var doomed []OCIManifest
	for _, k := range order {
		if !nodes[k].kept {
			doomed = append(doomed, nodes[k].m)
		}
	}
	return doomed, nil
}

// BlobInUseExcept is BlobInUseAt as if the manifests gone were deleted:
// what a dry run of garbage collection needs after PruneOCIManifests with
// dryRun.
func (db *DB) BlobInUseExcept(ctx context.Context, sha256 string, staleLinks time.Time, gone map[OCIManifestKey]bool) (bool, error) {
	q := db.q
	var used bool
	err := q.row(ctx, `SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE sha256 = ?)
		OR EXISTS (SELECT 1 FROM assets WHERE sha256 = ?)
		OR EXISTS (SELECT 1 FROM oci_blob_links WHERE sha256 = ? AND created_at >= ?)`,
		sha256, sha256, sha256, nanos(staleLinks)).Scan(&used)
	if err != nil || used {
		return used, err
	}
	for _, query := range []string{
		`SELECT repository_id, image, sha256 FROM oci_manifests WHERE sha256 = ?`,
		`SELECT repository_id, image, manifest FROM oci_references WHERE target = ?`,
	} {
		rows, err := q.query(ctx, query, sha256)
		if err != nil {
			return false, fmt.Errorf("check blob %s use: %w", sha256, err)
		}
		for rows.Next() {
			var k OCIManifestKey
			if err := rows.Scan(&k.RepositoryID, &k.Image, &k.SHA256); err != nil {
				rows.Close()
				return false, fmt.Errorf("check blob %s use: %w", sha256, err)
			}
			if !gone[k] {
				rows.Close()
				return true, nil
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("check blob %s use: %w", sha256, err)
		}
	}
	return false, nil
}
