package pglocal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The cluster a test starts comes from the machine's binaries whatever the
// harness uses for other packages, since `dev` depends on this path.
func TestStartReuseStop(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nested", "data")

	c, err := Start(ctx, Options{DataDir: dir, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, c, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Stop returned before the server exited")
	}

	// A second start reuses the data directory, as `dev` does.
	c, err = Start(ctx, Options{DataDir: dir, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var v int
	conn := connect(t, c)
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
}

func TestStartReportsAServerThatCannotStart(t *testing.T) {
	requireBinaries(t)
	_, err := Start(context.Background(), Options{
		DataDir:  filepath.Join(t.TempDir(), "data"),
		Settings: map[string]string{"shared_buffers": "not-a-size"},
	})
	if err == nil {
		t.Fatal("a server with a bad setting started")
	}
}

func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := BinDir(); errors.Is(err, ErrNoBinaries) {
		if os.Getenv("REPLYROCKET_TEST_STRICT") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func connect(t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, c *Cluster, sql string) {
	t.Helper()
	if _, err := connect(t, c).Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// A replica taken with StartReplica is a standby that streams the primary's
// writes.
func TestStartReplicaStreams(t *testing.T) {
	requireBinaries(t)
	ctx := t.Context()
	dir := t.TempDir()
	primary, err := Start(ctx, Options{DataDir: dir + "/primary"})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Stop()
	replica, err := StartReplica(ctx, primary.Port, Options{DataDir: dir + "/replica"})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	pc, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	if _, err := pc.Exec(ctx, "CREATE TABLE streamed AS SELECT 42 AS v"); err != nil {
		t.Fatal(err)
	}
	rc, err := pgx.Connect(ctx, replica.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	var standby bool
	if err := rc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil || !standby {
		t.Fatalf("replica in recovery: %v, %v", standby, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var v int
		err := rc.QueryRow(ctx, "SELECT v FROM streamed").Scan(&v)
		if err == nil && v == 42 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary's table never reached the replica: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
