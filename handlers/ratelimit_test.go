package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/internal/ratelimit"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

func withLimiter(t *testing.T, redisURL string, key, admin ratelimit.Limit) envOpt {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Config{RedisURL: redisURL, Namespace: "rl-" + t.Name(), Timeout: 200 * time.Millisecond}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return func(d *Deps) {
		d.RateLimiter, d.KeyRateLimit, d.AdminRateLimit = l, key, admin
	}
}

// A key's budget: every response says what is left; past it, 429 problem
// with Retry-After; costs differ by route; a key's own limit set through
// the admin API applies at once; the admin routes have their own budget.
func TestRateLimitPerKey(t *testing.T) {
	e := newEnv(t, withLimiter(t, "", ratelimit.Limit{PerMinute: 60, Burst: 20}, ratelimit.Limit{PerMinute: 60, Burst: 3}))
	_, key := e.user()
	c := e.campaign(key, 0) // costs 5
	res := e.do("GET", "/api/v1/me", key, nil).want(200)
	if p, r := res.Header().Get("RateLimit-Policy"), res.Header().Get("RateLimit"); p != `"key";q=60;w=60;burst=20` || !strings.HasPrefix(r, `"key";r=14;t=`) {
		t.Fatalf("headers %q %q", p, r)
	}
	// The bulk route costs 10: 14 left → 4 left.
	e.do("POST", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, map[string]any{"emails": sampleEmails(1)}).want(201)
	// An uncached summary costs 1 + 4: nothing left after it.
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/summary", key, nil).want(200)
	res = e.do("GET", "/api/v1/me", key, nil).want(http.StatusTooManyRequests)
	if p := res.problem(); p.Type != problemBase+"rate-limited" {
		t.Fatalf("problem %+v", p)
	}
	if ra := res.Header().Get("Retry-After"); ra != "1" && ra != "2" {
		t.Fatalf("Retry-After %q", ra)
	}
	// Another key has its own budget.
	_, other := e.user()
	e.do("GET", "/api/v1/me", other, nil).want(200)

	// The admin routes: a budget of 3, shared by whoever holds the key.
	var k apiKeyJSON
	u, _ := e.user()
	e.do("POST", "/api/v1/users/"+u.ID.String()+"/keys", testAdminKey, map[string]any{}).want(201).json(&k)
	e.do("PATCH", "/api/v1/keys/"+k.ID.String(), testAdminKey, map[string]any{"rate_limit_per_minute": 600}).want(200)
	e.do("GET", "/db-monitor/rate-limits", testAdminKey, nil).want(200)
	e.do("GET", "/db-monitor/rate-limits", testAdminKey, nil).want(http.StatusTooManyRequests)

	// The override took effect on the key's next request.
	res = e.do("GET", "/api/v1/me", k.Key, nil).want(200)
	if p := res.Header().Get("RateLimit-Policy"); !strings.Contains(p, "q=600") {
		t.Fatalf("override not applied: %q", p)
	}
}

// Two instances on one Redis share each key's budget; with Redis down both
// keep limiting in process and never refuse for Redis' sake.
func TestRateLimitSharedByInstancesAndRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	lim := ratelimit.Limit{PerMinute: 60, Burst: 10}
	a := newEnv(t, withLimiter(t, srv.URL(), lim, lim))
	// b: a second router on the same database and Redis.
	b := &env{t: t, pool: a.pool, store: a.store, logs: a.logs, noSpec: true}
	b.e = New(Deps{Store: a.store, Pool: nil, AdminKey: testAdminKey, RequestTimeout: 5 * time.Second,
		RateLimiter: mustLimiter(t, srv.URL()), KeyRateLimit: lim, AdminRateLimit: lim})
	_, key := a.user()
	ok := 0
	for i := range 20 {
		inst := a
		if i%2 == 1 {
			inst = b
		}
		if inst.do("GET", "/api/v1/me", key, nil).Code == http.StatusOK {
			ok++
		}
	}
	if ok != 10 {
		t.Fatalf("%d of 20 requests across two instances passed, want the shared burst of 10", ok)
	}

	srv.Stop()
	_, fresh := a.user()
	codes := map[int]int{}
	for range 15 {
		codes[a.do("GET", "/api/v1/me", fresh, nil).Code]++
	}
	if codes[http.StatusOK] != 10 || codes[http.StatusTooManyRequests] != 5 {
		t.Fatalf("Redis down: %v; want the local limit (10 then 429)", codes)
	}
}

func mustLimiter(t *testing.T, url string) *ratelimit.Limiter {
	l, err := ratelimit.New(ratelimit.Config{RedisURL: url, Namespace: "rl-" + t.Name(), Timeout: 200 * time.Millisecond}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
