package loadtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/replyrocket/replyrocket/internal/apikey"
)

// The SQL pgbench runs: the sqlc statements of queries/ with pgbench's
// :variables for sqlc's @parameters (a test checks they are the same
// statements). Under -M prepared the variables are bound parameters, as
// pgx binds them.
const (
	pgbenchCampaign = "GetCampaign"
	pgbenchKeyAnd   = "GetAPIKeyByHash + GetCampaign"
	pgbenchSummary  = "GetCampaignSummary"

	sqlGetCampaign = `SELECT id, user_id, name, status, created_at, updated_at
FROM campaigns
WHERE id = :id AND user_id = :user_id;`
	sqlGetAPIKeyByHash = `SELECT k.id, k.user_id, k.rate_limit_per_minute
FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.key_hash = :key_hash
  AND k.revoked_at IS NULL
  AND u.is_active;`
	sqlGetCampaignSummary = `SELECT n.total, n.opened, n.replied, n.sent, n.bounced, n.failed
FROM campaigns c
JOIN campaign_email_counts n ON n.campaign_id = c.id
WHERE c.id = :campaign_id AND c.user_id = :user_id;`
)

func pgbenchScripts(ds dataset) []pgbenchScript {
	h := apikey.Hash(ds.key)
	vars := map[string]string{
		"id": ds.campaignID.String(), "campaign_id": ds.campaignID.String(),
		"user_id": ds.userID.String(), "key_hash": `\x` + hex.EncodeToString(h[:]),
	}
	return []pgbenchScript{
		{name: pgbenchCampaign, sql: sqlGetCampaign, vars: vars},
		{name: pgbenchKeyAnd, sql: sqlGetAPIKeyByHash + "\n" + sqlGetCampaign, vars: vars},
		{name: pgbenchSummary, sql: sqlGetCampaignSummary, vars: vars},
	}
}

// profile collects an app instance's profiles while a scenario of
// length d runs: CPU, mutex and block over the run, then heap and allocs.
// The returned function waits for them and writes them into dir.
func profile(ctx context.Context, s *server, adminKey, dir string, d time.Duration) func() error {
	secs := strconv.Itoa(max(1, int(d/time.Second)-1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	get := func(name, path string) {
		defer wg.Done()
		b, err := fetch(ctx, s.url(path), adminKey)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			mu.Lock()
			firstErr = cmpErr(firstErr, fmt.Errorf("profile %s: %w", name, err))
			mu.Unlock()
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return func() error { return err }
	}
	wg.Add(3)
	go get("cpu.pb.gz", "/debug/pprof/profile?seconds="+secs)
	go get("mutex.pb.gz", "/debug/pprof/mutex?seconds="+secs)
	go get("block.pb.gz", "/debug/pprof/block?seconds="+secs)
	return func() error {
		wg.Wait()
		wg.Add(2)
		get("heap.pb.gz", "/debug/pprof/heap")
		get("allocs.pb.gz", "/debug/pprof/allocs")
		return firstErr
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// memReport is the memory of the app instances, read from /proc.
type memReport struct {
	restCached, restUncached int64 // after start, before any load
	loadCached, loadUncached int64 // highest while the scenarios ran
	steadyCached             int64 // right after the scenarios
	steadyUncached           int64
	goUncached               map[string]int64 // the Go runtime's view after the load
	bulk                     time.Duration
	afterBulk                int64 // right after a 10 000-email bulk insert
	afterBulkSettled         int64 // after Settle
	l1Bytes                  int64 // the L1 cache's bytes at the end
	l1Max                    string
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func printReport(out io.Writer, o Options, ds dataset, poolMax int, order []string, rows map[string]Row, m memReport) {
	gen := o.Generator
	if gen == "" {
		gen = GeneratorVegeta
	}
	per := o.Duration.String()
	if o.Rounds > 1 {
		per = fmt.Sprintf("%d rounds of %s (summed; p50 and p99 the worst round's)", o.Rounds, o.Duration)
	}
	fmt.Fprintf(out, "\nReplyRocket loadtest: %d emails (seeded in %s), %d concurrent requests, %s per scenario, app pool %d connections, pgbench -M prepared -c %d, GETs driven by %s\n\n",
		ds.emails, ds.seedTime.Round(time.Millisecond), o.Concurrency, per, poolMax, poolMax, gen)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trps\tp50 ms\tp99 ms\tserver CPU µs/req\tdb CPU µs/req\tratio\tof\terrors\t")
	for _, name := range order {
		r := rows[name]
		rt := ""
		if r.Limit != "" {
			rt = fmt.Sprintf("%.2f", r.Ratio)
		}
		errs := r.Errors
		if errs == "" {
			errs = "-"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", r.Name, r.RPS, ms(r.P50), ms(r.P99),
			r.ClientCPU.Microseconds(), r.DBCPU.Microseconds(), rt, r.Limit, errs)
	}
	_ = tw.Flush()
	for _, name := range order {
		for _, a := range rows[name].Also {
			fmt.Fprintf(out, "also %s\n", a)
		}
	}
	fmt.Fprintln(out, "\nserver CPU: of the process that answered (the app, the bare server; pgbench itself on pgbench rows); db CPU: of all PostgreSQL processes.")
	fmt.Fprintln(out)
	fmt.Fprintf(out, "memory (RSS from /proc; the uncached instance runs with CACHE_DISABLED=true, its L1 holding only API-key lookups):\n")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  \tcached\tuncached\t\n")
	fmt.Fprintf(tw, "  at rest\t%s\t%s\t\n", mib(m.restCached), mib(m.restUncached))
	fmt.Fprintf(tw, "  under load (peak)\t%s\t%s\t\n", mib(m.loadCached), mib(m.loadUncached))
	fmt.Fprintf(tw, "  after the load\t%s\t%s\t\n", mib(m.steadyCached), mib(m.steadyUncached))
	if m.afterBulk > 0 {
		fmt.Fprintf(tw, "  right after a 10 000-email bulk insert (%s)\t\t%s\t\n", m.bulk.Round(time.Millisecond), mib(m.afterBulk))
		fmt.Fprintf(tw, "  settled after it\t\t%s\t\n", mib(m.afterBulkSettled))
	}
	_ = tw.Flush()
	if m.goUncached != nil {
		fmt.Fprintf(out, "  Go runtime of the uncached instance after the load:")
		for _, n := range goMemory {
			fmt.Fprintf(out, " %s %s", strings.TrimSuffix(strings.TrimPrefix(n, "go_memstats_"), "_bytes"), mib(m.goUncached[n]))
		}
		fmt.Fprintln(out)
	}
	max := m.l1Max
	if max == "" {
		max = "67108864 (the default)"
	}
	fmt.Fprintf(out, "  L1 share under load: %s (cached minus uncached peak: the data entries and the GC headroom they add; both instances build the tier), %s of entries held at the end; CACHE_L1_MAX_BYTES %s\n",
		mib(m.loadCached-m.loadUncached), mib(m.l1Bytes), max)
}
