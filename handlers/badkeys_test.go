package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/internal/apikey"
)

// keyLookups is how many times this test's database ran GetAPIKeyByHash,
// from pg_stat_statements.
func (e *env) keyLookups() int64 {
	e.t.Helper()
	var n int64
	err := e.pool.QueryRow(context.Background(), `
		SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND query LIKE '-- name: GetAPIKeyByHash %'`).Scan(&n)
	if err != nil {
		e.t.Fatalf("read pg_stat_statements: %v", err)
	}
	return n
}

func (e *env) fromAddr(addr, key string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/api/v1/me", nil)
	req.RemoteAddr = addr + ":40000"
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	e.e.ServeHTTP(rec, req)
	return rec
}

func mintKey(t *testing.T) string {
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	return k.Plain
}

// Unknown keys sent again and again reach the database once each; a key
// created meanwhile works at once.
func TestRepeatedUnknownKeysCostOneLookupEach(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.AuthFailuresPerMinute = -1 })
	_, valid := e.user()
	e.fromAddr("198.51.100.1", valid) // warm: the prepared statement and the pool
	before := e.keyLookups()
	bad := make([]string, 5)
	for i := range bad {
		bad[i] = mintKey(t)
	}
	for i := range 500 {
		if rec := e.fromAddr("198.51.100.1", bad[i%len(bad)]); rec.Code != http.StatusUnauthorized {
			t.Fatalf("unknown key: %d", rec.Code)
		}
	}
	if got := e.keyLookups() - before; got != int64(len(bad)) {
		t.Fatalf("500 requests with %d unknown keys ran %d lookups, want %d", len(bad), got, len(bad))
	}

	// A key created through the admin API right after a burst of bad keys
	// works on its first request.
	u, _ := e.user()
	var k apiKeyJSON
	e.do("POST", "/api/v1/users/"+u.ID.String()+"/keys", testAdminKey, map[string]any{"name": "fresh"}).want(201).json(&k)
	if rec := e.fromAddr("198.51.100.1", k.Key); rec.Code != http.StatusOK {
		t.Fatalf("a fresh key: %d %s", rec.Code, rec.Body)
	}
}

// A flood of distinct random keys from one address is cut off after the
// address's budget of failures: 10 000 keys cost at most that many
// lookups, the rest get 429 with Retry-After; another address is not
// affected, and the budget refills with time.
func TestBadKeyFloodIsLimitedPerAddress(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, func(d *Deps) { d.AuthFailuresPerMinute = 30; d.Now = clock })
	_, valid := e.user()
	e.fromAddr("203.0.113.50", valid)
	before := e.keyLookups()
	codes := map[int]int{}
	var retryAfter string
	for range 10_000 {
		rec := e.fromAddr("203.0.113.7", mintKey(t))
		codes[rec.Code]++
		if rec.Code == http.StatusTooManyRequests {
			retryAfter = rec.Header().Get("Retry-After")
		}
	}
	lookups := e.keyLookups() - before
	if codes[http.StatusUnauthorized] != 30 || codes[http.StatusTooManyRequests] != 10_000-30 || lookups > 30 {
		t.Fatalf("codes %v, %d lookups; want 30 × 401, the rest 429, ≤ 30 lookups", codes, lookups)
	}
	if retryAfter != "2" {
		t.Fatalf("Retry-After %q, want 2 (one failure per 2 s refills)", retryAfter)
	}
	if rec := e.fromAddr("203.0.113.8", mintKey(t)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d", rec.Code)
	}
	if rec := e.fromAddr("203.0.113.50", valid); rec.Code != http.StatusOK {
		t.Fatalf("a valid key from another address: %d", rec.Code)
	}
	now = now.Add(2 * time.Second)
	if rec := e.fromAddr("203.0.113.7", mintKey(t)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after the refill: %d", rec.Code)
	}
}
