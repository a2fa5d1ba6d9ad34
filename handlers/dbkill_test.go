package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/migrate"
	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// killableDB is a PostgreSQL server of the test's own, from the local
// binaries, which the test may kill without disturbing the package's shared
// server.
type killableDB struct {
	t       *testing.T
	cluster *pglocal.Cluster
	dir     string
	pool    *pgxpool.Pool
	srv     *httptest.Server
	key     string
	email   uuid.UUID
	camp    uuid.UUID
}

func newKillableDB(t *testing.T) *killableDB {
	t.Helper()
	if _, err := pglocal.BinDir(); err != nil {
		if pgtest.Strict() {
			t.Fatalf("a database-kill test needs local PostgreSQL binaries: %v", err)
		}
		t.Skipf("no local PostgreSQL binaries: %v", err)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "dbkill-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Durable: a crash must not lose what was committed (the tests' shared
	// server runs with fsync off; this one is killed on purpose).
	cluster, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir + "/data", Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	k := &killableDB{t: t, cluster: cluster, dir: dir}
	t.Cleanup(func() { _ = k.cluster.Stop() })
	url := cluster.URL("postgres")
	if err := migrate.Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.ConnectTimeout = time.Second
	if k.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.pool.Close)
	store := db.NewStore(k.pool, time.Second)
	if _, err := store.EnsureEmailPartitions(ctx, db.EnsureEmailPartitionsParams{FromMonth: time.Now(), Months: 1}); err != nil {
		t.Fatal(err)
	}
	_, issued, err := apikey.CreateUser(ctx, store, "kill@example.com", "Kill")
	if err != nil {
		t.Fatal(err)
	}
	k.key = issued.Plain
	camp, err := db.CreateCampaignWithEmails(ctx, store, db.CreateCampaignWithEmailsParams{
		Campaign: db.CreateCampaignParams{UserID: issued.UserID, Name: "Doomed", Status: "active"},
		Emails:   []db.NewEmail{{Recipient: "a@example.com", Subject: "s", Body: "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	k.camp = camp.ID
	if err := k.pool.QueryRow(ctx, "SELECT id FROM emails WHERE campaign_id = $1", camp.ID).Scan(&k.email); err != nil {
		t.Fatal(err)
	}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	k.srv = httptest.NewServer(New(Deps{
		Store: store, Pool: k.pool, RequestTimeout: 5 * time.Second,
		Log: slog.New(slog.NewJSONHandler(logs, nil)),
	}))
	t.Cleanup(k.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return k
}

// call sends one request and returns its status, checking what a
// 503 owes the client.
func (k *killableDB) call(method, path string, body any) int {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, k.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+k.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "" {
		k.t.Errorf("%s %s: 503 without Retry-After", method, path)
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable && res.StatusCode != http.StatusGatewayTimeout {
		k.t.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode
}

// waitForBackend finds the backend blocked on a lock while serving a
// request, as the kill of "the backend serving the request" needs.
func (k *killableDB) waitForBackend(ctx context.Context, admin *pgx.Conn) int {
	k.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var pid int
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%ApplyEmailEvents%' LIMIT 1`).Scan(&pid)
		if err == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	k.t.Fatal("the request's backend never waited on the lock")
	return 0
}

// A backend that dies while serving a request, by pg_terminate_backend
// (a FATAL message, then EOF) and by SIGKILL (the socket cut with no
// message; the server then restarts every backend), gives the client a 503
// with Retry-After, never a 500; and the next requests succeed once the
// database is back.
func TestBackendKilledMidRequestIs503(t *testing.T) {
	k := newKillableDB(t)
	ctx := context.Background()
	for _, how := range []string{"pg_terminate_backend", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			k.t = t
			locker, err := pgx.Connect(ctx, k.cluster.URL("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Close(ctx)
			tx, err := locker.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The row lock makes the request's UPDATE wait in its backend.
			if _, err := tx.Exec(ctx, "SELECT 1 FROM emails WHERE id = $1 FOR UPDATE", k.email); err != nil {
				t.Fatal(err)
			}
			got := make(chan int, 1)
			go func() { got <- k.call("POST", "/api/v1/emails/"+k.email.String()+"/opened", nil) }()
			admin, err := pgx.Connect(ctx, k.cluster.URL("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close(ctx)
			pid := k.waitForBackend(ctx, admin)
			switch how {
			case "pg_terminate_backend":
				if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
					t.Fatal(err)
				}
			case "SIGKILL":
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			if code := <-got; code != http.StatusServiceUnavailable {
				t.Fatalf("request whose backend died: %d, want 503", code)
			}
			_ = tx.Rollback(ctx)
			waitForSuccess(t, k, "GET", "/api/v1/campaigns/"+k.camp.String()+"/summary")
		})
	}
}

func waitForSuccess(t *testing.T, k *killableDB, method, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if k.call(method, path, nil) == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s never succeeded after the database came back", method, path)
}

// The database stopped hard (pg_ctl stop -m immediate) under a mixed load:
// every request is answered 2xx, 503 (with Retry-After) or 504, never
// 500; after a restart the API serves again.
func TestDatabaseStoppedImmediatelyUnderLoadNever500(t *testing.T) {
	k := newKillableDB(t)
	requests := []struct {
		method, path string
		body         func(i int) any
	}{
		{"POST", "/api/v1/emails/" + k.email.String() + "/opened", nil},
		{"GET", "/api/v1/campaigns/" + k.camp.String() + "/summary", nil},
		{"GET", "/api/v1/me/statistics", nil},
		{"POST", "/api/v1/campaigns/" + k.camp.String() + "/emails", func(i int) any {
			return map[string]any{"emails": sampleEmails(200)}
		}},
		{"POST", "/api/v1/campaigns", func(i int) any {
			return map[string]any{"name": fmt.Sprint("c", i), "emails": sampleEmails(50)}
		}},
	}
	stop := make(chan struct{})
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := requests[(w+i)%len(requests)]
				var body any
				if r.body != nil {
					body = r.body(i)
				}
				code := k.call(r.method, r.path, body)
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(400 * time.Millisecond)
	if err := k.cluster.StopImmediate(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("statuses: %v", counts)
	if counts[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("no 503 after the database died: %v", counts)
	}
	ok := 0
	for code, n := range counts {
		if code >= 200 && code < 300 {
			ok += n
		}
	}
	if ok == 0 {
		t.Fatalf("no success before the database died: %v", counts)
	}

	cluster, err := pglocal.Start(context.Background(), pglocal.Options{DataDir: k.cluster.DataDir, Port: k.cluster.Port, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	k.cluster = cluster
	waitForSuccess(t, k, "GET", "/api/v1/campaigns/"+k.camp.String()+"/summary")
}
