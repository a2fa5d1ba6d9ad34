package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/app"
	"github.com/replyrocket/replyrocket/internal/cli"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/migrate"
	"github.com/replyrocket/replyrocket/internal/pgdocker"
	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/seed"
)

// Where dev keeps its state, relative to the working directory.
const (
	devDataDir  = ".data"
	devDatabase = "replyrocket"
)

// dev is the newcomer's one command: a database (embedded unless
// DATABASE_URL is set), the schema, partitions, demo data, and the API.
func (e env) dev(ctx context.Context, args []string) error {
	var replicas int
	if err := e.flags("dev", args, func(fs *flag.FlagSet) {
		fs.IntVar(&replicas, "replicas", 0, "streaming read replicas to start beside the embedded database (0–5)")
	}); err != nil {
		return err
	}
	if replicas < 0 || replicas > maxDevReplicas {
		return fmt.Errorf("%w: --replicas wants 0 to %d, got %d", cli.ErrUsage, maxDevReplicas, replicas)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if cfg.DB.URL == "" {
		fmt.Fprintln(e.stderr, "Starting PostgreSQL in ./.data/postgres (the first run creates the cluster)…")
		url, stop, err := e.devDatabase(ctx, replicas, &cfg)
		if err != nil {
			return err
		}
		defer stop()
		cfg.DB.URL = url
	} else if replicas > 0 {
		return fmt.Errorf("%w: --replicas starts replicas of the embedded database; with DATABASE_URL set, list yours in DATABASE_REPLICA_URLS", cli.ErrUsage)
	}
	fmt.Fprintln(e.stderr, "Applying migrations…")
	if err := migrate.Up(ctx, cfg.DB.URL); err != nil {
		return err
	}
	if cfg.Server.AdminKey == "" {
		// The dashboard and admin routes work out of the box in dev: a key
		// kept beside the demo key, reused on the next run.
		if cfg.Server.AdminKey, err = devAdminKey(filepath.Join(devDataDir, "admin-key")); err != nil {
			return err
		}
	}
	log := cfg.Logger(e.stderr)
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintln(e.stderr, "Preparing demo data…")
	demo, err := seed.EnsureDemo(ctx, a.Store, a.Background, filepath.Join(devDataDir, "demo-key"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Server.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d (set PORT to use another): %w", cfg.Server.Port, err)
	}
	e.banner(ln.Addr().(*net.TCPAddr).Port, demo, cfg.Server.AdminKey)
	return a.Serve(ctx, ln)
}

// devAdminKey returns the admin key kept in path, minting and saving one
// (0600) when there is none.
func devAdminKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if k := strings.TrimSpace(string(b)); apikey.Plausible(k) {
			return k, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read the dev admin key: %w", err)
	}
	k, err := apikey.New()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(k.Plain+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the dev admin key: %w", err)
	}
	return k.Plain, nil
}

func (e env) banner(port int, d seed.Demo, adminKey string) {
	base := fmt.Sprintf("http://localhost:%d", port)
	seeded := "reusing the data in ./.data"
	if d.Seeded {
		o := seed.DemoOptions
		seeded = fmt.Sprintf("seeded %d campaigns with %d emails over %d months", o.CampaignsPerUser, o.Total(), o.Months)
	}
	fmt.Fprintf(e.stdout, "\nReplyRocket dev server on %s (%s)\n\n", base, seeded)
	fmt.Fprintf(e.stdout, "Demo API key: %s\n\n", d.Key)
	fmt.Fprintln(e.stdout, "Try:")
	fmt.Fprintf(e.stdout, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/me\n", d.Key, base)
	fmt.Fprintf(e.stdout, "  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/campaigns?limit=5'\n", d.Key, base)
	if d.CampaignID != "" {
		fmt.Fprintf(e.stdout, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/campaigns/%s/summary\n\n", d.Key, base, d.CampaignID)
	} else {
		// A database seeded by other means: the demo user has no campaign.
		fmt.Fprintf(e.stdout, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/me/statistics\n\n", d.Key, base)
	}
	fmt.Fprintf(e.stdout, "API docs: %s/docs   Health: %s/health/db\n", base, base)
	if adminKey != "" {
		// The key travels in the fragment, which the browser never sends;
		// the dashboard keeps it in localStorage and drops it from the URL.
		fmt.Fprintf(e.stdout, "Admin key (ADMIN_API_KEY, kept in %s): %s\n", filepath.Join(devDataDir, "admin-key"), adminKey)
		fmt.Fprintf(e.stdout, "Database monitor: %s/db-monitor/#key=%s\n", base, adminKey)
	}
	fmt.Fprintln(e.stdout, "Ctrl-C stops the server and the database.")
}

// maxDevReplicas bounds --replicas: each is a full copy of the database on
// this machine.
const maxDevReplicas = 5

// devDatabase starts the embedded PostgreSQL from the local binaries into
// ./.data/postgres (kept between runs), or a throwaway container where there
// are no binaries but Docker answers, and returns the URL of the
// application's database in it. With replicas > 0 it also starts that many
// streaming replicas of it and lists them in cfg.Replicas.
func (e env) devDatabase(ctx context.Context, replicas int, cfg *config.Config) (string, func(), error) {
	cluster, err := pglocal.Start(ctx, pglocal.Options{
		DataDir:  filepath.Join(devDataDir, "postgres"),
		Durable:  true,
		Settings: map[string]string{"shared_preload_libraries": "pg_stat_statements"},
	})
	if errors.Is(err, pglocal.ErrNoBinaries) && pgdocker.Available(ctx) {
		if replicas > 0 {
			return "", nil, errors.New("--replicas needs the local PostgreSQL binaries (pg_basebackup)")
		}
		return e.devContainer(ctx, cfg.Server.DevImage)
	}
	if err != nil {
		return "", nil, fmt.Errorf("start the embedded PostgreSQL (or set DATABASE_URL): %w", err)
	}
	stop := func() {
		fmt.Fprintln(e.stderr, "Stopping PostgreSQL…")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(e.stderr, "stop postgres:", err)
		}
	}
	fmt.Fprintf(e.stderr, "PostgreSQL running on 127.0.0.1:%d, data in %s\n", cluster.Port, cluster.DataDir)
	if err := createDatabase(ctx, cluster.URL("postgres"), devDatabase); err != nil {
		stop()
		return "", nil, err
	}
	url := cluster.URL(devDatabase)
	if err := createExtensions(ctx, url); err != nil {
		stop()
		return "", nil, err
	}
	var standbys []*pglocal.Cluster
	stopAll := func() {
		for _, r := range standbys {
			if err := r.Stop(); err != nil {
				fmt.Fprintln(e.stderr, "stop replica:", err)
			}
		}
		stop()
	}
	for i := 1; i <= replicas; i++ {
		r, err := startDevReplica(ctx, cluster.Port, i)
		if err != nil {
			stopAll()
			return "", nil, err
		}
		standbys = append(standbys, r)
		cfg.Replicas.ReplicaURLs = append(cfg.Replicas.ReplicaURLs, r.URL(devDatabase))
		fmt.Fprintf(e.stderr, "Streaming replica %d on 127.0.0.1:%d, data in %s\n", i, r.Port, r.DataDir)
	}
	return url, stopAll, nil
}

// startDevReplica takes a fresh base backup into ./.data/replica-N each run
// (a replica kept from a run whose primary was since deleted would not
// match it) and starts it streaming from the primary.
func startDevReplica(ctx context.Context, primaryPort, n int) (*pglocal.Cluster, error) {
	dir := filepath.Join(devDataDir, "replica-"+strconv.Itoa(n))
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	r, err := pglocal.StartReplica(ctx, primaryPort, pglocal.Options{
		DataDir:  dir,
		Durable:  true,
		Settings: map[string]string{"shared_preload_libraries": "pg_stat_statements"},
	})
	if err != nil {
		return nil, fmt.Errorf("start replica %d: %w", n, err)
	}
	return r, nil
}

// devContainer runs PostgreSQL from image through the docker CLI, for
// machines with Docker but without the PostgreSQL binaries.
func (e env) devContainer(ctx context.Context, image string) (string, func(), error) {
	fmt.Fprintf(e.stderr, "No local PostgreSQL binaries; starting a container from %s (data is not kept between runs)…\n", image)
	srv, err := pgdocker.Start(ctx, pgdocker.Options{
		Image:    image,
		Database: devDatabase,
		Args:     []string{"-c", "shared_preload_libraries=pg_stat_statements"},
	})
	if err != nil {
		return "", nil, err
	}
	stop := func() {
		fmt.Fprintln(e.stderr, "Removing the PostgreSQL container…")
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(e.stderr, "remove the container:", err)
		}
	}
	fmt.Fprintf(e.stderr, "PostgreSQL running in container %.12s on %s\n", srv.ID, srv.Addr)
	if err := createExtensions(ctx, srv.URL()); err != nil {
		stop()
		return "", nil, err
	}
	return srv.URL(), stop, nil
}

func createDatabase(ctx context.Context, serverURL, name string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to the embedded PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// createExtensions adds what the monitor reads; hypopg is optional (the
// monitor falls back to a heuristic without it).
func createExtensions(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", devDatabase, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("create extension pg_stat_statements: %w", err)
	}
	_, _ = conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS hypopg")
	return nil
}
