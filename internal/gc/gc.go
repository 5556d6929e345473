// Package gc removes blobs that nothing uses any more, for every format at
// once: a blob is kept while any asset or repository link refers to it, and
// while it is younger than a grace period, so that an upload in flight is
// never hurt.
//
// # Safety
//
// A run walks the blob store. For each blob modified before the run's start
// minus the grace period, and that no asset or link refers to, it calls
// blob.Store.Sweep. Under the store's exclusive sweep lock, Sweep checks the
// blob's modification time again and then calls meta's ForgetBlobIfUnused,
// which, in one transaction, forgets the blob's record only if nothing
// refers to it; only then is the file deleted. Writers of this process hold
// the lock shared from the commit of a blob to the end of the transaction
// that records it, so a sweep never sees a blob committed but not yet
// recorded. A blob file with no record at all (left by a crash between the
// two) is unused and freed.
//
// The lock is per process. Nodes sharing the database and the blob storage
// are protected from each other by the grace period: a commit, even of
// bytes already stored, makes the blob young again. Runs themselves are
// serialized across nodes by the "gc" lease in the metadata database.
//
// # OCI images
//
// An OCI manifest keeps its own bytes, its config and layers, and an
// index its child manifests. An image's link to a blob, made by an upload
// or a mount, keeps the blob only while it is younger than the grace
// period: after that, a blob no manifest references is what an abandoned
// or deleted push left, and it is freed with its links. In repositories
// whose "oci" section sets gcUntagged, a run first deletes the manifests
// pushed before the grace period that no tag, no kept index and no kept
// subject keeps (a referrer lives as long as its subject), so that their
// blobs go in the same run. Pushes in flight are safe: their manifests and
// links are younger than the grace period.
package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"arca/internal/blob"
	"arca/internal/meta"
)

// ErrBusy is wrapped by the error of a run refused because another run, in
// this process or on another node, holds the garbage collection lease.
var ErrBusy = errors.New("garbage collection is already running")

// errLeaseLost is the cause of a run stopped because its lease could not be
// renewed.
var errLeaseLost = errors.New("garbage collection lease lost")

// leaseName is the lease a run holds in the metadata database.
const leaseName = "gc"

// Report says what a run freed, or would free in a dry run.
type Report struct {
	DryRun     bool     `json:"dryRun"`
	BlobsFreed int      `json:"blobsFreed"`
	BytesFreed int64    `json:"bytesFreed"`
	Blobs      []string `json:"blobs"` // SHA-256 of each blob freed, sorted
	// ManifestsDeleted counts the OCI manifests deleted (or that a dry run
	// would delete) because nothing keeps them, in repositories whose "oci"
	// section sets gcUntagged; Manifests names them as
	// "<repository>/<image>@<digest>", sorted.
	ManifestsDeleted int      `json:"manifestsDeleted,omitempty"`
	Manifests        []string `json:"manifests,omitempty"`
	// AssetsDeleted counts the files the formats' cleanup settings deleted
	// (or that a dry run would delete), such as Maven snapshot builds
	// beyond snapshotRetention; Assets names them as
	// "<repository>/<path>", sorted. A dry run does not count the blobs
	// that only those files hold among the blobs it would free.
	AssetsDeleted int      `json:"assetsDeleted,omitempty"`
	Assets        []string `json:"assets,omitempty"`
}

// A Pruner deletes what a format's own cleanup settings no longer want
// kept, at the start of every run, so that the blobs only that held are
// freed in the same run. It returns what it deleted, or with dryRun would
// delete, as "<repository>/<path>".
type Pruner interface {
	Prune(ctx context.Context, dryRun bool) ([]string, error)
}

// Collector runs garbage collection.
type Collector struct {
	db    *meta.DB
	blobs *blob.Store
	grace time.Duration
	log   *slog.Logger

	// holder identifies this collector in the lease table: host name,
	// process id and a random part, so that two collectors never pass for
	// one another.
	holder string
	// leaseTTL is how long a lease lasts unless renewed; it is renewed
	// every leaseTTL/3 while a run goes on.
	leaseTTL time.Duration

	// running is held during a run, so that the same collector (and so
	// the same lease holder) never runs twice at once.
	running sync.Mutex

	// pruners run at the start of every run.
	pruners []Pruner
	// changed, when set, hears of each repository whose content a run
	// changed (OCI manifests pruned): see OnChange.
	changed func(repositoryID int64)

	// testHookBlob, when set by a test, runs before each blob a run
	// considers.
	testHookBlob func(sha256 string)
}

