package handlers

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/cachetest"
	"github.com/replyrocket/replyrocket/internal/keyset"
	"github.com/replyrocket/replyrocket/internal/ratelimit"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// instance is one server as internal/app wires it, on e's database: its
// own cache (L1, plus Redis when redisURL is set), its own rate limiter
// and its own set of existing keys (started: loaded, and listening for
// other instances' new keys).
func instance(t *testing.T, e *env, redisURL string, opts ...envOpt) *echo.Echo {
	t.Helper()
	raw := db.NewStore(e.pool, 2*time.Second)
	log := slog.New(slog.DiscardHandler)
	store, c := cachetest.Wrap(t, raw, cache.Config{Namespace: "lockout", RedisURL: redisURL}, log)
	// The in-process limit's clock stands still (Redis keeps its own): a
	// flood's budget does not refill while it runs, however slow the run.
	now := time.Now()
	lim, err := ratelimit.New(ratelimit.Config{RedisURL: redisURL, Namespace: "lockout:ratelimit", Now: func() time.Time { return now }}, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lim.Close() })
	keys, err := keyset.New(keyset.Config{RedisURL: redisURL, Channel: "lockout:keyset"}, func(ctx context.Context, after []byte, limit int32) ([][]byte, error) {
		return raw.ListAPIKeyHashesAfter(ctx, db.ListAPIKeyHashesAfterParams{After: after, PageSize: limit})
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	keys.Start(context.Background())
	t.Cleanup(func() { _ = keys.Close() })
	d := Deps{
		Store: store, Pool: e.pool, AdminKey: testAdminKey, RequestTimeout: 5 * time.Second, Log: log,
		AuthFailuresPerMinute: 30, AuthLimiter: lim, Keys: keys, Cache: c,
		APIMiddleware: []echo.MiddlewareFunc{CacheHeader()},
	}
	for _, o := range opts {
		o(&d)
	}
	return New(d)
}

// call sends GET /api/v1/me with key from the TCP peer addr, with
// X-Forwarded-For xff when set.
func call(h http.Handler, addr, xff, key string) int {
	req := httptest.NewRequest("GET", "/api/v1/me", nil)
	req.RemoteAddr = net.JoinHostPort(addr, "40000")
	if xff != "" {
		req.Header.Set(echo.HeaderXForwardedFor, xff)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// createKey creates a key for user through h's admin route.
func createKey(t *testing.T, h http.Handler, user string) apiKeyJSON {
	t.Helper()
	req := newRequest("POST", "/api/v1/users/"+user+"/keys", testAdminKey, `{"name":"mid-flood"}`, echo.MIMEApplicationJSON)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create a key: %d %s", rec.Code, rec.Body)
	}
	var k apiKeyJSON
	resp{ResponseRecorder: rec, t: t}.json(&k)
	return k
}

// flood sends n random bad keys from (addr, xff) and, every tenth request,
// each good key from the same client. It returns the flood's status counts
// and the good keys' failures.
func flood(t *testing.T, h http.Handler, addr, xff string, n int, good ...string) (codes map[int]int, goodFailures int) {
	t.Helper()
	codes = map[int]int{}
	for i := range n {
		codes[call(h, addr, xff, mintKey(t))]++
		if i%10 == 0 {
			for _, k := range good {
				if code := call(h, addr, xff, k); code != http.StatusOK {
					goodFailures++
					t.Errorf("request %d: a good key got %d", i, code)
				}
			}
		}
	}
	return codes, goodFailures
}

// A flood of 10 000 random keys from one address, with good keys sent
// from the same address throughout: a key the cache holds, one in the set
// of existing keys but never looked up, and one created through the API
// in the middle of the flood. No good request fails; the flood gets its
// 30 failures, then 429s; the database sees at most 30 lookups for it.
func TestBadKeyFloodNeverLocksOutGoodKeys(t *testing.T) {
	e := newEnv(t)
	_, cached := e.user()
	_, uncached := e.user()
	u, _ := e.user()
	h := instance(t, e, "")
	const addr = "203.0.113.7"
	if code := call(h, addr, "", cached); code != http.StatusOK { // into the cache
		t.Fatalf("warm-up: %d", code)
	}
	before := e.keyLookups()
	codes, failures := flood(t, h, addr, "", 5_000, cached)
	k := createKey(t, h, u.ID.String())
	more, moreFailures := flood(t, h, addr, "", 5_000, cached, uncached, k.Key)
	for c, n := range more {
		codes[c] += n
	}
	lookups := e.keyLookups() - before
	// Two good keys not cached yet: one lookup each.
	if failures+moreFailures != 0 || codes[http.StatusUnauthorized] != 30 || codes[http.StatusTooManyRequests] != 10_000-30 || lookups > 30+2 {
		t.Fatalf("good-key failures %d; flood codes %v, %d key lookups; want 0 failures, 30 × 401, the rest 429, ≤ 32 lookups",
			failures+moreFailures, codes, lookups)
	}
	t.Logf("flood of 10 000: %v, %d key lookups in pg_stat_statements (2 of them the good keys' first)", codes, lookups)
}

// Behind a trusted proxy every request comes from the proxy's address:
// the client is X-Forwarded-For's. The attacker's client address is
// limited; other clients sending a few bad keys are not, and a good key
// from the attacker's own client address still works.
func TestBadKeyFloodBehindTrustedProxy(t *testing.T) {
	e := newEnv(t)
	_, good := e.user()
	_, trusted, _ := net.ParseCIDR("10.0.0.0/8")
	h := instance(t, e, "", func(d *Deps) { d.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustIPRange(trusted)) })
	const proxy, attacker = "10.0.0.5", "198.51.100.66"
	codes, failures := flood(t, h, proxy, attacker, 2_000, good)
	if failures != 0 || codes[http.StatusUnauthorized] != 30 || codes[http.StatusTooManyRequests] != 2_000-30 {
		t.Fatalf("through the proxy: good-key failures %d, attacker's codes %v", failures, codes)
	}
	for i := range 20 {
		client := net.IPv4(198, 51, 100, byte(i+1)).String()
		for range 5 {
			if code := call(h, proxy, client, mintKey(t)); code != http.StatusUnauthorized {
				t.Fatalf("client %s, a bad key: %d, want 401 (its own budget is not spent)", client, code)
			}
		}
		if code := call(h, proxy, client, good); code != http.StatusOK {
			t.Fatalf("client %s, the good key: %d", client, code)
		}
	}
}

// From an address that is not a trusted proxy, X-Forwarded-For is
// ignored: a client rotating forged addresses spends its own budget.
func TestUntrustedForwardedForIsIgnored(t *testing.T) {
	e := newEnv(t)
	_, trusted, _ := net.ParseCIDR("10.0.0.0/8")
	h := instance(t, e, "", func(d *Deps) { d.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustIPRange(trusted)) })
	codes := map[int]int{}
	for i := range 100 {
		codes[call(h, "192.0.2.9", net.IPv4(198, 51, 100, byte(i)).String(), mintKey(t))]++
	}
	if codes[http.StatusUnauthorized] != 30 || codes[http.StatusTooManyRequests] != 70 {
		t.Fatalf("forged X-Forwarded-For from an untrusted peer: %v, want 30 × 401 then 429", codes)
	}
	if code := call(h, "192.0.2.10", "", mintKey(t)); code != http.StatusUnauthorized {
		t.Fatalf("another peer: %d", code)
	}
}

