package handlers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
)

// deadPool is a pool whose server is gone: a port that was free a moment
// ago and refuses connections now.
func deadPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?connect_timeout=1", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func fieldsOf(p Problem) []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, key := e.user()
	c := e.campaign(key, 1)
	cid := c.ID.String()
	big := `{"name":"` + strings.Repeat("x", 1<<20+10) + `"}`
	bulkOver1MiB := map[string]any{"emails": func() []newEmailInput {
		out := sampleEmails(2000)
		for i := range out {
			out[i].Body = strings.Repeat("b", 600)
		}
		return out
	}()}

	cases := []struct {
		name, method, path string
		body               any
		status             int
		fields             []string // validation errors expected, in order
	}{
		{"malformed JSON", "POST", "/api/v1/campaigns", `{"name": `, 400, nil},
		{"syntax error", "POST", "/api/v1/campaigns", `{"name" "x"}`, 400, nil},
		{"empty body", "POST", "/api/v1/campaigns", ``, 400, nil},
		{"two JSON values", "POST", "/api/v1/campaigns", `{"name":"a"} {"name":"b"}`, 400, nil},
		{"unknown field", "POST", "/api/v1/campaigns", `{"name":"a","colour":"red"}`, 400, []string{"colour"}},
		{"wrong type", "POST", "/api/v1/campaigns", `{"name":5}`, 400, []string{"name"}},
		{"missing name", "POST", "/api/v1/campaigns", `{}`, 400, []string{"name"}},
		{"bad status and email", "POST", "/api/v1/campaigns", `{"name":"a","status":"sent","emails":[{"recipient":"nope","subject":"s","body":"b"}]}`, 400, []string{"status", "emails[0].recipient"}},
		{"NUL in name", "POST", "/api/v1/campaigns", `{"name":"a\u0000b"}`, 400, []string{"name"}},
		{"name too long", "POST", "/api/v1/campaigns", `{"name":"` + strings.Repeat("é", 201) + `"}`, 400, []string{"name"}},
		{"body over 1 MiB", "POST", "/api/v1/campaigns", big, 413, nil},
		{"not JSON content type", "POST", "/api/v1/campaigns", nil, 415, nil},
		{"empty patch", "PATCH", "/api/v1/campaigns/" + cid, `{}`, 400, []string{"name"}},
		{"bad patch status", "PATCH", "/api/v1/campaigns/" + cid, `{"status":"done"}`, 400, []string{"status"}},
		{"bad UUID", "GET", "/api/v1/campaigns/not-a-uuid", nil, 400, []string{"id"}},
		{"bad email UUID", "POST", "/api/v1/emails/1234/opened", nil, 400, []string{"id"}},
		{"limit too big", "GET", "/api/v1/campaigns?limit=101", nil, 400, []string{"limit"}},
		{"limit zero", "GET", "/api/v1/campaigns?limit=0", nil, 400, []string{"limit"}},
		{"limit not a number", "GET", "/api/v1/campaigns/" + cid + "/emails?limit=ten", nil, 400, []string{"limit"}},
		{"bad cursor", "GET", "/api/v1/campaigns?cursor=not!base64", nil, 400, []string{"cursor"}},
		{"short cursor", "GET", "/api/v1/campaigns/" + cid + "/emails?cursor=AAAA", nil, 400, []string{"cursor"}},
		{"days too many", "GET", "/api/v1/campaigns/" + cid + "/daily-stats?days=367", nil, 400, []string{"days"}},
		{"days zero", "GET", "/api/v1/campaigns/" + cid + "/daily-stats?days=0", nil, 400, []string{"days"}},
		{"no emails in bulk", "POST", "/api/v1/campaigns/" + cid + "/emails", `{"emails":[]}`, 400, []string{"emails"}},
		{"too many emails", "POST", "/api/v1/campaigns/" + cid + "/emails", map[string]any{"emails": sampleEmails(MaxBulkEmails + 1)}, 400, []string{"emails"}},
		{"unknown campaign", "GET", "/api/v1/campaigns/" + uuid.NewString(), nil, 404, nil},
		{"unknown email", "GET", "/api/v1/emails/" + uuid.NewString(), nil, 404, nil},
		{"unknown route", "GET", "/api/v1/nothing-here", nil, 404, nil},
		{"wrong method", "PUT", "/api/v1/campaigns", `{}`, 405, nil},
		{"bulk over 1 MiB is fine", "POST", "/api/v1/campaigns/" + cid + "/emails", bulkOver1MiB, 201, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := e.do(tc.method, tc.path, key, tc.body)
			if tc.name == "not JSON content type" {
				req := newRequest(tc.method, tc.path, key, `{"name":"x"}`, "text/plain")
				r = e.serve(req)
			}
			r.want(tc.status)
			if tc.status < 300 {
				return
			}
			p := r.problem()
			if got := fieldsOf(p); strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields %v, want %v (problem %+v)", got, tc.fields, p)
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, key := e.user()
	u2, key2 := e.user()
	_ = u2
	revoked := func() string {
		_, k := e.user()
		var id uuid.UUID
		if err := e.pool.QueryRow(context.Background(), "SELECT id FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))", k).Scan(&id); err != nil {
			t.Fatal(err)
		}
		e.do("DELETE", "/api/v1/keys/"+id.String(), testAdminKey, nil).want(204)
		return k
	}()
	deactivated := func() string {
		u, k := e.user()
		if _, err := e.pool.Exec(context.Background(), "UPDATE users SET is_active = false WHERE id = $1", u.ID); err != nil {
			t.Fatal(err)
		}
		return k
	}()

	user := []struct{ name, header string }{
		{"no header", ""},
		{"basic scheme", "Basic dXNlcjpwYXNz"},
		{"empty bearer", "Bearer "},
		{"garbage key", "Bearer hello"},
		{"unknown key", "Bearer rr_" + strings.Repeat("A", 43)},
		{"revoked key", "Bearer " + revoked},
		{"deactivated user", "Bearer " + deactivated},
		{"admin key on a user route", "Bearer " + testAdminKey},
	}
	for _, tc := range user {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			req := newRequest("GET", "/api/v1/me", "", nil, "")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			r := e.serve(req).want(401)
			r.problem()
			if !strings.HasPrefix(r.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", r.Header().Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("user key on admin route", func(t *testing.T) {
		e.t = t
		e.do("POST", "/api/v1/users", key, map[string]string{"email": "x@y.io", "name": "X"}).want(401).problem()
		e.do("DELETE", "/api/v1/keys/"+uuid.NewString(), key2, nil).want(401).problem()
	})
	t.Run("wrong admin key", func(t *testing.T) {
		e.t = t
		e.do("POST", "/api/v1/users", testAdminKey+"x", map[string]string{"email": "x@y.io", "name": "X"}).want(401).problem()
	})
	t.Run("admin disabled", func(t *testing.T) {
		off := newEnv(t, func(d *Deps) { d.AdminKey = "" })
		p := off.do("POST", "/api/v1/users", testAdminKey, map[string]string{"email": "x@y.io", "name": "X"}).want(403).problem()
		if !strings.Contains(p.Detail, "ADMIN_API_KEY") {
			t.Fatalf("403 does not say how to enable admin routes: %q", p.Detail)
		}
	})
}

// TestTenantIsolation: every route that takes an id answers 404 to another
// user, and changes nothing.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	forEachStore(t, testTenantIsolation)
}

