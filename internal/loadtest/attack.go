package loadtest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Row is one line of the result table.
type Row struct {
	Name   string
	RPS    float64
	P50    time.Duration
	P99    time.Duration
	Errors string // "" when every response had the expected status
	// Requests is how many were made (transactions, for pgbench).
	Requests uint64
	// ClientCPU is the CPU the serving process (the app, the reference;
	// pgbench for its rows) used per request, DBCPU PostgreSQL's: unlike
	// rps, these hold still on a machine shared with other work.
	ClientCPU, DBCPU time.Duration
	Limit            string // what the row is compared with
	Ratio            float64
	Comment          string
	// Also are its ratios to further references, printed after the table.
	Also []string
}

// target is one request the attack sends; next is called per request, so a
// write can cycle through many ids.
type target struct {
	name   string
	srv    *server
	method string
	url    func(i uint64) string
	key    string
	body   []byte
	// bodyOf, when set, gives each request its own body (fresh event ids).
	bodyOf func(i uint64) []byte
	status int
	// rate paces the requests (per second) instead of sending the next as
	// soon as a worker is free; 0 is as fast as possible.
	rate int
	// script makes the requests under -generator wrk (nil: a GET of url).
	script *wrkScript
}

// attack drives tg at a fixed number of concurrent requests (workers that
// each wait for their response before sending the next) for d, and
// summarises it. The body is not kept: only status and latency matter.
func attack(tg target, concurrency int, d time.Duration) Row {
	var n atomic.Uint64
	hdr := http.Header{"Authorization": {"Bearer " + tg.key}}
	if tg.body != nil || tg.bodyOf != nil {
		hdr.Set("Content-Type", "application/json")
	}
	targeter := func(t *vegeta.Target) error {
		i := n.Add(1) - 1
		t.Method, t.URL, t.Header, t.Body = tg.method, tg.url(i), hdr, tg.body
		if tg.bodyOf != nil {
			t.Body = tg.bodyOf(i)
		}
		return nil
	}
	c := uint64(concurrency)
	atk := vegeta.NewAttacker(vegeta.Workers(c), vegeta.MaxWorkers(c), vegeta.Connections(concurrency),
		vegeta.KeepAlive(true), vegeta.MaxBody(0), vegeta.Timeout(30*time.Second))
	var m vegeta.Metrics
	bad := map[string]int{}
	rate := vegeta.Rate{}
	if tg.rate > 0 {
		rate = vegeta.Rate{Freq: tg.rate, Per: time.Second}
	}
	for res := range atk.Attack(targeter, rate, d, tg.name) {
		m.Add(res)
		if int(res.Code) != tg.status {
			k := fmt.Sprint(res.Code)
			if res.Error != "" && res.Code == 0 {
				k = res.Error
			}
			bad[k]++
		}
	}
	m.Close()
	return Row{Name: tg.name, RPS: m.Rate, P50: m.Latencies.P50, P99: m.Latencies.P99, Errors: describeErrors(bad), Requests: m.Requests}
}

func describeErrors(bad map[string]int) string {
	if len(bad) == 0 {
		return ""
	}
	var parts []string
	for k, v := range bad {
		parts = append(parts, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
