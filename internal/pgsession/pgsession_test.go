package pgsession

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A pool with the hooks: a connection acquired under a session name
// carries it, and once released it carries the pool's name again; work
// without a name gets the pool's.
func TestHooksNameAndRestore(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // one connection: every acquire below reuses it
	cfg.ConnConfig.RuntimeParams["application_name"] = Background
	cfg.PrepareConn, cfg.AfterRelease = Hooks(Background)
	ctx := t.Context()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	name := func(ctx context.Context) string {
		t.Helper()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	steps := []struct {
		ctx  context.Context
		want string
	}{
		{ctx, Background},
		{With(ctx, PartitionMaintenance), PartitionMaintenance},
		{ctx, Background},
		{With(ctx, Monitor), Monitor},
		{With(ctx, IdempotencyPurge), IdempotencyPurge},
	}
	for i, s := range steps {
		if got := name(s.ctx); got != s.want {
			t.Errorf("step %d: application_name %q, want %q", i, got, s.want)
		}
	}
	// The release gives the connection the pool's name back (in pgxpool's
	// goroutine): seen from another session, the idle connection is the
	// pool's, not its last user's.
	observer, err := pgx.Connect(ctx, cfg.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		var idle string
		err := observer.QueryRow(ctx, `SELECT string_agg(application_name, ',') FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&idle)
		if err != nil {
			t.Fatal(err)
		}
		if idle == Background {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle connection named %q, want %q", idle, Background)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNames(t *testing.T) {
	if Replica(2) != "replica-2" || Name(context.Background()) != "" || Name(With(context.Background(), "x")) != "x" {
		t.Error("names")
	}
}
