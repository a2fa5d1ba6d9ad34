package pgdocker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// image is the PostgreSQL image the tests run: CI's locally built one, or
// the default dev image where a registry is reachable.
func image(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !Available(ctx) {
		if pgtest.Strict() {
			t.Fatal("no docker CLI or engine (REPLYROCKET_TEST_STRICT=1)")
		}
		t.Skip("no docker CLI or engine")
	}
	if img := os.Getenv("REPLYROCKET_PG_IMAGE"); img != "" {
		return img
	}
	return pgtest.DefaultImage
}

func gone(t *testing.T, id string) {
	t.Helper()
	if out, err := docker(context.Background(), "inspect", "--format", "{{.State.Status}}", id); err == nil {
		t.Errorf("container %s still exists after Stop (state %s)", id, out)
	}
}

func TestStartServesTheDatabaseOnLoopback(t *testing.T) {
	img := image(t)
	ctx := context.Background()
	srv, err := Start(ctx, Options{Image: img, Database: "devtest", Args: []string{"-c", "shared_preload_libraries=pg_stat_statements"}})
	if err != nil {
		t.Fatalf("Start(%s): %v", img, err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop()
		}
	})
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want a loopback address (traffic elsewhere is forbidden here)", srv.Addr)
	}
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatalf("connect %s: %v", srv.URL(), err)
	}
	var db, preload string
	if err := conn.QueryRow(ctx, "SELECT current_database(), current_setting('shared_preload_libraries')").Scan(&db, &preload); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if db != "devtest" || preload != "pg_stat_statements" {
		t.Errorf("database %q, shared_preload_libraries %q; want devtest, pg_stat_statements", db, preload)
	}
	stopped = true
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	gone(t, srv.ID)
}

// A server that cannot start is reported with its log, and its container
// is removed rather than left behind.
func TestStartReportsAServerThatExits(t *testing.T) {
	img := image(t)
	_, err := Start(context.Background(), Options{Image: img, Database: "devtest", Args: []string{"-c", "no_such_setting_at_all=1"}})
	if err == nil {
		t.Fatal("Start with an unknown server setting succeeded")
	}
	if !strings.Contains(err.Error(), "no_such_setting_at_all") {
		t.Errorf("error does not carry the server's log: %v", err)
	}
	out, _ := docker(context.Background(), "ps", "--all", "--quiet", "--filter", "ancestor="+img, "--filter", "status=exited")
	if out != "" {
		t.Errorf("exited containers of %s left behind: %s", img, out)
	}
}

func TestStartNeedsImageAndDatabase(t *testing.T) {
	for _, o := range []Options{{Database: "x"}, {Image: "postgres:16-alpine"}} {
		if _, err := Start(context.Background(), o); err == nil {
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}
