package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pgbenchScript is a custom pgbench script: SQL with pgbench's :variables.
type pgbenchScript struct {
	name string
	sql  string
	vars map[string]string // given with -D: strings, bound as parameters under -M prepared
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// runPgbench runs script with -M prepared (what pgx does: each statement
// is prepared once per connection) and clients connections for d, and reads
// each transaction's latency from pgbench's per-transaction log for p50 and
// p99. The URL is given to pgbench as its dbname argument (libpq accepts a
// URI there).
func runPgbench(ctx context.Context, bin, url, dir string, s pgbenchScript, clients int, d time.Duration) (Row, error) {
	script := filepath.Join(dir, strings.ReplaceAll(s.name, " ", "-")+".sql")
	if err := os.WriteFile(script, []byte(s.sql+"\n"), 0o644); err != nil {
		return Row{}, fmt.Errorf("write pgbench script: %w", err)
	}
	prefix := strings.TrimSuffix(script, ".sql") + "-log"
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", "2",
		"-T", strconv.Itoa(secs), "-f", script, "-l", "--log-prefix", prefix}
	keys := make([]string, 0, len(s.vars))
	for k := range s.vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "-D", k+"="+s.vars[k])
	}
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Row{}, fmt.Errorf("pgbench %s: %w: %s", s.name, err, tail(out))
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return Row{}, fmt.Errorf("pgbench %s: no tps in its output: %s", s.name, tail(out))
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	lat, err := pgbenchLatencies(prefix)
	if err != nil {
		return Row{}, err
	}
	// ClientCPU is pgbench's total here; the caller divides.
	return Row{Name: "pgbench: " + s.name, RPS: tps, P50: quantile(lat, 0.50), P99: quantile(lat, 0.99),
		Requests: uint64(len(lat)), ClientCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}

// pgbenchLatencies reads every per-transaction log file (one per thread):
// "client_id transaction_no time script_no time_epoch time_us", with time
// the latency in microseconds.
func pgbenchLatencies(prefix string) ([]time.Duration, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("pgbench wrote no transaction log at %s.*", prefix)
	}
	var lat []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("read pgbench log: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				continue
			}
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read pgbench log %s: %w", f, err)
		}
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("pgbench logged no transaction")
	}
	slices.Sort(lat)
	return lat, nil
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 800 {
		s = "…" + s[len(s)-800:]
	}
	return s
}
