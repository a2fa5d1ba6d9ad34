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
	// RoundCPU is ClientCPU in each round of a run with -rounds.
	RoundCPU []time.Duration
}

// add sums two runs of one scenario: their requests, durations and CPU.
// The percentiles are the higher of the two (a run's latencies are not
// kept, and the worse round is the honest one to state).
func (r Row) add(o Row) Row {
	n := r.Requests + o.Requests
	if n == 0 {
		return r
	}
	secs := 0.0
	for _, x := range []Row{r, o} {
		if x.RPS > 0 {
			secs += float64(x.Requests) / x.RPS
		}
	}
	avg := func(a, b time.Duration) time.Duration {
		return time.Duration((float64(a)*float64(r.Requests) + float64(b)*float64(o.Requests)) / float64(n))
	}
	sum := r
	sum.Requests = n
	if secs > 0 {
		sum.RPS = float64(n) / secs
	}
	sum.P50, sum.P99 = max(r.P50, o.P50), max(r.P99, o.P99)
	sum.ClientCPU, sum.DBCPU = avg(r.ClientCPU, o.ClientCPU), avg(r.DBCPU, o.DBCPU)
	sum.RoundCPU = append(append([]time.Duration(nil), r.RoundCPU...), o.RoundCPU...)
	if o.Errors != "" {
		sum.Errors = strings.TrimPrefix(r.Errors+"; "+o.Errors, "; ")
	}
	return sum
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
