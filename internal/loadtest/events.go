package loadtest

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EventsOptions shape the events benchmark (loadtest -events): tracking
// events posted to one app instance, one at a time and in bulk, beside
// pgbench running the one-row UPDATE an event was before group commit.
type EventsOptions struct {
	Exe                    string
	Concurrency            int
	Duration, Warmup       time.Duration
	Campaigns, PerCampaign int
	// BulkSizes are the events per POST /api/v1/events, one scenario each:
	// small requests keep few events in flight (latency), large ones
	// amortise a request over many (throughput).
	BulkSizes []int
	// PacedRate is the events per second of the cache phase, during which
	// a reader measures the summary's hit rate.
	PacedRate, ReadRate int
	// Generator drives the single and bulk scenarios: GeneratorVegeta (in
	// process) or GeneratorWrk (events.lua; the paced phase stays on
	// vegeta, which paces and wrk does not).
	Generator string
	// ProfileDir, when set, receives the app's CPU, heap, allocs, mutex and
	// block profiles during each scenario, in ProfileDir/single and
	// ProfileDir/bulk-N.
	ProfileDir string
	Env        map[string]string
	Getenv     func(string) string
	Log        io.Writer
}

// pgbenchEventSQL is the reference: the one-row update of an open,
// committed alone, as every open was before group commit. bench_ids maps
// pgbench's random integer to an email id.
const pgbenchEventSQL = `\set n random(1, :emails)
UPDATE emails e SET is_opened = true, opened_at = coalesce(e.opened_at, now())
FROM bench_ids b
WHERE b.n = :n AND e.id = b.id AND e.created_at = uuid7_time(b.id);`

// RunEvents runs the events benchmark and writes its table to out.
func RunEvents(ctx context.Context, o EventsOptions, out io.Writer) error {
	dir, err := mkTemp()
	if err != nil {
		return err
	}
	defer removeAll(dir)
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "loadtest: "+format+"\n", args...) }
	cluster, url, pgPID, err := startBenchDatabase(ctx, dir)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	ds, err := seedDataset(ctx, url, Options{Users: 1, CampaignsPerUser: o.Campaigns, EmailsPerCampaign: o.PerCampaign, Months: 1}, logf)
	if err != nil {
		return err
	}
	ids, campaigns, written, err := eventTargets(ctx, url, ds)
	if err != nil {
		return err
	}
	env := map[string]string{"APP_ENV": "prod", "DATABASE_URL": url, "PORT": "0", "ADMIN_API_KEY": ds.adminKey, "RATE_LIMIT_DISABLED": "true"}
	if o.ProfileDir != "" {
		env["PPROF_ENABLED"] = "true"
	}
	for k, v := range o.Env {
		env[k] = v
	}
	app, err := startServer(ctx, "app", o.Exe, ChildArgs(RoleApp), env, filepath.Join(dir, "app.log"))
	if err != nil {
		return err
	}
	defer app.stop()
	if err := waitHealthy(ctx, app.url("/health/db"), 30*time.Second); err != nil {
		return err
	}

	drive, err := generator(ctx, o.Generator)
	if err != nil {
		return err
	}
	single := target{name: "single events (80 % opened, 20 % replied)", srv: app, method: "POST", key: ds.key, status: http.StatusOK,
		url: singleEvent(app, ids)}
	// per is the events per request of each scenario (1 for single), and
	// profileDirs where its profiles go under -profile.
	targets, per, profileDirs := []target{single}, []int{1}, []string{"single"}
	for _, n := range o.BulkSizes {
		targets = append(targets, target{name: fmt.Sprintf("bulk events (%d per request)", n), srv: app, method: "POST", key: ds.key,
			status: http.StatusOK, url: func(uint64) string { return app.url("/api/v1/events") }, bodyOf: bulkEvents(ids, n)})
		per = append(per, n)
		profileDirs = append(profileDirs, fmt.Sprintf("bulk-%d", n))
	}
	if o.Generator == GeneratorWrk {
		if err := scriptEvents(dir, ids, targets, per); err != nil {
			return err
		}
	}
	var rows []Row
	for i, tg := range targets {
		if o.Warmup > 0 {
			if _, err := drive(tg, o.Concurrency, o.Warmup); err != nil {
				return err
			}
		}
		logf("%s: %d concurrent for %s", tg.name, o.Concurrency, o.Duration)
		stopProfile := func() error { return nil }
		if o.ProfileDir != "" {
			stopProfile = profile(ctx, app, ds.adminKey, filepath.Join(o.ProfileDir, profileDirs[i]), o.Duration)
		}
		cpu0, err := cpuOf(app, pgPID)
		if err != nil {
			return err
		}
		r, err := drive(tg, o.Concurrency, o.Duration)
		if err != nil {
			return err
		}
		cpu1, err := cpuOf(app, pgPID)
		if err != nil {
			return err
		}
		// After the CPU reading, as measure does: the heap and allocs
		// profiles it fetches then are not the scenario's work.
		if err := stopProfile(); err != nil {
			return err
		}
		events := r.Requests * uint64(per[i])
		if per[i] > 1 {
			r.Comment = fmt.Sprintf("%.0f requests/s, %d events in flight", r.RPS, o.Concurrency*per[i])
			r.RPS *= float64(per[i])
		}
		r.ClientCPU, r.DBCPU = perRequest(cpu1[0]-cpu0[0], events), perRequest(cpu1[1]-cpu0[1], events)
		rows = append(rows, r)
	}

	bin, err := exec.LookPath("pgbench")
	if err != nil {
		return fmt.Errorf("pgbench is not on PATH: the events benchmark needs its reference")
	}
	logf("pgbench one-row UPDATE: %d clients for %s", o.Concurrency, o.Duration)
	db0, err := postgresCPU(pgPID)
	if err != nil {
		return err
	}
	ref, err := runPgbench(ctx, bin, url, dir, pgbenchScript{name: "one-row UPDATE emails, one commit each", sql: pgbenchEventSQL,
		vars: map[string]string{"emails": strconv.Itoa(len(ids))}}, o.Concurrency, o.Duration)
	if err != nil {
		return err
	}
	db1, err := postgresCPU(pgPID)
	if err != nil {
		return err
	}
	ref.ClientCPU, ref.DBCPU = perRequest(ref.ClientCPU, ref.Requests), perRequest(db1-db0, ref.Requests)
	for i := range rows {
		rows[i].Limit, rows[i].Ratio = ref.Name, rows[i].RPS/ref.RPS
	}
	rows = append(rows, ref)

	logf("cache: %d single events/s for %s while %d summary reads/s run", o.PacedRate, o.Duration, o.ReadRate)
	// The paced events go to the emails of half the campaigns and the reads
	// to all of them: scoped invalidation should keep the other half's
	// summaries cached whatever the event rate.
	paced := single
	paced.name, paced.rate = fmt.Sprintf("single events paced at %d/s", o.PacedRate), o.PacedRate
	paced.url = singleEvent(app, written.emails)
	hits, r := readWhile(ctx, app, ds.key, campaigns, written.campaigns, o.ReadRate, func() Row { return attack(paced, o.Concurrency, o.Duration) })
	r.Comment = fmt.Sprintf("summary hit rate %s of the %d campaigns receiving events, %s of the %d receiving none",
		hits.rate(true), len(written.campaigns), hits.rate(false), len(campaigns)-len(written.campaigns))
	rows = append(rows, r)

	recorded, err := countRows(ctx, url, "SELECT count(*) FROM email_events")
	if err != nil {
		return err
	}
	printEvents(out, o, len(ids), recorded, rows)
	return nil
}

