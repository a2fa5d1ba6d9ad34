package redistest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replyrocket/replyrocket/internal/dockercheck"
)

func TestStartServesCommands(t *testing.T) {
	t.Parallel()
	srv := Start(t)
	rdb := client(t, srv.URL())
	ctx := testContext(t)
	if err := rdb.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET on %s: %v", srv.Backend(), err)
	}
	got, err := rdb.Get(ctx, "greeting").Result()
	if err != nil || got != "hello" {
		t.Fatalf("GET on %s = %q, %v; want hello", srv.Backend(), got, err)
	}
}

// TestStopRestart exercises every backend this machine offers, because a
// fail-open test is only as good as the outage it simulates.
func TestStopRestart(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name  string
		start func(ctx context.Context, t *testing.T) (backend, error)
	}{
		{"local", func(ctx context.Context, t *testing.T) (backend, error) {
			bin, err := lookRedisServer()
			if err != nil {
				return nil, err
			}
			return startLocal(ctx, bin, t.TempDir())
		}},
		{"container", func(ctx context.Context, t *testing.T) (backend, error) {
			if err := dockercheck.Ping(ctx); err != nil {
				return nil, err
			}
			return startContainer(ctx, image())
		}},
	}
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			b, err := bc.start(ctx, t)
			if err != nil {
				unavailable(t, bc.name, err)
			}
			srv := own(ctx, t, b)
			addr := srv.Addr()
			rdb := client(t, srv.URL())
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}

			srv.Stop()
			if err := rdb.Get(ctx, "k").Err(); err == nil {
				t.Fatal("GET after Stop succeeded; want a connection error")
			}
			srv.Stop() // stopping a stopped server is a no-op

			srv.Restart()
			if got := srv.Addr(); got != addr {
				t.Fatalf("Addr after Restart = %s, want %s (clients keep the old address)", got, addr)
			}
			// The same client must recover: that is what fail-open code relies on.
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING after Restart: %v", err)
			}
			if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET after Restart = %v, want redis.Nil (no persistence)", err)
			}

			srv.Restart() // restarting a running server works too
			if err := rdb.Set(ctx, "k", "v2", 0).Err(); err != nil {
				t.Fatalf("SET after second Restart: %v", err)
			}
		})
	}
}

func TestNewExternal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, addr string
		wantErr   bool
	}{
		{url: "redis://127.0.0.1:6380/2", addr: "127.0.0.1:6380"},
		{url: "redis://:secret@localhost/0", addr: "localhost:6379"},
		{url: "rediss://[::1]:7000", addr: "[::1]:7000"},
		{url: "http://127.0.0.1:6379", wantErr: true},
		{url: "redis://%zz", wantErr: true},
	}
	for _, tc := range tests {
		e, err := newExternal(tc.url)
		if tc.wantErr {
			if err == nil {
				t.Errorf("newExternal(%q) = %v, want an error", tc.url, e.addr())
			}
			continue
		}
		if err != nil {
			t.Errorf("newExternal(%q): %v", tc.url, err)
			continue
		}
		if e.addr() != tc.addr {
			t.Errorf("newExternal(%q).addr() = %s, want %s", tc.url, e.addr(), tc.addr)
		}
	}
}

func TestLocalStartFailureIsReported(t *testing.T) {
	t.Parallel()
	bin, err := lookRedisServer()
	if err != nil {
		unavailable(t, "local", err)
	}
	// Occupy the port with a listener that never answers, so redis-server
	// exits at once and PING cannot be answered by anyone else; the error
	// must say so promptly instead of waiting out the readiness timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	busy := &local{bin: bin, dir: t.TempDir(), port: ln.Addr().(*net.TCPAddr).Port}
	ctx := testContext(t)

	begin := time.Now()
	err = busy.start(ctx)
	if !errors.Is(err, errExited) {
		t.Fatalf("start on a busy port = %v, want errExited", err)
	}
	if waited := time.Since(begin); waited > readyTimeout/2 {
		t.Fatalf("start on a busy port took %s; the exit was not noticed", waited)
	}
}

func unavailable(t *testing.T, backend string, err error) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s backend unavailable in strict mode: %v", backend, err)
	}
	t.Skipf("%s backend unavailable: %v", backend, err)
}

func client(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
