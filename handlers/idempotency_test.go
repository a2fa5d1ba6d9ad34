package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func (e *env) idem(method, path, key, idemKey string, body any) *httptest.ResponseRecorder {
	return e.idemCtx(context.Background(), method, path, key, idemKey, body)
}

func (e *env) idemCtx(ctx context.Context, method, path, key, idemKey string, body any) *httptest.ResponseRecorder {
	raw, _ := json.Marshal(body)
	req := httptest.NewRequest(method, path, bytes.NewReader(raw)).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	if idemKey != "" {
		req.Header.Set(HeaderIdempotencyKey, idemKey)
	}
	rec := httptest.NewRecorder()
	e.e.ServeHTTP(rec, req)
	return rec
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// A retry with the same key and body replays the stored response and writes
// nothing; the same key with another body is 422; keys are per user; every
// POST takes one.
func TestIdempotencyKeyReplaysAndRefusesReuse(t *testing.T) {
	e := newEnv(t)
	u, key := e.user()
	body := map[string]any{"name": "Once", "emails": sampleEmails(3)}
	first := e.idem("POST", "/api/v1/campaigns", key, "k-1", body)
	if first.Code != 201 {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	again := e.idem("POST", "/api/v1/campaigns", key, "k-1", body)
	if again.Code != 201 || again.Body.String() != first.Body.String() || again.Header().Get(HeaderIdempotentReplayed) != "true" ||
		again.Header().Get("Location") != first.Header().Get("Location") {
		t.Fatalf("retry: %d %s %v", again.Code, again.Body, again.Header())
	}
	if n := e.count("SELECT count(*) FROM campaigns WHERE user_id = $1", u.ID); n != 1 {
		t.Fatalf("%d campaigns after a retry", n)
	}
	if n := e.count("SELECT count(*) FROM emails e JOIN campaigns c ON c.id = e.campaign_id WHERE c.user_id = $1", u.ID); n != 3 {
		t.Fatalf("%d emails after a retry", n)
	}
	other := e.idem("POST", "/api/v1/campaigns", key, "k-1", map[string]any{"name": "Twice"})
	if other.Code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d %s", other.Code, other.Body)
	}
	// Another user's same key is another key.
	_, key2 := e.user()
	if rec := e.idem("POST", "/api/v1/campaigns", key2, "k-1", body); rec.Code != 201 || rec.Header().Get(HeaderIdempotentReplayed) != "" {
		t.Fatalf("other user: %d %v", rec.Code, rec.Header())
	}

	// Bulk emails, opened/replied, user and key creation.
	var c campaignJSON
	_ = json.Unmarshal(first.Body.Bytes(), &c)
	bulk := map[string]any{"emails": sampleEmails(5)}
	for range 2 {
		if rec := e.idem("POST", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, "bulk-1", bulk); rec.Code != 201 {
			t.Fatalf("bulk: %d %s", rec.Code, rec.Body)
		}
	}
	if n := e.count("SELECT count(*) FROM emails WHERE campaign_id = $1", c.ID); n != 8 {
		t.Fatalf("%d emails after a retried bulk insert, want 3 + 5", n)
	}
	var eid uuid.UUID
	_ = e.pool.QueryRow(context.Background(), "SELECT id FROM emails WHERE campaign_id = $1 LIMIT 1", c.ID).Scan(&eid)
	o1 := e.idem("POST", "/api/v1/emails/"+eid.String()+"/opened", key, "open-1", nil)
	o2 := e.idem("POST", "/api/v1/emails/"+eid.String()+"/opened", key, "open-1", nil)
	if o1.Code != 200 || o2.Body.String() != o1.Body.String() {
		t.Fatalf("opened: %d / %s vs %s", o1.Code, o1.Body, o2.Body)
	}
	newUser := map[string]any{"email": uuid.NewString() + "@example.com", "name": "Idem"}
	u1 := e.idem("POST", "/api/v1/users", testAdminKey, "user-1", newUser)
	u2 := e.idem("POST", "/api/v1/users", testAdminKey, "user-1", newUser)
	if u1.Code != 201 || u2.Code != 201 || u1.Body.String() != u2.Body.String() {
		t.Fatalf("create user: %d %d", u1.Code, u2.Code)
	}
	if rec := e.idem("POST", "/api/v1/users/"+u.ID.String()+"/keys", testAdminKey, "key-1", map[string]any{"name": "a"}); rec.Code != 201 {
		t.Fatalf("create key: %d", rec.Code)
	}
	e.idem("POST", "/api/v1/users/"+u.ID.String()+"/keys", testAdminKey, "key-1", map[string]any{"name": "a"})
	if n := e.count("SELECT count(*) FROM api_keys WHERE user_id = $1", u.ID); n != 2 {
		t.Fatalf("%d keys after a retried key creation, want 2", n)
	}
	// A client error is stored too: the retry gets the same 400.
	bad := map[string]any{"name": ""}
	if r1, r2 := e.idem("POST", "/api/v1/campaigns", key, "bad-1", bad), e.idem("POST", "/api/v1/campaigns", key, "bad-1", bad); r1.Code != 400 || r2.Code != 400 || r2.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("client error: %d %d %v", r1.Code, r2.Code, r2.Header())
	}
	if rec := e.idem("POST", "/api/v1/campaigns", key, string([]byte{'a', 0x01}), body); rec.Code != 400 {
		t.Fatalf("bad key: %d", rec.Code)
	}
}