// singleEvent makes the single-event routes' URLs: a random email of ids,
// opened four times in five and replied the fifth.
func singleEvent(app *server, ids []uuid.UUID) func(uint64) string {
	return func(i uint64) string {
		kind := "opened"
		if i%5 == 4 {
			kind = "replied"
		}
		return app.url("/api/v1/emails/" + ids[rand.IntN(len(ids))].String() + "/" + kind)
	}
}

//go:embed events.lua
var eventsLua []byte

// scriptEvents gives the targets their wrk script: events.lua and the
// email ids it picks from, written into dir; per is each target's events
// per request (1 is the single-event routes).
func scriptEvents(dir string, ids []uuid.UUID, targets []target, per []int) error {
	script, idsFile := filepath.Join(dir, "events.lua"), filepath.Join(dir, "event-ids.txt")
	lines := make([]string, len(ids))
	for i, id := range ids {
		lines[i] = id.String()
	}
	if err := os.WriteFile(script, eventsLua, 0o644); err != nil {
		return fmt.Errorf("wrk script: %w", err)
	}
	if err := os.WriteFile(idsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("wrk script's ids: %w", err)
	}
	for i := range targets {
		n := per[i]
		if n == 1 && targets[i].bodyOf == nil {
			n = 0 // the single-event routes
		}
		targets[i].script = &wrkScript{path: script, args: func() []string {
			return []string{idsFile, strconv.Itoa(n), fmt.Sprintf("%08x", rand.Uint32()), time.Now().UTC().Format(time.RFC3339)}
		}}
	}
	return nil
}

// halfWritten is the half of the user's campaigns the paced phase sends
// events to, and their emails.
type halfWritten struct {
	campaigns map[uuid.UUID]bool
	emails    []uuid.UUID
}