// New returns a collector sparing blobs younger than grace. log may be nil
// for slog's default logger.
func New(db *meta.DB, blobs *blob.Store, grace time.Duration, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.Default()
	}
	return &Collector{db: db, blobs: blobs, grace: max(grace, 0), log: log,
		holder: newHolder(), leaseTTL: 5 * time.Minute}
}

// AddPruner makes every run start with p. It is meant for wiring, before
// the first run.
func (c *Collector) AddPruner(p Pruner) { c.pruners = append(c.pruners, p) }

// OnChange has fn called, after a run has deleted manifests of a
// repository, with that repository's id, so that views derived from its
// content (a group's merged tag list) are made again. Call it before
// running.
func (c *Collector) OnChange(fn func(repositoryID int64)) { c.changed = fn }

// newHolder returns a lease holder id unique to this collector.
func newHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Run collects once. It deletes the OCI manifests nothing keeps where
// gcUntagged asks for it, then frees every blob modified more than the
// grace period before the run started that nothing uses, or, with dryRun,
// only lists them. It fails with an error wrapping ErrBusy when
// another run holds the lease. On any other error it stops and returns
// what it had freed so far with the error.
func (c *Collector) Run(ctx context.Context, dryRun bool) (Report, error) {
	rep := Report{DryRun: dryRun, Blobs: []string{}}
	if !c.running.TryLock() {
		return rep, fmt.Errorf("%w in this process", ErrBusy)
	}
	defer c.running.Unlock()

	ok, err := c.db.Queries().AcquireLease(ctx, leaseName, c.holder, c.leaseTTL)
	if err != nil {
		return rep, fmt.Errorf("garbage collection: %w", err)
	}
	if !ok {
		return rep, fmt.Errorf("%w: another node holds the %q lease", ErrBusy, leaseName)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		c.renewLease(ctx, cancel)
	}()
	defer func() {
		cancel(nil)
		<-renewed
		// Released even when ctx ended: whatever stopped the run must not
		// keep other nodes waiting for the lease to expire.
		rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer stop()
		if err := c.db.Queries().ReleaseLease(rctx, leaseName, c.holder); err != nil {
			c.log.WarnContext(ctx, "release garbage collection lease", "error", err)
		}
	}()

	start := time.Now()
	olderThan := start.Add(-c.grace)
	var scanned int
	err = c.prune(ctx, dryRun, &rep)
	var gone map[meta.OCIManifestKey]bool
	if err == nil {
		gone, err = c.pruneOCI(ctx, olderThan, dryRun, &rep)
	}
	if err == nil {
		err = c.blobs.Walk(ctx, func(sha256 string, size int64, modified time.Time) error {
			scanned++
			return c.consider(ctx, sha256, size, modified, olderThan, dryRun, gone, &rep)
		})
	}
	slices.Sort(rep.Blobs)
	slices.Sort(rep.Manifests)
	slices.Sort(rep.Assets)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	attrs := []any{"dry_run", dryRun, "blobs_scanned", scanned, "blobs_freed", rep.BlobsFreed,
		"bytes_freed", rep.BytesFreed, "manifests_deleted", rep.ManifestsDeleted, "assets_deleted", rep.AssetsDeleted,
		"grace", c.grace.String(), "duration_ms", time.Since(start).Milliseconds()}
	if err != nil {
		c.log.ErrorContext(ctx, "garbage collection failed", append(attrs, "error", err)...)
		return rep, fmt.Errorf("garbage collection: %w", err)
	}
	c.log.InfoContext(ctx, "garbage collection done", attrs...)
	return rep, nil
}