// Two instances on one Redis draw on one failure budget per address; with
// Redis down each falls back to its own in-process budget. A key created
// on one works on the other from the limited address once Redis has told
// it (its announcement, or the cache's).
func TestTwoInstancesShareTheFailureBudget(t *testing.T) {
	e := newEnv(t)
	rs := redistest.Start(t)
	a, b := instance(t, e, rs.URL()), instance(t, e, rs.URL())
	const addr = "203.0.113.20"
	for i := range 30 {
		h := a
		if i%2 == 1 {
			h = b
		}
		if code := call(h, addr, "", mintKey(t)); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	for name, h := range map[string]http.Handler{"a": a, "b": b} {
		if code := call(h, addr, "", mintKey(t)); code != http.StatusTooManyRequests {
			t.Fatalf("instance %s after 30 failures shared between both: %d, want 429", name, code)
		}
	}

	// A key created on a stays good on b at once, from the limited address:
	// b's set learns it through Redis, or b's cache holds it.
	u, _ := e.user()
	k := createKey(t, a, u.ID.String())
	if code := call(a, addr, "", k.Key); code != http.StatusOK {
		t.Fatalf("the new key on a: %d", code)
	}
	// b learns it through Redis (the announcement, or the cache's bump that
	// makes a's cached lookup valid on b): milliseconds, asynchronously.
	deadline := time.Now().Add(2 * time.Second)
	for code := call(b, addr, "", k.Key); code != http.StatusOK; code = call(b, addr, "", k.Key) {
		if time.Now().After(deadline) {
			t.Fatalf("the new key on b, from the limited address: %d after 2 s", code)
		}
		time.Sleep(5 * time.Millisecond)
	}

	rs.Stop()
	const other = "203.0.113.21"
	codes := map[int]int{}
	for range 40 {
		codes[call(a, other, "", mintKey(t))]++
	}
	if codes[http.StatusUnauthorized] != 30 || codes[http.StatusTooManyRequests] != 10 {
		t.Fatalf("with Redis down, one instance: %v, want its own budget of 30 then 429", codes)
	}
}
