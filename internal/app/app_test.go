package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/handlers"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/dbfixture"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) {
	// The crash test starts this binary again as its server.
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(serveCrashChild())
	}
	pgtest.Main(m)
}

func newApp(t *testing.T, env map[string]string) *App {
	t.Helper()
	url := pgtest.NewDatabase(t)
	return startApp(t, func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return env[k]
	})
}

// startApp builds an App from the environment getenv gives, with its
// partitions ensured, closed when the test ends.
func startApp(t testing.TB, getenv func(string) string) *App {
	t.Helper()
	cfg, err := config.Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.EnsurePartitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOpenAPIListsExactlyTheServedRoutes compares the document with the
// router as the binary wires it, monitor and cache routes included.
func TestOpenAPIListsExactlyTheServedRoutes(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	served := map[string]bool{}
	for _, r := range a.Router.Routes() {
		if r.Method == "echo_route_not_found" || strings.HasSuffix(r.Path, "/*") {
			continue // Echo's own 404 handlers for groups
		}
		if r.Method == "GET" && r.Path == "/db-monitor/" {
			// The dashboard page itself, behind the documented GET
			// /db-monitor redirect: OpenAPI paths take no trailing slash.
			continue
		}
		served[r.Method+" "+r.Path] = true
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(handlers.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+param.ReplaceAllString(path, ":$1")] = true
		}
	}
	if missing, extra := diff(served, documented), diff(documented, served); len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("served but undocumented: %v\ndocumented but not served: %v", missing, extra)
	}
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIIsWellFormed checks what a client generator relies on: 3.1,
// every $ref resolves, operation ids are unique, every operation documents
// its errors as problem+json.
func TestOpenAPIIsWellFormed(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(handlers.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/schemas/")
				if _, ok := schemas[name]; !ok {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	ids := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, raw := range item.(map[string]any) {
			op := raw.(map[string]any)
			id := op["operationId"].(string)
			if ids[id] {
				t.Errorf("duplicate operationId %s", id)
			}
			ids[id] = true
			resp := op["responses"].(map[string]any)
			if _, ok := resp["500"]; !ok {
				t.Errorf("%s %s documents no 500", method, path)
			}
			if strings.HasPrefix(path, "/api/v1") {
				if _, ok := resp["401"]; !ok {
					t.Errorf("%s %s documents no 401", method, path)
				}
			}
			if strings.Contains(path, "{") && op["parameters"] == nil {
				t.Errorf("%s %s has a path parameter but no parameters", method, path)
			}
		}
	}
}

// TestGracefulShutdownFinishesInFlightRequests: a request in progress when
// shutdown begins completes; new connections are refused.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	ctx := context.Background()
	_, key := dbfixture.UserWithKey(t, a.Store, db.CreateUserParams{Email: "shutdown@example.com"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx, ln) }()

	// Hold a lock the request will wait on, so it is in flight for as long
	// as the test wants.
	tx, err := a.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE campaigns IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/v1/campaigns", strings.NewReader(`{"name":"In flight"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		res.Body.Close()
		inflight <- result{code: res.StatusCode}
	}()
	waitFor(t, func() bool {
		var n int
		_ = a.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&n)
		return n > 0
	})

	stop()
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case r := <-inflight:
		t.Fatalf("the in-flight request ended before its lock was released: %+v", r)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-inflight
	if r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIPExtractorTrustsOnlyConfiguredProxies: X-Forwarded-For, else
// Forwarded, is believed from a trusted proxy and ignored from anyone else;
// the client is the nearest address that is not a trusted proxy, and an
// unreadable chain falls back to the TCP peer.
func TestIPExtractorTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		proxies, peer, xff, forwarded, want string
	}{
		{"", "10.1.2.3:5000", "203.0.113.9", "", "10.1.2.3"},
		{"10.0.0.0/8", "10.1.2.3:5000", "203.0.113.9", "", "203.0.113.9"},
		{"10.0.0.0/8", "198.51.100.7:5000", "203.0.113.9", "", "198.51.100.7"},
		{"10.0.0.0/8", "10.1.2.3:5000", "198.51.100.1, 203.0.113.9, 10.9.9.9", "", "203.0.113.9"},
		{"", "10.1.2.3:5000", "", "for=203.0.113.9", "10.1.2.3"},
		{"10.0.0.0/8", "10.1.2.3:5000", "", `for=198.51.100.1, for="203.0.113.9:4711";proto=https, for=10.9.9.9`, "203.0.113.9"},
		{"10.0.0.0/8", "10.1.2.3:5000", "", `for="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"10.0.0.0/8", "198.51.100.7:5000", "", "for=203.0.113.9", "198.51.100.7"},
		{"10.0.0.0/8", "10.1.2.3:5000", "", "for=unknown", "10.1.2.3"},
		{"10.0.0.0/8", "10.1.2.3:5000", "", "for=_hidden, for=10.9.9.9", "10.1.2.3"},
		// Both: X-Forwarded-For, the header proxies append to, wins.
		{"10.0.0.0/8", "10.1.2.3:5000", "203.0.113.9", "for=198.51.100.1", "203.0.113.9"},
	}
	for _, tc := range cases {
		cfg, err := config.Load(func(k string) string {
			if k == "TRUSTED_PROXIES" {
				return tc.proxies
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", "/", nil)
		req.RemoteAddr = tc.peer
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.forwarded != "" {
			req.Header.Set("Forwarded", tc.forwarded)
		}
		if got := IPExtractor(cfg.Server.TrustedProxies)(req); got != tc.want {
			t.Errorf("proxies %q, peer %s, X-Forwarded-For %q, Forwarded %q: client %s, want %s", tc.proxies, tc.peer, tc.xff, tc.forwarded, got, tc.want)
		}
	}
}

// TestWiring checks through the router as the binary builds it: the cache
// sits between handlers and store (X-Cache), and the monitor and cache
// routes are behind the admin key.
func TestWiring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		adminKey  string
		wantAdmin int
	}{{"", http.StatusForbidden}, {"wiring-admin-key", http.StatusOK}} {
		a := newApp(t, map[string]string{"ADMIN_API_KEY": tc.adminKey})
		_, key := dbfixture.UserWithKey(t, a.Store, db.CreateUserParams{Email: "wiring@example.com"})
		get := func(path, bearer string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+bearer)
			rec := httptest.NewRecorder()
			a.Router.ServeHTTP(rec, req)
			return rec
		}
		if got := get("/api/v1/me/statistics", key).Header().Get("X-Cache"); got != "miss" {
			t.Errorf("first statistics read: X-Cache %q, want miss", got)
		}
		if got := get("/api/v1/me/statistics", key).Header().Get("X-Cache"); got != "hit" {
			t.Errorf("second statistics read: X-Cache %q, want hit", got)
		}
		for _, p := range []string{"/db-monitor/performance", "/db-monitor/cache", "/db-monitor/table-stats/emails"} {
			if rec := get(p, tc.adminKey); rec.Code != tc.wantAdmin {
				t.Errorf("admin key %q: GET %s = %d, want %d: %.200s", tc.adminKey, p, rec.Code, tc.wantAdmin, rec.Body)
			}
			if rec := get(p, key); rec.Code != http.StatusUnauthorized && rec.Code != http.StatusForbidden {
				t.Errorf("user key reached %s: %d", p, rec.Code)
			}
		}
		if rec := get("/db-monitor/", ""); rec.Code != http.StatusOK {
			t.Errorf("dashboard page: %d", rec.Code)
		}
	}
}
