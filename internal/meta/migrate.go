package meta

import (
	"context"
	"fmt"
)

// migrations build the schema, in order. A migration, once released, is
// never edited: a change is a new entry. Times are Unix nanoseconds (UTC),
// digests lower-case hex.
var migrations = []string{
	1: `
CREATE TABLE repositories (
	id {{serial}},
	name TEXT NOT NULL UNIQUE,
	format TEXT NOT NULL,
	type TEXT NOT NULL,
	settings TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE blobs (
	sha256 TEXT PRIMARY KEY,
	sha512 TEXT NOT NULL,
	sha1 TEXT NOT NULL,
	md5 TEXT NOT NULL,
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX blobs_sha512 ON blobs (sha512);
CREATE INDEX blobs_sha1 ON blobs (sha1);
CREATE INDEX blobs_md5 ON blobs (md5);
CREATE TABLE repository_blobs (
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	sha256 TEXT NOT NULL REFERENCES blobs (sha256),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, sha256)
);
CREATE INDEX repository_blobs_sha256 ON repository_blobs (sha256);
CREATE TABLE components (
	id {{serial}},
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	version TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (repository_id, name, version)
);
CREATE TABLE assets (
	id {{serial}},
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	path TEXT NOT NULL,
	component_id BIGINT REFERENCES components (id) ON DELETE SET NULL,
	sha256 TEXT NOT NULL REFERENCES blobs (sha256),
	size BIGINT NOT NULL,
	content_type TEXT NOT NULL,
	uploader TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	origin_url TEXT NOT NULL DEFAULT '',
	origin_etag TEXT NOT NULL DEFAULT '',
	origin_last_modified TEXT NOT NULL DEFAULT '',
	fetched_at BIGINT NOT NULL DEFAULT 0,
	last_downloaded_at BIGINT NOT NULL DEFAULT 0,
	UNIQUE (repository_id, path)
);
CREATE INDEX assets_sha256 ON assets (sha256);
CREATE INDEX assets_component ON assets (component_id);
CREATE TABLE users (
	id {{serial}},
	name TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	admin BOOLEAN NOT NULL,
	created_at BIGINT NOT NULL
);
`,
	2: `
ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE permissions (
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	actions TEXT NOT NULL,
	PRIMARY KEY (user_id, repository_id)
);
CREATE INDEX permissions_repository ON permissions (repository_id);
CREATE TABLE tokens (
	id TEXT PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	secret_hash TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE TABLE audit_events (
	id {{serial}},
	at BIGINT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	repository TEXT NOT NULL,
	path TEXT NOT NULL,
	remote TEXT NOT NULL,
	outcome TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE TABLE leases (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
`,
	// 3: OCI images. An image is a name inside an oci repository. Manifests
	// keep their bytes in the blob store (sha256 is the blob) and their
	// metadata here; references say which blobs and child manifests a
	// manifest needs; blob links say which blobs an image may serve; uploads
	// tie a resumable upload session of the blob store to its image.
	3: `
CREATE TABLE oci_manifests (
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	image TEXT NOT NULL,
	sha256 TEXT NOT NULL REFERENCES blobs (sha256),
	digest TEXT NOT NULL,
	media_type TEXT NOT NULL,
	artifact_type TEXT NOT NULL,
	subject TEXT NOT NULL,
	annotations TEXT NOT NULL,
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	pushed_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, image, sha256)
);
CREATE INDEX oci_manifests_sha256 ON oci_manifests (sha256);
CREATE INDEX oci_manifests_subject ON oci_manifests (repository_id, image, subject);
CREATE TABLE oci_tags (
	repository_id BIGINT NOT NULL,
	image TEXT NOT NULL,
	tag TEXT NOT NULL,
	sha256 TEXT NOT NULL,
	digest TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, image, tag),
	FOREIGN KEY (repository_id, image, sha256)
		REFERENCES oci_manifests (repository_id, image, sha256) ON DELETE CASCADE
);
CREATE INDEX oci_tags_manifest ON oci_tags (repository_id, image, sha256);
CREATE TABLE oci_references (
	repository_id BIGINT NOT NULL,
	image TEXT NOT NULL,
	manifest TEXT NOT NULL,
	target TEXT NOT NULL REFERENCES blobs (sha256),
	kind TEXT NOT NULL,
	PRIMARY KEY (repository_id, image, manifest, target),
	FOREIGN KEY (repository_id, image, manifest)
		REFERENCES oci_manifests (repository_id, image, sha256) ON DELETE CASCADE
);
CREATE INDEX oci_references_target ON oci_references (target);
CREATE TABLE oci_blob_links (
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	image TEXT NOT NULL,
	sha256 TEXT NOT NULL REFERENCES blobs (sha256),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, image, sha256)
);
CREATE INDEX oci_blob_links_sha256 ON oci_blob_links (sha256);
CREATE TABLE oci_uploads (
	id TEXT PRIMARY KEY,
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	image TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
`,
	4: `
CREATE TABLE npm_packages (
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	document TEXT NOT NULL,
	description TEXT NOT NULL,
	keywords TEXT NOT NULL,
	revision BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, name)
);
CREATE TABLE npm_versions (
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	version TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, name, version)
);
`,
	5: `
CREATE TABLE pypi_files (
	repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	filename TEXT NOT NULL,
	project TEXT NOT NULL,
	version TEXT NOT NULL,
	path TEXT NOT NULL,
	sha256 TEXT NOT NULL,
	size BIGINT NOT NULL,
	requires_python TEXT NOT NULL,
	metadata TEXT NOT NULL,
	yanked BIGINT NOT NULL DEFAULT 0,
	yank_reason TEXT NOT NULL DEFAULT '',
	uploader TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, filename)
);
CREATE INDEX pypi_files_project ON pypi_files (repository_id, project);
`,
}

// migrate applies the migrations newer than the database's version, each in
// its own transaction together with the version bump.
func (db *DB) migrate(ctx context.Context) error {
	_, err := db.sql.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`)
	if err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	var current int
	err = db.sql.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := len(migrations) - 1
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this arca's %d", current, latest)
	}
	for v := current + 1; v <= latest; v++ {
		err := db.WithTx(ctx, func(q Queries) error {
			qq := q.(queries)
			if _, err := qq.db.ExecContext(ctx, db.dialect.ddl(migrations[v])); err != nil {
				return fmt.Errorf("apply migration %d: %w", v, err)
			}
			_, err := qq.exec(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, v)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
