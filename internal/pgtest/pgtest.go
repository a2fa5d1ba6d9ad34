// Package pgtest gives tests a real PostgreSQL: one server per test package,
// the migrations applied once into a template database, and a fresh database
// cloned from that template for every test, so tests are isolated and can
// run in parallel.
//
// The server comes from, in this order: TEST_DATABASE_URL; testcontainers
// (image REPLYROCKET_PG_IMAGE, default postgres:16-alpine) when a Docker
// engine answers; PostgreSQL binaries installed on the machine, in a temp
// dir on a free loopback port — also when the container fails to start,
// unless strict. With none of them, tests skip — or fail when
// REPLYROCKET_TEST_STRICT=1, as CI sets.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/migrate"
	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/pgxtypes"
	"github.com/replyrocket/replyrocket/schema"
)

// DefaultImage is the container image used when REPLYROCKET_PG_IMAGE is unset.
const DefaultImage = "postgres:16-alpine"

// Strict reports whether a missing backend must fail tests rather than skip
// them.
func Strict() bool { return os.Getenv("REPLYROCKET_TEST_STRICT") == "1" }

// harness is the per-package server. TestMain sets it once before any test
// runs and never changes it after, so tests read it without locking.
var harness struct {
	serverURL string // an admin connection URL, database "postgres"
	template  string
	skip      string // why there is no server
	admin     *pgxpool.Pool
}

// Main is the TestMain of a package whose tests use the database.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	serverURL, source, stop, err := startServer(ctx)
	if err != nil {
		harness.skip = err.Error()
		if Strict() {
			fmt.Fprintf(os.Stderr, "pgtest: no PostgreSQL for tests and REPLYROCKET_TEST_STRICT=1: %v\n", err)
			return 1
		}
		return m.Run()
	}
	defer stop()
	harness.serverURL = serverURL
	if err := prepareTemplate(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: prepare template database on %s: %v\n", source, err)
		return 1
	}
	defer closeAdmin()
	return m.Run()
}

func startServer(ctx context.Context) (serverURL, source string, stop func(), err error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, "TEST_DATABASE_URL", func() {}, nil
	}
	if dockerAvailable(ctx) {
		image := os.Getenv("REPLYROCKET_PG_IMAGE")
		if image == "" {
			image = DefaultImage
		}
		u, stop, err := startContainer(ctx, image)
		if err == nil {
			return u, "container " + image, stop, nil
		}
		err = fmt.Errorf("testcontainers with image %s: %w", image, err)
		// CI must prove the container path works; a developer whose Docker
		// cannot pull the default image still gets a server.
		if Strict() {
			return "", "", nil, err
		}
		fmt.Fprintf(os.Stderr, "pgtest: %v; falling back to local PostgreSQL binaries\n", err)
	}
	return startLocal(ctx)
}

func startLocal(ctx context.Context) (serverURL, source string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", "", nil, err
	}
	cluster, err := pglocal.Start(ctx, pglocal.Options{
		DataDir:  dir + "/data",
		Settings: map[string]string{"shared_preload_libraries": "pg_stat_statements"},
	})
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, pglocal.ErrNoBinaries) {
			return "", "", nil, errors.New("no TEST_DATABASE_URL, no usable Docker engine and " + err.Error())
		}
		return "", "", nil, fmt.Errorf("local PostgreSQL: %w", err)
	}
	return cluster.URL("postgres"), "local binaries", func() {
		_ = cluster.Stop()
		os.RemoveAll(dir)
	}, nil
}

// templateSetup versions what prepareTemplate does besides the migrations
// (the extensions): changing it must change the template's name too.
const templateSetup = "extensions: pg_stat_statements, hypopg (optional); v1"

// TemplateName names the migrated template after a hash of the migrations
// (names and contents) and of templateSetup: a server that keeps its
// databases (TEST_DATABASE_URL) reuses a template as long as the schema is
// the same, and a changed migration gets a new one, never a stale one.
func TemplateName(migrations fs.FS) (string, error) {
	files, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	io.WriteString(h, templateSetup)
	for _, f := range files {
		b, err := fs.ReadFile(migrations, f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return "replyrocket_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

func prepareTemplate(ctx context.Context) error {
	admin, err := pgxpool.New(ctx, harness.serverURL)
	if err != nil {
		return err
	}
	harness.admin = admin
	name, err := TemplateName(schema.FS)
	if err != nil {
		return fmt.Errorf("hash the migrations: %w", err)
	}
	harness.template = name
	// Test packages run in parallel and may share a server: one builds the
	// template while the others wait, then all reuse it.
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", name); err != nil {
		return fmt.Errorf("lock the template: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", name) //nolint:errcheck // the session ends anyway
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	// Built under another name and renamed when complete, so a run killed
	// halfway never leaves a template that looks ready.
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if err := setUpTemplate(ctx, building); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("publish template: %w", err)
	}
	return nil
}

// setUpTemplate migrates the database db and creates the extensions.
func setUpTemplate(ctx context.Context, db string) error {
	tmplURL, err := databaseURL(db)
	if err != nil {
		return err
	}
	if err := migrate.Up(ctx, tmplURL); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, tmplURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// pg_stat_statements' views need the extension in the database as well
	// as the library preloaded; hypopg is optional (the monitor falls back).
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("create extension pg_stat_statements: %w", err)
	}
	_, _ = conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS hypopg")
	return nil
}

// closeAdmin closes the admin pool. The template stays: on a throwaway
// server it goes with the server; on a kept one (TEST_DATABASE_URL) the
// next run with the same migrations reuses it.
func closeAdmin() {
	if harness.admin != nil {
		harness.admin.Close()
	}
}

func databaseURL(name string) (string, error) {
	u, err := url.Parse(harness.serverURL)
	if err != nil {
		return "", fmt.Errorf("parse server url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ServerURL is an admin URL of the package's server (database "postgres"),
// for tests that create databases of their own.
func ServerURL(t testing.TB) string {
	t.Helper()
	requireServer(t)
	return harness.serverURL
}

func requireServer(t testing.TB) {
	t.Helper()
	if harness.serverURL != "" {
		return
	}
	if harness.skip == "" {
		t.Fatal("pgtest: no server: call pgtest.Main(m) from TestMain")
	}
	if Strict() {
		t.Fatalf("pgtest: no PostgreSQL (REPLYROCKET_TEST_STRICT=1): %s", harness.skip)
	}
	t.Skipf("pgtest: no PostgreSQL: %s", harness.skip)
}

// NewDatabase creates a fresh database cloned from the migrated template and
// returns its URL; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	requireServer(t)
	return createDatabase(t, harness.template)
}

func createDatabase(t testing.TB, template string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "t_" + randomSuffix()
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		// FILE_COPY copies the template's files and checkpoints instead of
		// writing every page to the WAL (15's default, WAL_LOG): far
		// cheaper for a small template cloned once per test.
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize() + " STRATEGY FILE_COPY"
	}
	if _, err := harness.admin.Exec(ctx, stmt); err != nil {
		t.Fatalf("pgtest: create database from template: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := harness.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := databaseURL(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// NewEmptyDatabase creates a database with no migrations applied, for tests
// of the migrations themselves; it is dropped when the test ends.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	requireServer(t)
	return createDatabase(t, "")
}

// NewPool returns a pool on a fresh migrated database, closed when the test
// ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(NewDatabase(t))
	if err != nil {
		t.Fatalf("pgtest: parse database url: %v", err)
	}
	// The same types as the app's pools (db.NewPool), so tests exercise the
	// encodings production uses.
	cfg.AfterConnect = pgxtypes.AfterConnect
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
