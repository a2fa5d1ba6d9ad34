// Package redistest gives each test its own real Redis server.
//
// The backend is chosen in this order:
//  1. TEST_REDIS_URL: an external server (shared, so tests must use distinct
//     keys, and Stop/Restart are unavailable);
//  2. a testcontainers Redis container when a Docker engine answers (image from
//     REPLYROCKET_REDIS_IMAGE, default redis:7-alpine);
//  3. a local redis-server binary on a free loopback port;
//  4. otherwise the test is skipped, or fails when REPLYROCKET_TEST_STRICT=1.
//
// Every server runs without persistence, so a restarted server comes back
// empty whichever backend is used.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Environment variables read by Start.
const (
	EnvURL    = "TEST_REDIS_URL"
	EnvImage  = "REPLYROCKET_REDIS_IMAGE"
	EnvStrict = "REPLYROCKET_TEST_STRICT"

	DefaultImage = "redis:7-alpine"
)

// readyTimeout bounds how long a freshly started server may take to answer
// PING; a container on a loaded 2-core machine needs a few seconds.
const readyTimeout = 60 * time.Second

// ErrUnsupported is returned by Stop/Restart of a backend that the test does
// not control (an external server from TEST_REDIS_URL).
var ErrUnsupported = errors.New("redistest: backend cannot be stopped or restarted")

// backend is one way of running a Redis server. stop and start keep the
// address, so clients configured once reconnect after a restart.
type backend interface {
	name() string
	addr() string
	stop(ctx context.Context) error
	start(ctx context.Context) error
	close(ctx context.Context) error
}

// Server is a Redis server owned by one test. Stop and Restart fail the test
// on error, so like t.Fatal they belong on the test's goroutine.
type Server struct {
	tb      testing.TB
	b       backend
	running bool
}

// Start returns a running Redis server that is shut down when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ctx := context.Background()
	b, err := newBackend(ctx, tb)
	if err != nil {
		if errors.Is(err, errNoBackend) && !Strict() {
			tb.Skipf("redistest: %v", err)
		}
		tb.Fatalf("redistest: %v", err)
	}
	return own(ctx, tb, b)
}

// own ties a started backend to the test: shut down at cleanup, and handed
// out only once it answers PING.
func own(ctx context.Context, tb testing.TB, b backend) *Server {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.close(ctx); err != nil {
			tb.Errorf("redistest: shut down %s: %v", b.name(), err)
		}
	})
	if err := waitReady(ctx, b.addr(), nil); err != nil {
		tb.Fatalf("redistest: %s at %s: %v", b.name(), b.addr(), err)
	}
	tb.Logf("redistest: %s at %s", b.name(), b.addr())
	return &Server{tb: tb, b: b, running: true}
}

// Strict reports whether a missing backend must fail tests instead of
// skipping them (REPLYROCKET_TEST_STRICT=1, set by CI).
func Strict() bool { return os.Getenv(EnvStrict) == "1" }

// Addr is the host:port of the server.
func (s *Server) Addr() string { return s.b.addr() }

// URL is a redis:// URL of the server, database 0.
func (s *Server) URL() string {
	if e, ok := s.b.(*external); ok {
		return e.url
	}
	return "redis://" + s.b.addr() + "/0"
}

// Backend names the backend in use ("external", "redis container" or "local
// redis-server"), for logs.
func (s *Server) Backend() string { return s.b.name() }

// Stop shuts the server down; clients get connection errors until Restart.
// On a backend the test does not own the test is skipped (failed in strict
// mode), because a fail-open test cannot run there.
func (s *Server) Stop() {
	s.tb.Helper()
	s.unsupported()
	if !s.running {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.b.stop(ctx); err != nil {
		s.tb.Fatalf("redistest: stop %s: %v", s.b.name(), err)
	}
	s.running = false
}

// Restart stops the server if it is running and starts it again on the same
// address, returning once it answers PING. The data set starts empty.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	defer cancel()
	if err := s.b.start(ctx); err != nil {
		s.tb.Fatalf("redistest: restart %s: %v", s.b.name(), err)
	}
	if err := waitReady(ctx, s.b.addr(), nil); err != nil {
		s.tb.Fatalf("redistest: restarted %s at %s: %v", s.b.name(), s.b.addr(), err)
	}
	s.running = true
}

func (s *Server) unsupported() {
	s.tb.Helper()
	if _, ok := s.b.(*external); !ok {
		return
	}
	if Strict() {
		s.tb.Fatalf("%v: %s is an external server", ErrUnsupported, EnvURL)
	}
	s.tb.Skipf("%v: %s is an external server", ErrUnsupported, EnvURL)
}

var errExited = errors.New("exited before answering PING")

var errNoBackend = errors.New("no Redis available: set " + EnvURL + ", start Docker, or install redis-server")

func newBackend(ctx context.Context, tb testing.TB) (backend, error) {
	tb.Helper()
	if raw := os.Getenv(EnvURL); raw != "" {
		return newExternal(raw)
	}
	if dockerAvailable(ctx) {
		b, err := startContainer(ctx, image())
		if err == nil {
			return b, nil
		}
		// Strict runs (CI) must exercise the container path they asked for;
		// elsewhere a Docker engine without the image should not stop a
		// developer who has redis-server installed.
		if Strict() {
			return nil, err
		}
		tb.Logf("redistest: container unavailable, trying local redis-server: %v", err)
	}
	bin, err := lookRedisServer()
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", errNoBackend, err)
	}
	return startLocal(ctx, bin, tb.TempDir())
}

func image() string {
	if img := os.Getenv(EnvImage); img != "" {
		return img
	}
	return DefaultImage
}

// external is a server from TEST_REDIS_URL; the test does not control it.
type external struct {
	url  string
	host string
}

func newExternal(raw string) (*external, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvURL, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("parse %s: scheme %q, want redis or rediss", EnvURL, u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	return &external{url: raw, host: host}, nil
}

func (e *external) name() string                { return "external" }
func (e *external) addr() string                { return e.host }
func (e *external) stop(context.Context) error  { return ErrUnsupported }
func (e *external) start(context.Context) error { return ErrUnsupported }
func (e *external) close(context.Context) error { return nil }

// waitReady polls with PING because "process started" or a log line is not
// "accepting commands": after a container restart the old readiness line is
// still in the log. A receive on exited (nil when there is no process to
// watch) ends the wait early, so a server that died is not waited for.
func waitReady(ctx context.Context, addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if last = ping(ctx, addr); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering PING after %s: %w", readyTimeout, last)
		case err := <-exited:
			return fmt.Errorf("%w: %v", errExited, err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server still loading its data set answers -LOADING; a password-protected
	// external one -NOAUTH, which still proves it is up.
	if reply := strings.TrimSpace(line); reply != "+PONG" && !strings.HasPrefix(reply, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}
