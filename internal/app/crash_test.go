package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/dbfixture"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// crashChildEnv makes the test binary the crash test's server: TestMain
// runs serveCrashChild instead of the tests.
const crashChildEnv = "REPLYROCKET_CRASH_CHILD"

// serveCrashChild is the server process of TestNoAcknowledgedEventLost:
// the app wired as serve wires it, from the environment, on a loopback
// port it prints first. It runs until it is killed.
func serveCrashChild() int {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	if err := a.Serve(context.Background(), ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestNoAcknowledgedEventLost posts events from many goroutines to a
// server in a child process, SIGKILLs it in the middle, and checks that
// every event it acknowledged (a 200) is in the database: its id recorded
// and its email changed. A batch is acknowledged only after it committed.
func TestNoAcknowledgedEventLost(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := db.NewStore(pool, 5*time.Second)
	if _, err := store.EnsureEmailPartitions(ctx, db.EnsureEmailPartitionsParams{FromMonth: time.Now(), Months: 1}); err != nil {
		t.Fatal(err)
	}
	user, key := dbfixture.UserWithKey(t, store, db.CreateUserParams{})
	var emails []uuid.UUID
	for range 4 {
		c := dbfixture.Campaign(t, store, db.CreateCampaignParams{UserID: user.ID})
		for _, e := range dbfixture.Emails(t, store, c.ID, 250, time.Now()) {
			emails = append(emails, e.ID)
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", "DATABASE_URL="+url, "RATE_LIMIT_DISABLED=true", "APP_ENV=dev", "LOG_LEVEL=error")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the server printed no address: %v; stderr: %s", err, stderr.String())
	}
	base := "http://" + line[:len(line)-1]

	// Each goroutine posts bulk requests of fresh event ids, and opens one
	// at a time, and keeps what was acknowledged.
	type acked struct {
		events []uuid.UUID // bulk event ids answered applied or duplicate
		opened []uuid.UUID // emails whose single open was answered 200
	}
	const workers = 16
	results := make([]acked, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := emails[(w*7919+i*31)%len(emails)]
				if i%2 == 0 {
					if postOpen(client, base, key, email) {
						results[w].opened = append(results[w].opened, email)
					}
					continue
				}
				ids, ok := postBulk(client, base, key, emails, w, i)
				if ok {
					results[w].events = append(results[w].events, ids...)
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	var events, opened int
	for _, r := range results {
		events += len(r.events)
		opened += len(r.opened)
		for _, id := range r.events {
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM email_events WHERE user_id = $1 AND event_id = $2", user.ID, id).Scan(&n); err != nil || n != 1 {
				t.Errorf("acknowledged event %s: %d rows (%v)", id, n, err)
			}
		}
		for _, e := range r.opened {
			var ok bool
			if err := pool.QueryRow(ctx, "SELECT is_opened FROM emails WHERE id = $1", e).Scan(&ok); err != nil || !ok {
				t.Errorf("acknowledged open of %s: is_opened %v (%v)", e, ok, err)
			}
		}
	}
	if events == 0 || opened == 0 {
		t.Fatalf("the server acknowledged %d bulk events and %d opens before the kill: the test tested nothing", events, opened)
	}
	t.Logf("checked %d acknowledged bulk events and %d opens after SIGKILL", events, opened)
}

// postOpen posts one open and reports whether it was acknowledged.
func postOpen(c *http.Client, base, key string, email uuid.UUID) bool {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/emails/"+email.String()+"/opened", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode == http.StatusOK
}

// postBulk posts 10 events of fresh ids and returns those acknowledged.
func postBulk(c *http.Client, base, key string, emails []uuid.UUID, w, i int) ([]uuid.UUID, bool) {
	type ev struct {
		ID      uuid.UUID `json:"id"`
		EmailID uuid.UUID `json:"email_id"`
		Kind    string    `json:"kind"`
		At      time.Time `json:"at"`
	}
	kinds := []string{"sent", "replied", "bounced", "opened", "failed"}
	evs := make([]ev, 10)
	for k := range evs {
		evs[k] = ev{ID: uuid.New(), EmailID: emails[(w*104729+i*13+k)%len(emails)], Kind: kinds[(i+k)%len(kinds)], At: time.Now().UTC()}
	}
	body, _ := json.Marshal(map[string]any{"events": evs})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	var out struct {
		Results []struct {
			ID     uuid.UUID `json:"id"`
			Result string    `json:"result"`
		} `json:"results"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&out) != nil {
		return nil, false
	}
	var ids []uuid.UUID
	for _, r := range out.Results {
		if r.Result != "not_found" {
			ids = append(ids, r.ID)
		}
	}
	return ids, true
}
