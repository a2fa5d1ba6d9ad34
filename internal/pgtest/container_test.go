package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/dockercheck"
)

// TestStartContainer checks the container backend directly, whatever backend
// the package's harness picked: the settings the harness and the monitor
// rely on must hold in the image CI uses.
func TestStartContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := dockercheck.Ping(ctx); err != nil {
		if Strict() {
			t.Fatalf("no Docker engine (REPLYROCKET_TEST_STRICT=1): %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	image := os.Getenv("REPLYROCKET_PG_IMAGE")
	if image == "" {
		image = DefaultImage
	}

	url, stop, err := startContainer(ctx, image)
	if err != nil {
		t.Fatalf("startContainer(%s): %v", image, err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	if !strings.Contains(url, "@127.0.0.1:") {
		t.Errorf("url %q does not point at 127.0.0.1; traffic elsewhere is forbidden here", url)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	settings := map[string]string{
		"shared_preload_libraries": "pg_stat_statements",
		"fsync":                    "off",
		"server_encoding":          "UTF8",
	}
	for name, want := range settings {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatalf("SHOW %s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION pg_stat_statements"); err != nil {
		t.Fatalf("create pg_stat_statements: %v", err)
	}
	var calls int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_statements").Scan(&calls); err != nil {
		t.Fatalf("read pg_stat_statements (library not preloaded?): %v", err)
	}
	// Only the locally built images promise hypopg; the official default
	// image does not ship it.
	if strings.HasPrefix(image, "replyrocket/") {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION hypopg"); err != nil {
			t.Errorf("create hypopg in %s: %v", image, err)
		}
	}
	_ = conn.Close(ctx)

	stop()
	stopped = true
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_ = conn.Close(ctx)
		t.Fatal("server still answers after stop; the container was not removed")
	}
}