// forEachStore runs a test on the plain store and through the caching
// decorator (in-process tier), as the binary wires it: a cache must not
// widen what a user can see or keep a revoked key alive.
func forEachStore(t *testing.T, test func(t *testing.T, opts ...envOpt)) {
	t.Run("plain", func(t *testing.T) { t.Parallel(); test(t) })
	t.Run("cached", func(t *testing.T) {
		t.Parallel()
		opt, _ := withCache(t, "")
		test(t, opt)
	})
}

func testTenantIsolation(t *testing.T, opts ...envOpt) {
	e := newEnv(t, opts...)
	_, owner := e.user()
	_, other := e.user()
	c := e.campaign(owner, 2)
	var emails page[emailJSON]
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails", owner, nil).want(200).json(&emails)
	cid, eid := c.ID.String(), emails.Items[0].ID.String()

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/campaigns/" + cid, nil},
		{"PATCH", "/api/v1/campaigns/" + cid, map[string]string{"name": "Mine now"}},
		{"DELETE", "/api/v1/campaigns/" + cid, nil},
		{"GET", "/api/v1/campaigns/" + cid + "/summary", nil},
		{"GET", "/api/v1/campaigns/" + cid + "/daily-stats", nil},
		{"GET", "/api/v1/campaigns/" + cid + "/emails", nil},
		{"POST", "/api/v1/campaigns/" + cid + "/emails", map[string]any{"emails": sampleEmails(1)}},
		{"GET", "/api/v1/emails/" + eid, nil},
		{"POST", "/api/v1/emails/" + eid + "/opened", nil},
		{"POST", "/api/v1/emails/" + eid + "/replied", nil},
	}
	// The owner reads first, so that a cache holds the answers when the
	// other user asks.
	for _, r := range routes {
		if r.method == "GET" {
			e.do(r.method, r.path, owner, nil).want(200)
		}
	}
	for _, r := range routes {
		e.do(r.method, r.path, other, r.body).want(404).problem()
	}
	var list page[campaignJSON]
	e.do("GET", "/api/v1/campaigns", other, nil).want(200).json(&list)
	if len(list.Items) != 0 {
		t.Fatalf("another user lists %d campaigns", len(list.Items))
	}
	var after campaignJSON
	e.do("GET", "/api/v1/campaigns/"+cid, owner, nil).want(200).json(&after)
	var sum summaryJSON
	e.do("GET", "/api/v1/campaigns/"+cid+"/summary", owner, nil).want(200).json(&sum)
	if after.Name != "Launch" || sum.Total != 2 || sum.Opened != 0 || sum.Replied != 0 {
		t.Fatalf("another user changed the campaign: %+v %+v", after, sum)
	}
}

