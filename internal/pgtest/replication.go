package pgtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/migrate"
	"github.com/replyrocket/replyrocket/internal/pglocal"
)

// ReplicationOptions describe a primary with streaming replicas.
type ReplicationOptions struct {
	// Replicas is how many streaming replicas to start.
	Replicas int
	// ApplyDelay, per replica index, is its recovery_min_apply_delay: that
	// replica replays each commit that long after the primary made it.
	ApplyDelay map[int]time.Duration
}

// Replication is a migrated primary and its streaming replicas, all from
// the local PostgreSQL binaries, stopped when the test ends.
type Replication struct {
	// PrimaryURL is the migrated application database on the primary.
	PrimaryURL string
	Replicas   []*Replica
	primary    *pglocal.Cluster
}

// Replica is one streaming replica; tests stop and start it.
type Replica struct {
	// URL is the application database on the replica.
	URL  string
	opts pglocal.Options

	mu      sync.Mutex
	cluster *pglocal.Cluster
}

const replicatedDB = "replyrocket"

// replicaSettings: pg_stat_statements on every server, so tests can prove
// from a replica's own statistics which statements it ran.
var replicaSettings = map[string]string{
	"shared_preload_libraries": "pg_stat_statements",
	"pg_stat_statements.track": "all",
}

// StartReplication starts a fresh primary from the local binaries (the
// package's shared server may be a container; replicas need a server this
// process can pg_basebackup from), migrates a database on it, and starts
// the replicas. Testcontainers are not used here: the local binaries are
// the same PostgreSQL 15 that CI's image carries. Without binaries the test
// skips, or fails in strict mode.
func StartReplication(t testing.TB, o ReplicationOptions) *Replication {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	primary, err := pglocal.Start(ctx, pglocal.Options{DataDir: filepath.Join(dir, "primary"), Settings: replicaSettings})
	if errors.Is(err, pglocal.ErrNoBinaries) {
		if Strict() {
			t.Fatalf("pgtest: replication needs local PostgreSQL binaries (REPLYROCKET_TEST_STRICT=1): %v", err)
		}
		t.Skipf("pgtest: replication needs local PostgreSQL binaries: %v", err)
	}
	if err != nil {
		t.Fatalf("pgtest: start primary: %v", err)
	}
	rep := &Replication{primary: primary, PrimaryURL: primary.URL(replicatedDB)}
	t.Cleanup(func() {
		for _, r := range rep.Replicas {
			r.Stop(t)
		}
		if err := primary.Stop(); err != nil {
			t.Errorf("pgtest: stop primary: %v", err)
		}
	})
	if err := prepareReplicated(ctx, primary); err != nil {
		t.Fatalf("pgtest: prepare primary: %v", err)
	}
	for i := range o.Replicas {
		settings := map[string]string{}
		for k, v := range replicaSettings {
			settings[k] = v
		}
		if d := o.ApplyDelay[i]; d > 0 {
			settings["recovery_min_apply_delay"] = strconv.FormatInt(d.Milliseconds(), 10) + "ms"
		}
		r := &Replica{opts: pglocal.Options{DataDir: filepath.Join(dir, "replica"+strconv.Itoa(i+1)), Settings: settings}}
		c, err := pglocal.StartReplica(ctx, primary.Port, r.opts)
		if err != nil {
			t.Fatalf("pgtest: start replica %d: %v", i+1, err)
		}
		r.cluster, r.opts.Port, r.URL = c, c.Port, c.URL(replicatedDB)
		rep.Replicas = append(rep.Replicas, r)
	}
	if err := rep.WaitReplayed(ctx); err != nil {
		t.Fatalf("pgtest: replicas did not catch up: %v", err)
	}
	return rep
}

func prepareReplicated(ctx context.Context, primary *pglocal.Cluster) error {
	conn, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+replicatedDB); err != nil {
		return err
	}
	if err := migrate.Up(ctx, primary.URL(replicatedDB)); err != nil {
		return err
	}
	app, err := pgx.Connect(ctx, primary.URL(replicatedDB))
	if err != nil {
		return err
	}
	defer app.Close(ctx)
	_, err = app.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	return err
}

// WaitReplayed waits until every running replica has replayed the
// primary's current position (replicas with an apply delay take that
// long).
func (r *Replication) WaitReplayed(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, r.PrimaryURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var target int64
	if err := conn.QueryRow(ctx, "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint").Scan(&target); err != nil {
		return err
	}
	for i, rp := range r.Replicas {
		if !rp.Running() {
			continue
		}
		if err := waitReplay(ctx, rp.URL, target); err != nil {
			return fmt.Errorf("replica %d: %w", i+1, err)
		}
	}
	return nil
}

func waitReplay(ctx context.Context, url string, target int64) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for {
		var got int64
		err := conn.QueryRow(ctx, "SELECT coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)").Scan(&got)
		if err != nil {
			return err
		}
		if got >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replayed %d of %d: %w", got, target, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Running reports whether the replica's server is up.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cluster != nil
}

// Stop shuts the replica down (fast shutdown: its sessions are cut).
func (r *Replica) Stop(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cluster == nil {
		return
	}
	if err := r.cluster.Stop(); err != nil {
		t.Errorf("pgtest: stop replica: %v", err)
	}
	r.cluster = nil
}

// Start starts a stopped replica again on the same port; it resumes
// streaming from where it stopped.
func (r *Replica) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cluster != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, r.opts)
	if err != nil {
		t.Fatalf("pgtest: restart replica: %v", err)
	}
	r.cluster = c
}