// consider frees one blob of the walk if nothing uses it, or only notes it
// in a dry run. Links of OCI images made before olderThan do not count as
// uses: what keeps an image's blobs is its manifests, and an old link that
// no manifest needs is an upload nobody completed into an image.
func (c *Collector) consider(ctx context.Context, sha256 string, size int64, modified, olderThan time.Time,
	dryRun bool, gone map[meta.OCIManifestKey]bool, rep *Report) error {
	if c.testHookBlob != nil {
		c.testHookBlob(sha256)
	}
	if !modified.Before(olderThan) {
		return nil
	}
	// Most blobs are used: a plain read spares them the exclusive lock.
	used, err := c.db.BlobInUseAt(ctx, sha256, olderThan)
	if err == nil && used && dryRun && len(gone) > 0 {
		// The manifests a dry run did not delete still hold their blobs.
		used, err = c.db.BlobInUseExcept(ctx, sha256, olderThan, gone)
	}
	if err != nil || used {
		return err
	}
	if dryRun {
		rep.add(sha256, size)
		return nil
	}
	freed, size, err := c.blobs.Sweep(ctx, sha256, olderThan, func(ctx context.Context) (bool, error) {
		return c.db.ForgetBlobIfUnusedAt(ctx, sha256, olderThan)
	})
	if err != nil {
		return fmt.Errorf("blob %s: %w", sha256, err)
	}
	if freed {
		rep.add(sha256, size)
	}
	return nil
}

// prune runs the pruners.
func (c *Collector) prune(ctx context.Context, dryRun bool, rep *Report) error {
	for _, p := range c.pruners {
		deleted, err := p.Prune(ctx, dryRun)
		rep.Assets = append(rep.Assets, deleted...)
		rep.AssetsDeleted = len(rep.Assets)
		if err != nil {
			return err
		}
	}
	return nil
}

// pruneOCI deletes, in the oci repositories whose "oci" section sets
// gcUntagged, the manifests that no tag, no index and no living subject
// keeps and that were pushed before olderThan (see
// meta.PruneOCIManifests), so that the blob walk after it frees their
// blobs in the same run. A dry run deletes nothing and returns what it
// would delete.
func (c *Collector) pruneOCI(ctx context.Context, olderThan time.Time, dryRun bool, rep *Report) (map[meta.OCIManifestKey]bool, error) {
	gone := map[meta.OCIManifestKey]bool{}
	for after := ""; ; {
		rows, err := c.db.Queries().ListRepositories(ctx, after, 500)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			if row.Format != "oci" || !gcUntagged(row.Settings) {
				continue
			}
			ms, err := c.db.PruneOCIManifests(ctx, row.ID, olderThan, dryRun)
			if err != nil {
				return nil, fmt.Errorf("repository %s: %w", row.Name, err)
			}
			if len(ms) > 0 && !dryRun && c.changed != nil {
				c.changed(row.ID)
			}
			for _, m := range ms {
				gone[meta.OCIManifestKey{RepositoryID: row.ID, Image: m.Image, SHA256: m.Blob.SHA256}] = true
				rep.Manifests = append(rep.Manifests, row.Name+"/"+m.Image+"@"+m.Digest)
			}
		}
		if len(rows) < 500 {
			break
		}
		after = rows[len(rows)-1].Name
	}
	rep.ManifestsDeleted = len(rep.Manifests)
	return gone, nil
}

// gcUntagged reads the gcUntagged setting of an oci repository's stored
// definition, {"oci":{"gcUntagged":true}}.
func gcUntagged(settings []byte) bool {
	var def struct {
		OCI struct {
			GCUntagged bool `json:"gcUntagged"`
		} `json:"oci"`
	}
	return json.Unmarshal(settings, &def) == nil && def.OCI.GCUntagged
}

func (r *Report) add(sha256 string, size int64) {
	r.Blobs = append(r.Blobs, sha256)
	r.BlobsFreed++
	r.BytesFreed += size
}

// renewLease renews the run's lease every third of its TTL until ctx ends.
// If it cannot, the run is stopped: another node may take the lease once it
// has expired.
func (c *Collector) renewLease(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(c.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := c.db.Queries().AcquireLease(ctx, leaseName, c.holder, c.leaseTTL)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			cancel(fmt.Errorf("%w: %w", errLeaseLost, err))
			return
		case !ok:
			cancel(errLeaseLost)
			return
		}
	}
}

// RunScheduled runs a collection every interval until ctx ends; it returns
// at once when every is not positive. A run refused because another node is
// collecting is not an error worth more than a debug line.
func (c *Collector) RunScheduled(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Run logs its own summary and failures.
		if _, err := c.Run(ctx, false); errors.Is(err, ErrBusy) {
			c.log.DebugContext(ctx, "scheduled garbage collection skipped", "reason", err)
		}
	}
}
