package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"arca/internal/audit"
	"arca/internal/auth"
	"arca/internal/blob"
	"arca/internal/blob/filesystem"
	"arca/internal/config"
	"arca/internal/gc"
	"arca/internal/keyfile"
	"arca/internal/meta"
	"arca/internal/metrics"
	"arca/internal/oci"
	"arca/internal/proxy"
	"arca/internal/repo"
	"arca/internal/server"
)

func serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg)
		},
	}
	registerConfigFlags(cmd.Flags())
	return cmd
}

// newLogger builds the process logger from the settings.
func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) //nolint:errcheck // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// serve opens the stores in the data folder, wires the services and the
// formats, and answers requests until ctx ends.
func serve(ctx context.Context, cfg config.Config) error {
	log := newLogger(cfg)
	slog.SetDefault(log)
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	unlock, err := lockDataFolder(cfg.Data)
	if err != nil {
		return err
	}
	defer unlock()
	db, err := meta.OpenSQLite(ctx, filepath.Join(cfg.Data, "arca.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	driver, err := filesystem.New(filepath.Join(cfg.Data, "blobs"))
	if err != nil {
		return err
	}
	blobs := blob.NewStore(driver)
	if err := blobs.RemoveTemp(ctx); err != nil {
		return err
	}
	authn := auth.NewService(db)
	passwordAt, err := authn.Bootstrap(ctx, cfg.Data, cfg.AdminPassword)
	if err != nil {
		return err
	}
	if err := authn.LoadRegistryKey(cfg.Data, cfg.RegistryTokenKey); err != nil {
		return err
	}

	repos := repo.NewService(db, blobs)
	secretKey, err := keyfile.Load(cfg.Data, "secret.key", cfg.SecretKey)
	if err != nil {
		return err
	}
	// A configured key of any length is hashed down to the 32 bytes the
	// cipher takes.
	sum := sha256.Sum256(secretKey)
	if err := repos.SetSecretKey(sum[:]); err != nil {
		return err
	}
	cache, err := proxy.New(repos, filepath.Join(cfg.Data, "spool"), log)
	if err != nil {
		return err
	}
	formats := newFormats(repos, authn, cache)
	formats.oci.SetMirror(oci.MirrorSettings{DefaultRepository: cfg.OCIMirror.DefaultRepository,
		Namespaces: cfg.OCIMirror.Namespaces})
	auditLog := audit.New(db, log)
	if err := applyDeclarations(ctx, cfg, db, formats, authn, auditLog, log); err != nil {
		return err
	}

	checkMirror(ctx, cfg.OCIMirror, repos, log)

	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	collector := gc.New(db, blobs, time.Duration(cfg.GC.GracePeriod), log)
	for _, p := range formats.pruners {
		collector.AddPruner(p)
	}
	collector.OnChange(repos.Changed)

	// Background jobs end with ctx; the database closes only after they
	// have, so that their last writes (download marks) still land.
	var jobs sync.WaitGroup
	defer jobs.Wait()
	jobs.Go(func() { repos.RunDownloadMarks(ctx, 30*time.Second, log) })
	jobs.Go(func() { expireUploads(ctx, blobs, time.Duration(cfg.UploadSessionTTL), log) })
	jobs.Go(func() { collector.RunScheduled(ctx, time.Duration(cfg.GC.Schedule)) })
	jobs.Go(func() { cache.RunEviction(ctx, time.Minute) })
	promMetrics := metrics.New(db.BlobTotals)
	cache.SetObserver(promMetrics.ObserveProxy)

	srv := server.New(server.Options{
		BaseURL: cfg.BaseURL, TrustedProxies: cfg.Prefixes(), Version: version,
	}, log, server.Services{DB: db, Blobs: blobs, Repos: repos, Auth: authn,
		Audit: auditLog, GC: collector, Cache: cache, Metrics: promMetrics}, formats.list)
	baseURL := cfg.BaseURL
	if baseURL == "" {
		baseURL = "http://" + l.Addr().String()
	}
	log.Info("arca ready", "addr", l.Addr().String(), "base_url", baseURL,
		"data", cfg.Data, "admin_password", passwordAt, "version", version)
	err = srv.Serve(ctx, l)
	log.Info("arca stopped")
	return err
}

// checkMirror warns about ociMirror targets that are not oci proxy
// repositories: requests sent to them would answer 404. A repository
// created later through the API is picked up then, so this is no error.
func checkMirror(ctx context.Context, m config.OCIMirror, repos *repo.Service, log *slog.Logger) {
	targets := map[string]bool{}
	if m.DefaultRepository != "" {
		targets[m.DefaultRepository] = true
	}
	for _, name := range m.Namespaces {
		targets[name] = true
	}
	for name := range targets {
		r, err := repos.Get(ctx, name)
		if err != nil || r.Format != "oci" || r.Type != repo.Proxy {
			log.Warn("ociMirror names a repository that is not an oci proxy repository; mirrored requests to it answer 404 until it is one",
				"repository", name)
		}
	}
}

// expireUploads removes idle upload sessions at start and then hourly.
func expireUploads(ctx context.Context, blobs *blob.Store, ttl time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		expired, err := blobs.ExpireUploads(ctx, ttl)
		if err != nil {
			log.Warn("expire upload sessions", "error", err)
		} else if len(expired) > 0 {
			log.Info("expired upload sessions", "count", len(expired))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
