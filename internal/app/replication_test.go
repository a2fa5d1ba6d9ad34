package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db/dbroute"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// newAppOn builds an App on the given primary and environment (the
// replicas come through DATABASE_REPLICA_URLS in env).
func newAppOn(t testing.TB, primaryURL string, env map[string]string) *App {
	t.Helper()
	return startApp(t, func(k string) string {
		switch k {
		case "DATABASE_URL":
			return primaryURL
		case "RATE_LIMIT_DISABLED":
			// These tests drive load and replicas, not the per-key
			// budget (limits_test.go tests that).
			if _, set := env[k]; !set {
				return "true"
			}
		}
		return env[k]
	})
}

func replicaURLs(rep *pgtest.Replication) string {
	var urls []string
	for _, r := range rep.Replicas {
		urls = append(urls, r.URL)
	}
	return strings.Join(urls, ",")
}

// call sends one API request through the app's router.
func call(t testing.TB, a *App, method, path, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	a.Router.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func mustCall(t testing.TB, a *App, method, path, key, body string, want int, out any) {
	t.Helper()
	code, b := call(t, a, method, path, key, body)
	if code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// calls is how many times a database ran the sqlc query name, from its own
// pg_stat_statements: proof of where a statement ran.
func calls(t testing.TB, url, name string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE $1",
		"-- name: "+name+" %").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newUser(t testing.TB, a *App, email string) string {
	t.Helper()
	_, key, err := apikey.CreateUser(context.Background(), a.Store, email, "U")
	if err != nil {
		t.Fatal(err)
	}
	return key.Plain
}

// TestReadsLandOnReplicasWritesOnPrimary proves from each server's own
// pg_stat_statements that reads ran on the replicas, spread over both, and
// writes on the primary.
func TestReadsLandOnReplicasWritesOnPrimary(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 2})
	a := newAppOn(t, rep.PrimaryURL, map[string]string{"DATABASE_REPLICA_URLS": replicaURLs(rep), "CACHE_DISABLED": "true", "ADMIN_API_KEY": testAdminKey})
	key := newUser(t, a, "reader@example.com")
	if err := rep.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	const reads = 20
	for range reads {
		mustCall(t, a, "GET", "/api/v1/campaigns", key, "", http.StatusOK, nil)
	}
	mustCall(t, a, "POST", "/api/v1/campaigns", key, `{"name":"Written"}`, http.StatusCreated, nil)

	if n := calls(t, rep.PrimaryURL, "ListCampaigns"); n != 0 {
		t.Errorf("the primary ran ListCampaigns %d times; reads belong on replicas", n)
	}
	var onReplicas int64
	for i, r := range rep.Replicas {
		n := calls(t, r.URL, "ListCampaigns")
		if n == 0 {
			t.Errorf("replica %d ran no read: reads are not spread", i+1)
		}
		onReplicas += n
		if w := calls(t, r.URL, "CreateCampaign"); w != 0 {
			t.Errorf("replica %d ran CreateCampaign", i+1)
		}
	}
	if onReplicas != reads {
		t.Errorf("replicas ran ListCampaigns %d times, want %d", onReplicas, reads)
	}
	if n := calls(t, rep.PrimaryURL, "CreateCampaign"); n != 1 {
		t.Errorf("the primary ran CreateCampaign %d times, want 1", n)
	}

	// /metrics counts the reads per database.
	_, metrics := call(t, a, "GET", "/metrics", "", "")
	for _, want := range []string{`replyrocket_db_reads_total{database="replica-1"}`, `replyrocket_db_reads_total{database="replica-2"}`,
		`replyrocket_db_replica_lag_seconds{replica="replica-1"}`, `replyrocket_db_replica_in_rotation{replica="replica-2"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var health struct {
		Status   string
		Replicas []struct {
			Name, State string
			InRotation  bool `json:"in_rotation"`
		}
	}
	mustCall(t, a, "GET", "/health/db", "", "", http.StatusOK, &health)
	if health.Status != "ok" || len(health.Replicas) != 2 || !health.Replicas[0].InRotation || health.Replicas[1].State != "in_rotation" {
		t.Errorf("/health/db: %+v", health)
	}

	// The monitor sees both standbys streaming, and flags a slot nobody
	// uses (it keeps WAL on the primary's disk).
	admin, err := pgx.Connect(t.Context(), rep.PrimaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	if _, err := admin.Exec(t.Context(), "SELECT pg_create_physical_replication_slot('forgotten', true)"); err != nil {
		t.Fatal(err)
	}
	var perf struct {
		Checks []struct {
			Name, Status, Message string
			Details               json.RawMessage
		}
	}
	mustCall(t, a, "GET", "/db-monitor/performance", testAdminKey, "", http.StatusOK, &perf)
	found := 0
	for _, c := range perf.Checks {
		switch c.Name {
		case "replication":
			found++
			if c.Status != "ok" || strings.Count(string(c.Details), `"state":"streaming"`) != 2 {
				t.Errorf("replication check: %s %s %s", c.Status, c.Message, c.Details)
			}
		case "replication_slots":
			found++
			if c.Status != "warning" || !strings.Contains(c.Message, "forgotten") {
				t.Errorf("slots check: %s %s", c.Status, c.Message)
			}
		}
	}
	if found != 2 {
		t.Errorf("performance has %d of the 2 replication checks", found)
	}
}

const testAdminKey = "replication-test-admin-key"

// TestReadYourWritesWithDelayedReplica: the only replica replays commits 2 s
// late. A user who just wrote reads the write back at once — through this
// instance and through a second one sharing Redis — while another user's
// reads still go to the replica.
func TestReadYourWritesWithDelayedReplica(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 1, ApplyDelay: map[int]time.Duration{0: 2 * time.Second}})
	rds := redistest.Start(t)
	env := map[string]string{"DATABASE_REPLICA_URLS": replicaURLs(rep), "REDIS_URL": rds.URL()}
	a1 := newAppOn(t, rep.PrimaryURL, env)
	a2 := newAppOn(t, rep.PrimaryURL, env)
	writer := newUser(t, a1, "writer@example.com")
	other := newUser(t, a1, "other@example.com")
	if err := rep.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a1.DBRouter.Replicas()[0].State().InRotation })
	replica := rep.Replicas[0].URL
	conn, err := pgx.Connect(t.Context(), replica)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	// Each attempt must finish inside the replica's 2 s delay to prove
	// anything; on a machine too busy for that, try again (a wrong answer
	// fails at once).
	for attempt := 1; ; attempt++ {
		if rywScenario(t, a1, a2, writer, other, replica, conn, attempt) {
			return
		}
		if attempt == 3 {
			t.Fatal("three attempts ran slower than the replica's 2 s delay: nothing proven")
		}
		t.Logf("attempt %d ran slower than the replica's delay; again", attempt)
	}
}

// rywScenario creates a campaign and reads it back every way through both
// instances, then another user's list; it reports false when the replica
// replayed the campaign before the end (too slow to prove anything).
func rywScenario(t *testing.T, a1, a2 *App, writer, other, replica string, conn *pgx.Conn, attempt int) bool {
	t.Helper()
	replicaLists := calls(t, replica, "ListCampaigns")
	var c struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	name := fmt.Sprintf("Fresh %d", attempt)
	mustCall(t, a1, "POST", "/api/v1/campaigns", writer,
		`{"name":"`+name+`","status":"active","emails":[{"recipient":"ada@acme.io","subject":"Hi","body":"Hello"}]}`, http.StatusCreated, &c)
	for _, a := range []*App{a1, a2} {
		var got struct{ Name string }
		mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID, writer, "", http.StatusOK, &got)
		if got.Name != name {
			t.Fatalf("GET campaign: name %q", got.Name)
		}
		var list struct{ Items []struct{ ID string } }
		mustCall(t, a, "GET", "/api/v1/campaigns", writer, "", http.StatusOK, &list)
		if len(list.Items) != attempt || list.Items[0].ID != c.ID {
			t.Fatalf("list after create: %+v", list.Items)
		}
	}
	var emails struct{ Items []struct{ ID string } }
	mustCall(t, a2, "GET", "/api/v1/campaigns/"+c.ID+"/emails", writer, "", http.StatusOK, &emails)
	if len(emails.Items) != 1 {
		t.Fatalf("emails after create: %+v", emails.Items)
	}
	mustCall(t, a1, "POST", "/api/v1/emails/"+emails.Items[0].ID+"/opened", writer, "", http.StatusOK, nil)
	for _, a := range []*App{a2, a1} {
		var sum struct{ Total, Opened int64 }
		mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID+"/summary", writer, "", http.StatusOK, &sum)
		if sum.Total != 1 || sum.Opened != 1 {
			t.Fatalf("summary after open: %+v", sum)
		}
	}
	// Meanwhile another user's reads go to the replica.
	mustCall(t, a2, "GET", "/api/v1/campaigns", other, "", http.StatusOK, nil)

	// All of that must have run before the replica replayed the campaign:
	// then the writer's reads cannot have come from it.
	var seen int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM campaigns WHERE id = $1", c.ID).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != 0 {
		return false
	}
	if got := calls(t, replica, "ListCampaigns") - replicaLists; got != 1 {
		t.Fatalf("the replica ran %d campaign lists, want exactly the other user's one", got)
	}
	return true
}

// TestReplicaStoppedMidLoad: a replica dies under a read load and comes
// back; clients see no error, the replica leaves rotation and returns.
func TestReplicaStoppedMidLoad(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 2})
	a := newAppOn(t, rep.PrimaryURL, map[string]string{"DATABASE_REPLICA_URLS": replicaURLs(rep), "CACHE_DISABLED": "true"})
	key := newUser(t, a, "load@example.com")
	var c struct{ ID string }
	mustCall(t, a, "POST", "/api/v1/campaigns", key, `{"name":"Loaded"}`, http.StatusCreated, &c)
	if err := rep.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	r1 := a.DBRouter.Replicas()[0]
	waitFor(t, func() bool { return r1.State().InRotation && a.DBRouter.Replicas()[1].State().InRotation })

	var stop atomic.Bool
	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			paths := []string{"/api/v1/campaigns", "/api/v1/campaigns/" + c.ID, "/api/v1/me/statistics"}
			// Bounded: at most 20 000 requests per worker, and the test
			// stops the load as soon as the replica is back.
			for i := 0; i < 20000 && !stop.Load(); i++ {
				code, body := call(t, a, "GET", paths[(i+w)%len(paths)], key, "")
				requests.Add(1)
				if code != http.StatusOK {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	rep.Replicas[0].Stop(t)
	waitFor(t, func() bool { return !r1.State().InRotation })
	var health struct {
		Status   string
		Replicas []struct{ Name, State string }
	}
	waitFor(t, func() bool { return r1.State().Label() == "down" })
	mustCall(t, a, "GET", "/health/db", "", "", http.StatusOK, &health)
	if health.Status != "degraded" || health.Replicas[0].State != "down" || health.Replicas[1].State != "in_rotation" {
		t.Errorf("/health/db with a replica down: %+v", health)
	}
	time.Sleep(500 * time.Millisecond) // load on the survivor and the primary
	rep.Replicas[0].Start(t)
	waitFor(t, func() bool { return r1.State().InRotation })
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed while a replica died; first: %v", n, requests.Load(), firstFailure.Load())
	}
	if requests.Load() < 50 {
		t.Fatalf("only %d requests ran: the load proved nothing", requests.Load())
	}
	t.Logf("%d requests, none failed", requests.Load())
	_, metrics := call(t, a, "GET", "/metrics", "", "")
	// In at start, out when stopped, in again when back (at least: a
	// failing read and a check can race around the stop).
	for dir, min := range map[string]int{"out": 1, "in": 2} {
		m := regexp.MustCompile(`replyrocket_db_replica_rotation_changes_total\{direction="` + dir + `",replica="replica-1"\} (\d+)`).FindSubmatch(metrics)
		if m == nil {
			t.Errorf("/metrics lacks rotation changes %s", dir)
			continue
		}
		if n, _ := strconv.Atoi(string(m[1])); n < min {
			t.Errorf("rotation changes %s: %d, want at least %d", dir, n, min)
		}
	}
}

// TestBackgroundPoolIsolatesLongRunningWork holds every background
// connection: the monitor and partition maintenance are the ones waiting
// (they run there), API requests are unaffected.
func TestBackgroundPoolIsolatesLongRunningWork(t *testing.T) {
	t.Parallel()
	const admin = "admin-key-for-background-test"
	a := newApp(t, map[string]string{
		"DB_BACKGROUND_POOL_SIZE": "2", "DB_BACKGROUND_POOL_TIMEOUT": "1", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1",
		"ADMIN_API_KEY": admin, "CACHE_DISABLED": "true",
	})
	key := newUser(t, a, "bg@example.com")

	before := a.Background.Stat().AcquireCount()
	mustCall(t, a, "GET", "/db-monitor/performance", admin, "", http.StatusOK, nil)
	if a.Background.Stat().AcquireCount() == before {
		t.Fatal("the monitor did not use the background pool")
	}

	ctx := t.Context()
	var held []*pgxpool.Conn
	for range int(a.Background.Config().MaxConns) {
		c, err := a.Background.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	if err := a.EnsurePartitions(ctx); err == nil || !strings.Contains(err.Error(), "pool exhausted") {
		t.Fatalf("partition maintenance with the background pool full: %v (want it waiting there, then pool exhausted)", err)
	}
	apiBefore := a.Pool.Stat().AcquireCount()
	for i := range 30 {
		if i%3 == 0 {
			mustCall(t, a, "POST", "/api/v1/campaigns", key, `{"name":"During maintenance"}`, http.StatusCreated, nil)
			continue
		}
		mustCall(t, a, "GET", "/api/v1/campaigns", key, "", http.StatusOK, nil)
	}
	if a.Pool.Stat().AcquireCount() == apiBefore {
		t.Fatal("the API did not use its own pool")
	}
}

// TestAPIThroughPgBouncer runs the API's reads, writes, transactions and
// COPY through a real pgbouncer in transaction pooling mode, with
// DB_PGBOUNCER=true (no prepared statement outlives its transaction).
func TestAPIThroughPgBouncer(t *testing.T) {
	t.Parallel()
	bouncer := pgtest.StartPgBouncer(t, pgtest.NewDatabase(t))
	a := newAppOn(t, bouncer.URL, map[string]string{"DB_PGBOUNCER": "true", "CACHE_DISABLED": "true", "DB_POOL_SIZE": "4"})
	key := newUser(t, a, "bouncer@example.com")
	// Several rounds on a pool of several connections, so statements land on
	// server connections other than the ones they were first sent on.
	for round := range 5 {
		var c struct{ ID string }
		mustCall(t, a, "POST", "/api/v1/campaigns", key,
			`{"name":"Bounced","emails":[{"recipient":"a@b.io","subject":"s","body":"b"}]}`, http.StatusCreated, &c)
		mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID, key, "", http.StatusOK, nil)
		mustCall(t, a, "POST", "/api/v1/campaigns/"+c.ID+"/emails", key,
			`{"emails":[{"recipient":"c@d.io","subject":"s","body":"b"},{"recipient":"e@f.io","subject":"s","body":"b"}]}`, http.StatusCreated, nil)
		var emails struct{ Items []struct{ ID string } }
		mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID+"/emails", key, "", http.StatusOK, &emails)
		if len(emails.Items) != 3 {
			t.Fatalf("round %d: %d emails", round, len(emails.Items))
		}
		mustCall(t, a, "POST", "/api/v1/emails/"+emails.Items[0].ID+"/opened", key, "", http.StatusOK, nil)
		// A bulk event batch: its unnest(…::uuid[]) parameters have no
		// prepared statement to name their types.
		var res struct{ Results []struct{ Result string } }
		mustCall(t, a, "POST", "/api/v1/events", key, fmt.Sprintf(`{"events":[{"id":%q,"email_id":%q,"kind":"sent","at":"2026-01-02T03:04:05Z"}]}`,
			uuid.NewString(), emails.Items[1].ID), http.StatusOK, &res)
		if len(res.Results) != 1 || res.Results[0].Result != "applied" {
			t.Fatalf("round %d: bulk event results %+v", round, res.Results)
		}
		var sum struct{ Total, Opened int64 }
		mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID+"/summary", key, "", http.StatusOK, &sum)
		if sum.Total != 3 || sum.Opened != 1 {
			t.Fatalf("round %d: summary %+v", round, sum)
		}
		mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID+"/daily-stats?days=3", key, "", http.StatusOK, nil)
		mustCall(t, a, "PATCH", "/api/v1/campaigns/"+c.ID, key, `{"status":"paused"}`, http.StatusOK, nil)
		mustCall(t, a, "GET", "/api/v1/me/statistics", key, "", http.StatusOK, nil)
	}
	mustCall(t, a, "GET", "/api/v1/campaigns?limit=100", key, "", http.StatusOK, nil)
	mustCall(t, a, "GET", "/api/v1/campaigns/01890000-0000-7000-8000-000000000000", key, "", http.StatusNotFound, nil)
	log, err := os.ReadFile(bouncer.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "login attempt") {
		t.Fatalf("pgbouncer logged no client login: %s", log)
	}
}

// TestReadYourWritesChecksEveryReplica: with one replica caught up and one
// 2 s behind, a user who just wrote reads from the caught-up one (or the
// primary), never from the one that has not replayed the write — unlike a
// scheme that unsticks the user as soon as any one replica caught up.
func TestReadYourWritesChecksEveryReplica(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 2, ApplyDelay: map[int]time.Duration{1: 2 * time.Second}})
	a := newAppOn(t, rep.PrimaryURL, map[string]string{"DATABASE_REPLICA_URLS": replicaURLs(rep), "CACHE_DISABLED": "true"})
	key := newUser(t, a, "sticky@example.com")
	if err := rep.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return a.DBRouter.Replicas()[0].State().InRotation && a.DBRouter.Replicas()[1].State().InRotation
	})
	// Each attempt must finish inside replica 2's delay; on a machine too
	// busy for that, try again (a read on replica 2 fails at once).
	for attempt := 1; ; attempt++ {
		before1 := calls(t, rep.Replicas[0].URL, "GetCampaign")
		var c struct{ ID string }
		mustCall(t, a, "POST", "/api/v1/campaigns", key, `{"name":"Sticky"}`, http.StatusCreated, &c)
		written := time.Now()
		// Let the health checks see replica 1 replay the write (it streams
		// at once; on a busy machine a check may take a while); replica 2
		// holds it back for 2 s.
		primaryAt := currentLSN(t, rep.PrimaryURL)
		for time.Since(written) < 1500*time.Millisecond && a.DBRouter.Replicas()[0].State().ReplayLSN < primaryAt {
			time.Sleep(10 * time.Millisecond)
		}
		for range 10 {
			mustCall(t, a, "GET", "/api/v1/campaigns/"+c.ID, key, "", http.StatusOK, nil)
		}
		if n := calls(t, rep.Replicas[1].URL, "GetCampaign"); n != 0 {
			t.Fatalf("the delayed replica served %d of the writer's reads", n)
		}
		if time.Since(written) < 1800*time.Millisecond {
			if calls(t, rep.Replicas[0].URL, "GetCampaign") == before1 {
				t.Fatal("the caught-up replica served none of the writer's reads: they all went to the primary")
			}
			return
		}
		if attempt == 3 {
			t.Fatal("three attempts ran slower than the replica's 2 s delay: nothing proven")
		}
	}
}

// currentLSN is the primary's WAL insert position now.
func currentLSN(t *testing.T, url string) dbroute.LSN {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var v int64
	if err := conn.QueryRow(t.Context(), "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return dbroute.LSN(v)
}