// holdCampaigns locks the campaigns table in another transaction, so a
// campaign creation waits inside its transaction until release.
func holdCampaigns(t *testing.T, e *env) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE campaigns IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback(ctx) }
}

func (e *env) waitForLockWaiters(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("fewer than %d requests waiting on a lock", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two retries at once: the second waits for the first's transaction and
// replays its answer; the write runs once.
func TestIdempotencyConcurrentRetriesWriteOnce(t *testing.T) {
	e := newEnv(t)
	u, key := e.user()
	release := holdCampaigns(t, e)
	body := map[string]any{"name": "Concurrent"}
	recs := make([]*httptest.ResponseRecorder, 2)
	var wg sync.WaitGroup
	for i := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = e.idem("POST", "/api/v1/campaigns", key, "same", body)
		}()
		if i == 0 {
			e.waitForLockWaiters(1) // the first holds the key, waiting on the table
		}
	}
	e.waitForLockWaiters(2) // the second waits on the first's key
	release()
	wg.Wait()
	if recs[0].Code != 201 || recs[1].Code != 201 || recs[0].Body.String() != recs[1].Body.String() {
		t.Fatalf("answers: %d %s / %d %s", recs[0].Code, recs[0].Body, recs[1].Code, recs[1].Body)
	}
	if n := e.count("SELECT count(*) FROM campaigns WHERE user_id = $1", u.ID); n != 1 {
		t.Fatalf("%d campaigns from two concurrent retries", n)
	}
}

// A client that disconnects while its request runs leaves nothing behind:
// no campaign and no stored key, so its retry runs (once).
func TestIdempotencyClientGoneThenRetry(t *testing.T) {
	e := newEnv(t)
	u, key := e.user()
	release := holdCampaigns(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- e.idemCtx(ctx, "POST", "/api/v1/campaigns", key, "gone", map[string]any{"name": "Gone"}).Code
	}()
	e.waitForLockWaiters(1)
	cancel()
	if code := <-done; code != statusClientClosed {
		t.Fatalf("abandoned request: %d", code)
	}
	release()
	if n := e.count("SELECT count(*) FROM idempotency_keys WHERE key = 'gone'"); n != 0 {
		t.Fatalf("an abandoned request left its key stored")
	}
	if rec := e.idem("POST", "/api/v1/campaigns", key, "gone", map[string]any{"name": "Gone"}); rec.Code != 201 || rec.Header().Get(HeaderIdempotentReplayed) != "" {
		t.Fatalf("retry: %d %v", rec.Code, rec.Header())
	}
	if n := e.count("SELECT count(*) FROM campaigns WHERE user_id = $1", u.ID); n != 1 {
		t.Fatalf("%d campaigns", n)
	}
}

// The server that committed the write dies before the client reads the
// answer: the retry, on another instance, gets the stored answer and
// writes nothing.
func TestIdempotencyServerGoneAfterCommit(t *testing.T) {
	e := newEnv(t)
	u, key := e.user()
	srv := httptest.NewServer(e.e)
	body := `{"name":"Committed","emails":[{"recipient":"a@example.com","subject":"s","body":"b"}]}`
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/campaigns", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotencyKey, "crash-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close() // the answer is lost with the server
	srv.CloseClientConnections()
	srv.Close()

	second := New(Deps{Store: e.store, AdminKey: testAdminKey, RequestTimeout: 5 * time.Second})
	retry := httptest.NewRequest("POST", "/api/v1/campaigns", bytes.NewReader([]byte(body)))
	retry.Header.Set("Authorization", "Bearer "+key)
	retry.Header.Set("Content-Type", "application/json")
	retry.Header.Set(HeaderIdempotencyKey, "crash-1")
	rec := httptest.NewRecorder()
	second.ServeHTTP(rec, retry)
	if rec.Code != 201 || rec.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("retry on another instance: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if n := e.count("SELECT count(*) FROM campaigns WHERE user_id = $1", u.ID); n != 1 {
		t.Fatalf("%d campaigns", n)
	}
}