func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("server down", func(t *testing.T) {
		pool := deadPool(t)
		e := &env{t: t, e: New(Deps{Store: db.NewStore(pool, time.Second), Pool: pool}), pool: pool}
		r := e.do("GET", "/api/v1/me", "rr_"+strings.Repeat("A", 43), nil).want(503)
		r.problem()
		if r.Header().Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		if strings.Contains(r.Body.String(), "127.0.0.1") || strings.Contains(r.Body.String(), "dial") {
			t.Fatalf("driver text leaked: %s", r.Body)
		}
	})
	t.Run("pool exhausted", func(t *testing.T) {
		src := newEnv(t)
		_, key := src.user()
		cfg := src.pool.Config()
		cfg.MaxConns, cfg.MinConns = 1, 0
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		e := &env{t: t, e: New(Deps{Store: db.NewStore(pool, 100*time.Millisecond), Pool: pool}), pool: pool}
		held, err := pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer held.Release()
		r := e.do("GET", "/api/v1/me", key, nil).want(503)
		if r.problem().Type != problemBase+"unavailable" || r.Header().Get("Retry-After") == "" {
			t.Fatalf("exhausted pool: %s %v", r.Body, r.Header())
		}
		held.Release()
		e.do("GET", "/api/v1/me", key, nil).want(200)
	})
}

// TestRequestTimeoutReachesTheDatabase: a statement stuck on a row lock is
// canceled by the request deadline, and the client gets a timeout problem.
func TestRequestTimeoutReachesTheDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) { d.RequestTimeout = 300 * time.Millisecond })
	_, key := e.user()
	c := e.campaign(key, 0)
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE", c.ID); err != nil {
		t.Fatal(err)
	}
	r := e.do("PATCH", "/api/v1/campaigns/"+c.ID.String(), key, map[string]string{"name": "Blocked"})
	if r.Code != http.StatusGatewayTimeout && r.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 504 or 503; %s", r.Code, r.Body)
	}
	r.problem()
	// The server side gave up too: nothing waits on the lock any more. pgx
	// cancels through a separate cancel request, which the server acts on a
	// moment after the client has returned, so this waits for it (bounded).
	var waiting int
	for range 50 {
		if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d statements still wait on the lock 5s after the request timed out", waiting)
}

// panicStore injects a bug into one method to check what a panic becomes.
type panicStore struct{ db.Store }

func (panicStore) GetUser(context.Context, uuid.UUID) (db.User, error) { panic("injected bug") }

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) { d.Store = panicStore{d.Store} })
	_, key := e.user()
	p := e.do("GET", "/api/v1/me", key, nil).want(500).problem()
	if strings.Contains(p.Detail, "injected") {
		t.Fatalf("panic text reached the client: %+v", p)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "injected bug") || !strings.Contains(logs, "goroutine") || !strings.Contains(logs, p.RequestID) {
		t.Fatalf("panic not logged with its stack and request id: %s", logs)
	}
	// The server survives it.
	e.do("GET", "/api/v1/campaigns", key, nil).want(200)
}