// eventTargets stores the user's email ids for pgbench (bench_ids) and
// returns them with the user's campaigns and the half the paced phase
// writes to.
func eventTargets(ctx context.Context, url string, ds dataset) (ids, campaigns []uuid.UUID, written halfWritten, err error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, nil, written, err
	}
	defer pool.Close()
	for _, sql := range []string{`CREATE TABLE bench_ids AS
		SELECT row_number() OVER (ORDER BY e.id)::int AS n, e.id
		FROM emails e JOIN campaigns c ON c.id = e.campaign_id WHERE c.user_id = '` + ds.userID.String() + `'`,
		"ALTER TABLE bench_ids ADD PRIMARY KEY (n)", "ANALYZE bench_ids, emails"} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			return nil, nil, written, fmt.Errorf("bench_ids: %w", err)
		}
	}
	if ids, err = queryIDs(ctx, pool, "SELECT id FROM bench_ids ORDER BY n"); err != nil {
		return nil, nil, written, err
	}
	if campaigns, err = queryIDs(ctx, pool, "SELECT id FROM campaigns WHERE user_id = $1 ORDER BY id", ds.userID); err != nil {
		return nil, nil, written, err
	}
	half := campaigns[:max(1, len(campaigns)/2)]
	written.campaigns = map[uuid.UUID]bool{}
	for _, c := range half {
		written.campaigns[c] = true
	}
	written.emails, err = queryIDs(ctx, pool, "SELECT id FROM emails WHERE campaign_id = ANY($1)", half)
	return ids, campaigns, written, err
}

func queryIDs(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) ([]uuid.UUID, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// bulkEvents makes each request's body: n events of random emails, each
// with a fresh id, 80 % opened and 20 % replied.
func bulkEvents(ids []uuid.UUID, n int) func(uint64) []byte {
	type ev struct {
		ID      uuid.UUID `json:"id"`
		EmailID uuid.UUID `json:"email_id"`
		Kind    string    `json:"kind"`
		At      time.Time `json:"at"`
	}
	return func(uint64) []byte {
		evs := make([]ev, n)
		now := time.Now().UTC()
		for i := range evs {
			kind := "opened"
			if i%5 == 4 {
				kind = "replied"
			}
			evs[i] = ev{ID: uuid.New(), EmailID: ids[rand.IntN(len(ids))], Kind: kind, At: now}
		}
		b, _ := json.Marshal(map[string]any{"events": evs})
		return b
	}
}

// hitCount counts the summary reads and the cache's answers among them,
// apart for campaigns receiving events ([true]) and the others ([false]).
type hitCount struct{ hits, reads [2]atomic.Int64 }

func (h *hitCount) add(written, hit bool) {
	i := 0
	if written {
		i = 1
	}
	h.reads[i].Add(1)
	if hit {
		h.hits[i].Add(1)
	}
}

// rate is "61.2 % of 480 reads" for one kind of campaign.
func (h *hitCount) rate(written bool) string {
	i := 0
	if written {
		i = 1
	}
	n := h.reads[i].Load()
	return fmt.Sprintf("%.1f %% of %d reads", 100*float64(h.hits[i].Load())/float64(max(n, 1)), n)
}

// readWhile reads random campaigns' summaries at rate per second while
// load runs, and counts the cache's answers (X-Cache: hit or stale).
func readWhile(ctx context.Context, s *server, key string, campaigns []uuid.UUID, written map[uuid.UUID]bool, rate int, load func() Row) (*hitCount, Row) {
	var hc hitCount
	client := &http.Client{Timeout: 5 * time.Second}
	read := func(c uuid.UUID) (hit, ok bool) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/api/v1/campaigns/"+c.String()+"/summary"), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			return false, false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		xc := res.Header.Get("X-Cache")
		return xc == "hit" || xc == "stale", true
	}
	// Every summary is read once first, so the rate counts what writes
	// evict rather than a cold cache's first misses.
	for _, c := range campaigns {
		read(c)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			c := campaigns[rand.IntN(len(campaigns))]
			if hit, ok := read(c); ok {
				hc.add(written[c], hit)
			}
		}
	}()
	r := load()
	close(stop)
	wg.Wait()
	return &hc, r
}

func countRows(ctx context.Context, url, sql string) (int64, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	var n int64
	err = pool.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// cpu is a CPU time per event, "-" where it was not measured (the paced
// phase, whose CPU is shared with the reads).
func cpu(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Microsecond).String()
}

func printEvents(out io.Writer, o EventsOptions, emails int, recorded int64, rows []Row) {
	fmt.Fprintf(out, "\nevents: %d emails in %d campaigns, %d connections, %s per scenario (warm-up %s), driven by %s; GOMAXPROCS of a 2-core machine shared with other work\n\n",
		emails, o.Campaigns, o.Concurrency, o.Duration, o.Warmup, cmp.Or(o.Generator, GeneratorVegeta))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tevents/s\tp50 ms\tp99 ms\tserver CPU/event\tdb CPU/event\tvs\tratio\terrors\tnote")
	for _, r := range rows {
		ratio := ""
		if r.Limit != "" {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		errs := r.Errors
		if errs == "" {
			errs = "none"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.RPS, ms(r.P50), ms(r.P99),
			cpu(r.ClientCPU), cpu(r.DBCPU), r.Limit, ratio, errs, r.Comment)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nevent ids recorded (new events, each applied to its email): %d; the single-event routes' repeats of an (email, kind) are duplicates by id\n", recorded)
}
