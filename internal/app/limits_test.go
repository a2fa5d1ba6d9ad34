package app

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/config"
)

// serveApp runs a.Serve on a loopback port until the test ends.
func serveApp(t *testing.T, a *App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// headerExchange sends a GET with one header of the given size and returns
// the status.
func headerExchange(t *testing.T, addr, name string, size int) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "GET /api/v1/me HTTP/1.1\r\nHost: x\r\n%s: %s\r\n\r\n", name, strings.Repeat("a", size))
	if err := w.Flush(); err != nil {
		t.Fatalf("write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Headers over HTTP_MAX_HEADER_BYTES (64 KiB by default) are refused with
// 431 by net/http itself, before any handler, hashing or database work;
// headers under it are served.
func TestOversizedHeadersGet431(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env        map[string]string
		name       string
		size, want int
	}{
		{nil, "X-Big", 1 << 20, http.StatusRequestHeaderFieldsTooLarge},
		{nil, "X-Big", 1_000_000, http.StatusRequestHeaderFieldsTooLarge},
		{nil, "Authorization", 1 << 20, http.StatusRequestHeaderFieldsTooLarge},
		{nil, "X-Big", 70 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{nil, "X-Big", 60 << 10, http.StatusUnauthorized},
		{map[string]string{"HTTP_MAX_HEADER_BYTES": "8192"}, "X-Big", 16 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{map[string]string{"HTTP_MAX_HEADER_BYTES": "8192"}, "X-Big", 2 << 10, http.StatusUnauthorized},
	} {
		t.Run(fmt.Sprint(tc.env, tc.name, tc.size), func(t *testing.T) {
			a := newApp(t, tc.env)
			if got := headerExchange(t, serveApp(t, a), tc.name, tc.size); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestHardeningConfig(t *testing.T) {
	t.Parallel()
	c, err := config.Load(func(k string) string {
		return map[string]string{
			"HTTP_MAX_HEADER_BYTES": "32768", "HTTP_READ_HEADER_TIMEOUT": "3s", "HTTP_READ_TIMEOUT": "20s",
			"HTTP_WRITE_TIMEOUT": "40s", "HTTP_IDLE_TIMEOUT": "1m", "HTTP_BODY_DRAIN_BYTES": "0",
			"RATE_LIMIT_PER_MINUTE": "60", "RATE_LIMIT_BURST": "5", "ADMIN_RATE_LIMIT_PER_MINUTE": "10",
			"AUTH_FAIL_LIMIT_PER_MINUTE": "3", "AUTH_UNKNOWN_KEY_TTL": "5s", "IDEMPOTENCY_TTL": "1h",
			"RATE_LIMIT_DISABLED": "true",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config.HTTP{MaxHeaderBytes: 32768, ReadHeaderTimeout: 3 * time.Second, ReadTimeout: 20 * time.Second,
		WriteTimeout: 40 * time.Second, IdleTimeout: time.Minute, BodyDrainBytes: 0}
	wantL := config.Limits{RatePerMinute: 60, RateBurst: 5, AdminRatePerMinute: 10, AuthFailuresPerMinute: 3,
		UnknownKeyTTL: 5 * time.Second, IdempotencyTTL: time.Hour, RateLimitDisabled: true}
	if c.HTTP != want || c.Limits != wantL {
		t.Fatalf("got %+v %+v", c.HTTP, c.Limits)
	}
	for _, bad := range []map[string]string{
		{"HTTP_MAX_HEADER_BYTES": "10"}, {"HTTP_READ_TIMEOUT": "-1s"}, {"HTTP_WRITE_TIMEOUT": "5s"},
		{"RATE_LIMIT_PER_MINUTE": "0"}, {"RATE_LIMIT_DISABLED": "maybe"}, {"IDEMPOTENCY_TTL": "forever"},
	} {
		if _, err := config.Load(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("env %v accepted", bad)
		}
	}
}

// Stored Idempotency-Key responses older than IDEMPOTENCY_TTL are purged;
// younger ones stay.
func TestPurgeIdempotencyKeys(t *testing.T) {
	t.Parallel()
	a := newApp(t, map[string]string{"IDEMPOTENCY_TTL": "1h"})
	ctx := context.Background()
	_, err := a.Pool.Exec(ctx, `INSERT INTO idempotency_keys (owner, key, method, path, request_hash, status, created_at) VALUES
		('admin', 'old', 'POST', '/x', decode(repeat('00', 32), 'hex'), 201, now() - interval '2 hours'),
		('admin', 'new', 'POST', '/x', decode(repeat('00', 32), 'hex'), 201, now() - interval '30 minutes')`)
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.PurgeIdempotencyKeys(ctx)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	var left string
	if err := a.Pool.QueryRow(ctx, "SELECT string_agg(key, ',') FROM idempotency_keys").Scan(&left); err != nil || left != "new" {
		t.Fatalf("left %q, %v", left, err)
	}
}

// As the binary wires it: API responses carry the RateLimit headers, the
// admin routes their own policy, and /db-monitor/rate-limits reports the
// limiter; RATE_LIMIT_DISABLED turns all of it off.
func TestRateLimitWiring(t *testing.T) {
	t.Parallel()
	for _, disabled := range []bool{false, true} {
		a := newApp(t, map[string]string{"ADMIN_API_KEY": "admin-key-0123456789", "RATE_LIMIT_DISABLED": fmt.Sprint(disabled)})
		_, key, err := apikey.CreateUser(context.Background(), a.Store, fmt.Sprintf("rl%v@example.com", disabled), "RL")
		if err != nil {
			t.Fatal(err)
		}
		do := func(path, bearer string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+bearer)
			rec := httptest.NewRecorder()
			a.Router.ServeHTTP(rec, req)
			return rec
		}
		me := do("/api/v1/me", key.Plain)
		mon := do("/db-monitor/rate-limits", "admin-key-0123456789")
		if disabled {
			if me.Header().Get("RateLimit") != "" || mon.Code != http.StatusNotFound {
				t.Fatalf("disabled: headers %v, monitor %d", me.Header(), mon.Code)
			}
			continue
		}
		if !strings.HasPrefix(me.Header().Get("RateLimit-Policy"), `"key";q=600;w=60`) || !strings.HasPrefix(mon.Header().Get("RateLimit-Policy"), `"admin";q=120`) {
			t.Fatalf("policies %q %q", me.Header().Get("RateLimit-Policy"), mon.Header().Get("RateLimit-Policy"))
		}
		if mon.Code != http.StatusOK || !strings.Contains(mon.Body.String(), `"backend":"local"`) {
			t.Fatalf("monitor %d %s", mon.Code, mon.Body)
		}
	}
}
