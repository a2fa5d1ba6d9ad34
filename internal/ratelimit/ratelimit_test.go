package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replyrocket/replyrocket/internal/redistest"
)

func newLimiter(t *testing.T, url string) *Limiter {
	t.Helper()
	l, err := New(Config{RedisURL: url, Namespace: "rltest-" + t.Name(), Timeout: 200 * time.Millisecond}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// spend charges cost until refused and returns how many charges passed.
func spend(l *Limiter, key string, lim Limit, cost, tries int) int {
	n := 0
	for range tries {
		if l.Allow(context.Background(), "key", key, lim, cost).Allowed {
			n++
		}
	}
	return n
}

// Two instances on one Redis draw on one budget: what one spent, the other
// cannot spend again.
func TestSharedAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newLimiter(t, srv.URL()), newLimiter(t, srv.URL())
	lim := Limit{PerMinute: 60, Burst: 10}
	if got := spend(a, "k1", lim, 1, 6); got != 6 {
		t.Fatalf("first instance: %d of 6 allowed", got)
	}
	if got := spend(b, "k1", lim, 1, 10); got != 4 {
		t.Fatalf("second instance: %d allowed, want the 4 left of the burst", got)
	}
	d := a.Allow(context.Background(), "key", "k1", lim, 1)
	if d.Allowed || !d.Shared || d.RetryAfter <= 0 || d.RetryAfter > time.Second+100*time.Millisecond {
		t.Fatalf("over the budget: %+v", d)
	}
	if got := spend(b, "k2", lim, 1, 10); got != 10 {
		t.Fatalf("another key: %d of 10", got)
	}
	if s := a.Stats(); s.Backend != "redis" || s.Limited != 1 || len(s.TopKeys) != 1 || s.TopKeys[0].Key != "k1" {
		t.Fatalf("stats %+v", s)
	}
}

// Costs: a charge of 5 uses five units; one larger than what is left is
// refused and charges nothing.
func TestCosts(t *testing.T) {
	for _, url := range []string{"", "redis"} {
		t.Run("redis="+url, func(t *testing.T) {
			if url != "" {
				url = redistest.Start(t).URL()
			}
			l := newLimiter(t, url)
			lim := Limit{PerMinute: 60, Burst: 10}
			if !l.Allow(context.Background(), "key", "k", lim, 5).Allowed {
				t.Fatal("first 5 refused")
			}
			d := l.Allow(context.Background(), "key", "k", lim, 1)
			if !d.Allowed || d.Remaining != 4 {
				t.Fatalf("after 6 units: %+v", d)
			}
			if d := l.Allow(context.Background(), "key", "k", lim, 5); d.Allowed {
				t.Fatalf("5 more with 4 left allowed: %+v", d)
			}
			if got := spend(l, "k", lim, 1, 10); got != 4 {
				t.Fatalf("the refused charge cost something: %d left, want 4", got)
			}
		})
	}
}

// Redis down: the local limit decides (never fail closed, never unlimited),
// errors are counted, and the shared limit resumes when Redis is back.
func TestRedisDownFallsBackToLocal(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv.URL())
	lim := Limit{PerMinute: 60, Burst: 5}
	srv.Stop()
	start := time.Now()
	d := l.Allow(context.Background(), "key", "k", lim, 1)
	if !d.Allowed || d.Shared {
		t.Fatalf("Redis down: %+v", d)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("a dead Redis cost %s", el)
	}
	if got := spend(l, "k", lim, 1, 10); got != 4 {
		t.Fatalf("local limit: %d allowed, want 4", got)
	}
	if n := testutil.ToFloat64(l.errors); n < 1 {
		t.Fatalf("redis errors counted: %v", n)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for !l.Allow(context.Background(), "key", "k2", lim, 1).Shared {
		if time.Now().After(deadline) {
			t.Fatal("the shared limit did not resume")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A charge after the fact takes what is left and never refuses; the next
// request then finds the budget empty.
func TestChargeAfterTheFact(t *testing.T) {
	for _, url := range []string{"", "redis"} {
		t.Run("redis="+url, func(t *testing.T) {
			if url != "" {
				url = redistest.Start(t).URL()
			}
			l := newLimiter(t, url)
			lim := Limit{PerMinute: 6, Burst: 3}
			if !l.Allow(context.Background(), "key", "k", lim, 1).Allowed {
				t.Fatal("refused")
			}
			if d := l.Charge(context.Background(), "k", lim, 4); !d.Allowed {
				t.Fatalf("charge refused: %+v", d)
			}
			if d := l.Allow(context.Background(), "key", "k", lim, 1); d.Allowed {
				t.Fatalf("the budget was not spent: %+v", d)
			}
		})
	}
}
