package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Generators of load: vegeta in process (the default; every scenario) or
// wrk, a light C generator in its own process, for the GET scenarios and,
// through a Lua script, the events benchmark's posts. An
// in-process generator spends CPU on the same two cores as the servers it
// measures, which compresses the ratios between them; wrk spends a few
// times less per request.
const (
	GeneratorVegeta = "vegeta"
	GeneratorWrk    = "wrk"
)

// wrkThreads is wrk's -t: two threads drive the connections, as in the
// issue's measurement (wrk -t2 -c32 -d8s).
const wrkThreads = 2

// wrkScript makes a target's requests under wrk when they differ from one
// another (a POST whose body carries fresh event ids): a Lua script, and
// its arguments for one run (fresh each run, so a warm-up's ids are not
// the measured run's).
type wrkScript struct {
	path string
	args func() []string
}

// attackWrk drives a target with wrk at concurrency connections for d and
// summarises its report (wrk --latency). A target other than a GET needs
// its script; without one it is an error.
func attackWrk(ctx context.Context, bin string, tg target, concurrency int, d time.Duration) (Row, error) {
	if tg.method != "GET" && tg.script == nil {
		return Row{}, fmt.Errorf("wrk: %s is a %s without a script", tg.name, tg.method)
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t", strconv.Itoa(min(wrkThreads, concurrency)), "-c", strconv.Itoa(concurrency),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "30s", "--latency", "-H", "Authorization: Bearer " + tg.key}
	if tg.script != nil {
		args = append(args, "-s", tg.script.path, tg.url(0), "--")
		args = append(args, tg.script.args()...)
	} else {
		args = append(args, tg.url(0))
	}
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return Row{}, fmt.Errorf("wrk %s: %w", tg.name, err)
	}
	r, err := parseWrk(out)
	if err != nil {
		return Row{}, fmt.Errorf("wrk %s: %w\n%s", tg.name, err, out)
	}
	r.Name = tg.name
	return r, nil
}

var (
	wrkTotal   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),`)
	wrkNon2xx  = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`(?m)^\s*Socket errors: (.*)$`)
)

// parseWrk reads what the report needs from wrk's output: the request
// count over the measured time, the 50th and 99th percentiles of its
// latency distribution, and any responses that were not 2xx/3xx or socket
// errors.
func parseWrk(out []byte) (Row, error) {
	var r Row
	m := wrkTotal.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no request count in wrk's output")
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	elapsed, err := wrkDuration(string(m[2]) + string(m[3]))
	if err != nil || elapsed <= 0 {
		return r, fmt.Errorf("wrk's elapsed time %q: %v", m[2], err)
	}
	r.Requests, r.RPS = n, float64(n)/elapsed.Seconds()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "50%":
			r.P50, err = wrkDuration(f[1])
		case "99%":
			r.P99, err = wrkDuration(f[1])
		}
		if err != nil {
			return r, err
		}
	}
	if r.P99 == 0 {
		return r, fmt.Errorf("no latency distribution in wrk's output (--latency)")
	}
	var bad []string
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		bad = append(bad, string(m[1])+"× non-2xx")
	}
	if m := wrkSockErr.FindSubmatch(out); m != nil {
		bad = append(bad, "socket errors: "+string(m[1]))
	}
	r.Errors = strings.Join(bad, ", ")
	return r, nil
}

// wrkDuration reads wrk's units (us, ms, s, m), which are Go's.
func wrkDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }
