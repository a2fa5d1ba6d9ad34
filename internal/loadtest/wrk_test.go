package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// wrk 4.1's report, as `wrk -t2 -c32 -d8s --latency` prints it.
const wrkOutput = `Running 8s test @ http://127.0.0.1:41234/api/v1/campaigns/x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    1.51ms  30.12ms   90.12%
    Req/Sec    17.50k     1.20k   20.10k    70.00%
  Latency Distribution
     50%  541.00us
     75%    1.02ms
     90%    2.31ms
     99%    7.88ms
  278543 requests in 8.00s, 120.41MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  34817.87
Transfer/sec:     15.05MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 278543 || r.RPS < 34817 || r.RPS > 34818 || r.P50 != 541*time.Microsecond ||
		r.P99 != 7880*time.Microsecond || r.Errors != "3× non-2xx" {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Fatal("wrk's failure parsed as a result")
	}
}

// events.lua, run by wrk against a server that reads what it sends: every
// bulk body holds the asked-for count of well-formed events on the given
// emails, no event id repeats (across wrk's threads and two runs of the
// same target), and the single-event mode posts to the two routes.
func TestEventsScriptUnderWrk(t *testing.T) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		if pgtest.Strict() {
			t.Fatal("wrk is not on PATH (REPLYROCKET_TEST_STRICT=1; apt-get install wrk)")
		}
		t.Skip("wrk is not on PATH (apt-get install wrk; CI installs it)")
	}
	emails := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	known := map[string]bool{}
	for _, id := range emails {
		known[id.String()] = true
	}
	var mu sync.Mutex
	seen, paths := map[string]bool{}, map[string]int{}
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer k" {
			bad = append(bad, "no key")
		}
		if r.URL.Path != "/api/v1/events" {
			parts := strings.Split(r.URL.Path, "/") // "", api, v1, emails, {id}, {kind}
			if len(parts) != 6 || !known[parts[4]] {
				bad = append(bad, "path "+r.URL.Path)
			} else {
				paths[parts[5]]++
			}
			return
		}
		var body struct {
			Events []struct {
				ID, Kind string
				EmailID  string `json:"email_id"`
				At       time.Time
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Events) != 3 {
			bad = append(bad, fmt.Sprintf("body: %v, %d events", err, len(body.Events)))
			return
		}
		for _, e := range body.Events {
			if _, err := uuid.Parse(e.ID); err != nil || seen[e.ID] || !known[e.EmailID] || e.At.IsZero() ||
				(e.Kind != "opened" && e.Kind != "replied") {
				bad = append(bad, fmt.Sprintf("event %+v (seen before: %t)", e, seen[e.ID]))
			}
			seen[e.ID] = true
		}
	}))
	defer srv.Close()

	dir := t.TempDir()
	tgs := []target{
		{name: "single", method: "POST", key: "k", url: func(uint64) string { return srv.URL + "/" }},
		{name: "bulk", method: "POST", key: "k", url: func(uint64) string { return srv.URL + "/" }, bodyOf: func(uint64) []byte { return nil }},
	}
	if err := scriptEvents(dir, emails, tgs, []int{1, 3}); err != nil {
		t.Fatal(err)
	}
	for _, tg := range []target{tgs[0], tgs[1], tgs[1]} {
		r, err := attackWrk(context.Background(), bin, tg, 4, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || r.Errors != "" {
			t.Fatalf("%s: %+v", tg.name, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d bad requests, first: %s", len(bad), bad[0])
	}
	if paths["opened"] == 0 || paths["replied"] == 0 || len(paths) != 2 || len(seen) == 0 {
		t.Fatalf("single-event routes %v, %d bulk event ids", paths, len(seen))
	}
}
