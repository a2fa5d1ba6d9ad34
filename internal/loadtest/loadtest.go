// Package loadtest is the load benchmark of cmd/loadtest: it starts the server on an
// embedded PostgreSQL with a generated dataset, drives it at a fixed
// concurrency with vegeta (as a library), runs pgbench on the same SQL and
// a bare net/http server writing the same bytes beside it, and prints
// throughput, latency, the ratios to those limits and the servers' memory.
// Everything listens on loopback, and every phase is bounded in time.
package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/migrate"
	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/seed"
)

// Environment of the reference child: the key it accepts and the bytes it
// writes.
const (
	EnvReferenceKey  = "REPLYROCKET_LOADTEST_KEY"
	EnvReferenceBody = "REPLYROCKET_LOADTEST_BODY"
	// EnvReferencePprof "true" serves the reference's profiles (-profile).
	EnvReferencePprof = "REPLYROCKET_LOADTEST_PPROF"
)

// Options shape a run.
type Options struct {
	// Exe is this binary; children are started as Exe with ChildArgs.
	Exe string
	// Concurrency is the number of requests in flight (vegeta workers, one
	// keep-alive connection each).
	Concurrency int
	// Duration of each measured scenario; Warmup runs before each, unmeasured.
	Duration, Warmup time.Duration
	// Dataset: users × campaigns per user × emails per campaign over Months.
	Users, CampaignsPerUser, EmailsPerCampaign, Months int
	// Env is given to the app instances on top of this process's
	// environment (APP_ENV=prod unless set); pool variables set here also
	// size pgbench's clients.
	Env map[string]string
	// Getenv reads this process's environment (os.Getenv).
	Getenv func(string) string
	// ProfileDir, when set, receives CPU, heap, allocs, mutex and block
	// profiles of each app instance during its campaign-by-id run, in
	// ProfileDir/cached and ProfileDir/uncached, and of the bare server
	// during its run, in ProfileDir/bare.
	ProfileDir string
	// Only, when set, runs only the scenarios whose names contain it
	// (comma-separated), for quick iterations.
	Only string
	// Settle is how long to wait after the bulk insert before reading the
	// memory again (5 s when zero; negative for none).
	Settle time.Duration
	// Rounds runs the selected scenarios this many times in turn (1 when
	// zero) and sums each one's rounds: on a machine whose speed drifts
	// over minutes, a reference and the row read against it are then
	// measured over the same stretch of time, interleaved.
	Rounds int
	// Generator drives the GET scenarios: GeneratorVegeta (in process, the
	// default) or GeneratorWrk (a light generator in its own process; the
	// open scenario stays on vegeta).
	Generator string
	// Log receives progress lines.
	Log io.Writer
}

// Run does the whole benchmark and writes the report to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	dir, err := mkTemp()
	if err != nil {
		return err
	}
	defer removeAll(dir)
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "loadtest: "+format+"\n", args...) }

	logf("starting PostgreSQL in %s", dir)
	cluster, url, pgPID, err := startBenchDatabase(ctx, dir)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	ds, err := seedDataset(ctx, url, o, logf)
	if err != nil {
		return err
	}

	// The load measures the request path, not the per-key budget, which
	// would answer most of it with 429 (-env RATE_LIMIT_DISABLED=false
	// measures it with the limit).
	appEnv := map[string]string{"APP_ENV": "prod", "DATABASE_URL": url, "PORT": "0", "ADMIN_API_KEY": ds.adminKey, "RATE_LIMIT_DISABLED": "true"}
	for k, v := range o.Env {
		appEnv[k] = v
	}
	cfg, err := config.Load(func(k string) string {
		if v, ok := appEnv[k]; ok {
			return v
		}
		return o.Getenv(k)
	})
	if err != nil {
		return err
	}
	poolMax := cfg.DB.PoolSize + cfg.DB.MaxOverflow

	cachedEnv := maps.Clone(appEnv)
	uncachedEnv := maps.Clone(appEnv)
	// The uncached instance is CACHE_DISABLED as deployed: every data read
	// goes to PostgreSQL, and its in-process tier holds only the API-key
	// lookups (dbcache.AlwaysCached), which is what lets a read cost one
	// statement rather than two. (With CACHE_L1_DISABLED too and no Redis,
	// the key would be looked up in PostgreSQL on every request.)
	uncachedEnv["CACHE_DISABLED"] = "true"
	if o.ProfileDir != "" {
		cachedEnv["PPROF_ENABLED"] = "true"
		uncachedEnv["PPROF_ENABLED"] = "true"
	}
	cached, err := startServer(ctx, "app (cached)", o.Exe, ChildArgs(RoleApp), cachedEnv, filepath.Join(dir, "cached.log"))
	if err != nil {
		return err
	}
	defer cached.stop()
	uncached, err := startServer(ctx, "app (CACHE_DISABLED)", o.Exe, ChildArgs(RoleApp), uncachedEnv, filepath.Join(dir, "uncached.log"))
	if err != nil {
		return err
	}
	defer uncached.stop()
	for _, s := range []*server{cached, uncached} {
		if err := waitHealthy(ctx, s.url("/health/db"), 30*time.Second); err != nil {
			return err
		}
	}

	campaignPath := "/api/v1/campaigns/" + ds.campaignID.String()
	body, err := fetch(ctx, uncached.url(campaignPath), ds.key)
	if err != nil {
		return err
	}
	refEnv := map[string]string{EnvReferenceKey: ds.key, EnvReferenceBody: string(body)}
	if o.ProfileDir != "" {
		refEnv[EnvReferencePprof] = "true"
	}
	ref, err := startServer(ctx, "bare net/http", o.Exe, ChildArgs(RoleReference), refEnv, filepath.Join(dir, "reference.log"))
	if err != nil {
		return err
	}
	defer ref.stop()

	mem := memReport{}
	if mem.restCached, err = cached.rss(); err != nil {
		return err
	}
	if mem.restUncached, err = uncached.rss(); err != nil {
		return err
	}

	get := func(s *server, path string) func(uint64) string {
		u := s.url(path)
		return func(uint64) string { return u }
	}
	openURL := func(s *server) func(uint64) string {
		return func(i uint64) string {
			return s.url("/api/v1/emails/" + ds.emailIDs[i%uint64(len(ds.emailIDs))].String() + "/opened")
		}
	}
	summaryPath := campaignPath + "/summary"
	listPath := "/api/v1/campaigns?limit=20"
	scenarios := []target{
		{name: "bare net/http, same bytes", srv: ref, method: "GET", url: get(ref, campaignPath)},
		{name: "campaign by id, cached", srv: cached, method: "GET", url: get(cached, campaignPath)},
		{name: "campaign by id, uncached", srv: uncached, method: "GET", url: get(uncached, campaignPath)},
		{name: "summary, cached", srv: cached, method: "GET", url: get(cached, summaryPath)},
		{name: "summary, uncached", srv: uncached, method: "GET", url: get(uncached, summaryPath)},
		{name: "list page, uncached", srv: uncached, method: "GET", url: get(uncached, listPath)},
		{name: "open (write), cached instance", srv: cached, method: "POST", url: openURL(cached)},
	}
	// The scenarios whose instance is profiled under -profile, and the
	// sub-directory each one's profiles go to.
	// The bare server's profile is the floor the cached one is read against
	// (go tool pprof -diff_base bare/cpu.pb.gz -normalize cached/cpu.pb.gz).
	profiled := map[string]string{"bare net/http, same bytes": "bare", "campaign by id, cached": "cached", "campaign by id, uncached": "uncached"}
	rows := map[string]Row{}
	var order []string
	drive, err := generator(ctx, o.Generator)
	if err != nil {
		return err
	}
	peakCached, peakUncached := sampleRSS(cached, 50*time.Millisecond), sampleRSS(uncached, 50*time.Millisecond)
	for round := range max(o.Rounds, 1) {
		if o.Rounds > 1 {
			logf("round %d of %d", round+1, o.Rounds)
		}
		for _, sc := range scenarios {
			if !selected(o.Only, sc.name) {
				continue
			}
			r, err := measure(ctx, o, sc, ds, drive, pgPID, round == 0 && o.ProfileDir != "", profiled, logf)
			if err != nil {
				return err
			}
			if prev, ok := rows[sc.name]; ok {
				r = prev.add(r)
			} else {
				order = append(order, sc.name)
			}
			rows[sc.name] = r
		}
	}
	mem.loadCached, mem.loadUncached = peakCached.Peak(), peakUncached.Peak()
	if mem.steadyCached, err = cached.rss(); err != nil {
		return err
	}
	if mem.steadyUncached, err = uncached.rss(); err != nil {
		return err
	}
	if mem.goUncached, err = metrics(ctx, uncached, goMemory...); err != nil {
		return err
	}

	if bin, err := exec.LookPath("pgbench"); err != nil {
		logf("pgbench is not on PATH: no database limit in the table")
	} else {
		for _, s := range pgbenchScripts(ds) {
			if !selected(o.Only, "pgbench: "+s.name) {
				continue
			}
			logf("pgbench %s: %d clients (the API pool's size) for %s", s.name, poolMax, o.Duration)
			db0, err := postgresCPU(pgPID)
			if err != nil {
				return err
			}
			r, err := runPgbench(ctx, bin, url, dir, s, poolMax, o.Duration)
			if err != nil {
				return err
			}
			db1, err := postgresCPU(pgPID)
			if err != nil {
				return err
			}
			r.ClientCPU, r.DBCPU = perRequest(r.ClientCPU, r.Requests), perRequest(db1-db0, r.Requests)
			rows[r.Name] = r
			order = append(order, r.Name)
		}
	}

	if selected(o.Only, "bulk") {
		logf("bulk insert of 10 000 emails into the uncached instance")
		d, err := bulkInsert(ctx, uncached, ds, 10000)
		if err != nil {
			return err
		}
		mem.bulk = d
		if mem.afterBulk, err = uncached.rss(); err != nil {
			return err
		}
		settle := o.Settle
		if settle == 0 {
			settle = 5 * time.Second
		}
		time.Sleep(max(settle, 0))
		if mem.afterBulkSettled, err = uncached.rss(); err != nil {
			return err
		}
	}
	if mem.l1Bytes, err = l1Bytes(ctx, cached); err != nil {
		return err
	}
	mem.l1Max = o.Getenv("CACHE_L1_MAX_BYTES")
	if v, ok := o.Env["CACHE_L1_MAX_BYTES"]; ok {
		mem.l1Max = v
	}

	ratio(rows, "campaign by id, cached", "bare net/http, same bytes")
	cpuRatio(rows, "campaign by id, cached", "bare net/http, same bytes")
	// The uncached read runs one statement (GetCampaign; its key lookup is
	// cached), so its reference is pgbench of that statement; the pair it
	// ran before keys were cached under CACHE_DISABLED is stated beside it.
	ratio(rows, "campaign by id, uncached", "pgbench: "+pgbenchCampaign)
	alsoRatio(rows, "campaign by id, uncached", "pgbench: "+pgbenchKeyAnd)
	ratio(rows, "summary, uncached", "pgbench: "+pgbenchSummary)
	printReport(out, o, ds, poolMax, order, rows, mem)
	return nil
}

// measure runs one scenario once: its warmup, then o.Duration measured,
// with the serving process's and PostgreSQL's CPU per request (and its
// profiles into o.ProfileDir when withProfile and the scenario is one of
// profiled).
func measure(ctx context.Context, o Options, sc target, ds dataset, drive func(target, int, time.Duration) (Row, error), pgPID int, withProfile bool, profiled map[string]string, logf func(string, ...any)) (Row, error) {
	sc.key, sc.status = ds.key, http.StatusOK
	if o.Warmup > 0 {
		if _, err := drive(sc, o.Concurrency, o.Warmup); err != nil {
			return Row{}, err
		}
	}
	logf("%s: %d concurrent for %s", sc.name, o.Concurrency, o.Duration)
	var stopProfile func() error
	if sub, ok := profiled[sc.name]; ok && withProfile {
		stopProfile = profile(ctx, sc.srv, ds.adminKey, filepath.Join(o.ProfileDir, sub), o.Duration)
	}
	cpu0, err := cpuOf(sc.srv, pgPID)
	if err != nil {
		return Row{}, err
	}
	r, err := drive(sc, o.Concurrency, o.Duration)
	if err != nil {
		return Row{}, err
	}
	cpu1, err := cpuOf(sc.srv, pgPID)
	if err != nil {
		return Row{}, err
	}
	r.ClientCPU, r.DBCPU = perRequest(cpu1[0]-cpu0[0], r.Requests), perRequest(cpu1[1]-cpu0[1], r.Requests)
	r.RoundCPU = []time.Duration{r.ClientCPU}
	if stopProfile != nil {
		if err := stopProfile(); err != nil {
			return Row{}, err
		}
	}
	return r, nil
}

// generator returns what drives a scenario under -generator name.
func generator(ctx context.Context, name string) (func(target, int, time.Duration) (Row, error), error) {
	vegeta := func(tg target, c int, d time.Duration) (Row, error) { return attack(tg, c, d), nil }
	switch name {
	case "", GeneratorVegeta:
		return vegeta, nil
	case GeneratorWrk:
		bin, err := exec.LookPath("wrk")
		if err != nil {
			return nil, fmt.Errorf("-generator wrk: %w (apt-get install wrk)", err)
		}
		return func(tg target, c int, d time.Duration) (Row, error) {
			if tg.method != "GET" && tg.script == nil {
				return vegeta(tg, c, d)
			}
			return attackWrk(ctx, bin, tg, c, d)
		}, nil
	}
	return nil, fmt.Errorf("unknown generator %q: want %s or %s", name, GeneratorVegeta, GeneratorWrk)
}

// startBenchDatabase starts the durable PostgreSQL the load and events
// benchmarks measure, in dir/pg, and returns it with its postmaster's pid
// (for its CPU).
func startBenchDatabase(ctx context.Context, dir string) (*pglocal.Cluster, string, int, error) {
	cluster, url, err := startDatabase(ctx, pglocal.Options{DataDir: filepath.Join(dir, "pg"), Durable: true,
		Settings: map[string]string{"max_connections": "200"}})
	if err != nil {
		return nil, "", 0, err
	}
	pid, err := postmasterPID(cluster.DataDir)
	if err != nil {
		_ = cluster.Stop()
		return nil, "", 0, err
	}
	return cluster, url, pid, nil
}

// cpuOf is the CPU used so far by s and by PostgreSQL.
func cpuOf(s *server, pgPID int) ([2]time.Duration, error) {
	app, err := cpuTime(s.cmd.Process.Pid)
	if err != nil {
		return [2]time.Duration{}, err
	}
	pg, err := postgresCPU(pgPID)
	return [2]time.Duration{app, pg}, err
}

func perRequest(d time.Duration, n uint64) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

func mkTemp() (string, error) { return os.MkdirTemp("", "replyrocket-loadtest-") }

func removeAll(dir string) { _ = os.RemoveAll(dir) }

func selected(only, name string) bool {
	if only == "" {
		return true
	}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// alsoRatio states a row's rps against a second reference, after the
// table.
func alsoRatio(rows map[string]Row, name, limit string) {
	r, ok := rows[name]
	l, ok2 := rows[limit]
	if !ok || !ok2 || l.RPS == 0 {
		return
	}
	r.Also = append(r.Also, fmt.Sprintf("%s: %.2f of %s", name, r.RPS/l.RPS, limit))
	rows[name] = r
}

// cpuRatio states a row's server CPU per request against a reference's,
// after the table, and round by round under -rounds.
func cpuRatio(rows map[string]Row, name, limit string) {
	r, ok := rows[name]
	l, ok2 := rows[limit]
	if !ok || !ok2 || l.ClientCPU == 0 {
		return
	}
	line := fmt.Sprintf("%s: server CPU per request at %.2f of that of %s", name, float64(r.ClientCPU)/float64(l.ClientCPU), limit)
	if len(r.RoundCPU) > 1 && len(r.RoundCPU) == len(l.RoundCPU) {
		line += "; round by round"
		for i := range r.RoundCPU {
			line += fmt.Sprintf(" %.2f", float64(r.RoundCPU[i])/float64(l.RoundCPU[i]))
		}
	}
	r.Also = append(r.Also, line)
	rows[name] = r
}

func ratio(rows map[string]Row, name, limit string) {
	r, ok := rows[name]
	l, ok2 := rows[limit]
	if !ok || !ok2 || l.RPS == 0 {
		return
	}
	r.Limit, r.Ratio = limit, r.RPS/l.RPS
	rows[name] = r
}

// startDatabase starts an embedded PostgreSQL with o and returns it with the
// URL of its migrated "replyrocket" database; on failure nothing is left
// running.
func startDatabase(ctx context.Context, o pglocal.Options) (*pglocal.Cluster, string, error) {
	cluster, err := pglocal.Start(ctx, o)
	if err != nil {
		return nil, "", fmt.Errorf("start the embedded PostgreSQL: %w", err)
	}
	url, err := createDatabase(ctx, cluster, "replyrocket")
	if err == nil {
		err = migrate.Up(ctx, url)
	}
	if err != nil {
		_ = cluster.Stop()
		return nil, "", err
	}
	return cluster, url, nil
}

func createDatabase(ctx context.Context, c *pglocal.Cluster, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the embedded PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.URL(name), nil
}

// dataset is what the scenarios address: one user's key, one of its
// campaigns and some of its emails.
type dataset struct {
	key        string
	adminKey   string
	userID     uuid.UUID
	campaignID uuid.UUID
	emailIDs   []uuid.UUID
	emails     int64
	seedTime   time.Duration
}

func seedDataset(ctx context.Context, url string, o Options, logf func(string, ...any)) (dataset, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return dataset{}, fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()
	store := db.NewStore(pool, 30*time.Second)
	so := seed.Options{Users: o.Users, CampaignsPerUser: o.CampaignsPerUser, EmailsPerCampaign: o.EmailsPerCampaign, Months: o.Months, Workers: 2}
	logf("seeding %d users × %d campaigns × %d emails over %d months", so.Users, so.CampaignsPerUser, so.EmailsPerCampaign, so.Months)
	start := time.Now()
	res, err := seed.Run(ctx, store, pool, so)
	if err != nil {
		return dataset{}, err
	}
	ds := dataset{key: res.Users[0].Key, userID: res.Users[0].User.ID, emails: res.Emails, seedTime: time.Since(start), adminKey: "rr_admin_" + uuid.NewString()}
	if err := pool.QueryRow(ctx, "SELECT id FROM campaigns WHERE user_id = $1 ORDER BY created_at, id LIMIT 1", ds.userID).Scan(&ds.campaignID); err != nil {
		return dataset{}, fmt.Errorf("pick a campaign: %w", err)
	}
	rows, err := pool.Query(ctx, "SELECT e.id FROM emails e JOIN campaigns c ON c.id = e.campaign_id WHERE c.user_id = $1 LIMIT 20000", ds.userID)
	if err != nil {
		return dataset{}, fmt.Errorf("pick emails: %w", err)
	}
	if ds.emailIDs, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
		return dataset{}, fmt.Errorf("pick emails: %w", err)
	}
	if len(ds.emailIDs) == 0 {
		return dataset{}, fmt.Errorf("the dataset has no emails for the first user: raise -emails-per-campaign")
	}
	return ds, nil
}

// fetch GETs url with the key and returns the body of its 200.
func fetch(ctx context.Context, url, key string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, tail(b))
	}
	return b, nil
}

// bulkBody is a bulk-insert request of n generated emails of a few
// hundred bytes each.
func bulkBody(n int) ([]byte, error) {
	type email struct {
		Recipient string `json:"recipient"`
		Subject   string `json:"subject"`
		Body      string `json:"body"`
	}
	emails := make([]email, n)
	for i := range emails {
		emails[i] = email{
			Recipient: fmt.Sprintf("lead%d@example.com", i),
			Subject:   "Quick question about your outreach",
			Body:      strings.Repeat("Hi there, I noticed your team is growing. ", 8),
		}
	}
	return json.Marshal(map[string]any{"emails": emails})
}

// bulkInsert posts n generated emails to the first campaign in one request
// and returns how long it took.
func bulkInsert(ctx context.Context, s *server, ds dataset, n int) (time.Duration, error) {
	b, err := bulkBody(n)
	if err != nil {
		return 0, err
	}
	d, _, err := timed(ctx, http.DefaultClient, "POST", s.url("/api/v1/campaigns/"+ds.campaignID.String()+"/emails"), ds.key, b, http.StatusCreated)
	if err != nil {
		return 0, fmt.Errorf("bulk insert: %w", err)
	}
	return d, nil
}

// l1Bytes reads the cache's L1 size from the instance's /metrics.
func l1Bytes(ctx context.Context, s *server) (int64, error) {
	m, err := metrics(ctx, s, `replyrocket_cache_bytes{tier="l1"}`)
	if err != nil {
		return 0, err
	}
	return m[`replyrocket_cache_bytes{tier="l1"}`], nil
}

// goMemory is where the Go runtime's memory is, from /metrics.
var goMemory = []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes"}

// metrics reads the named samples of the instance's /metrics.
func metrics(ctx context.Context, s *server, names ...string) (map[string]int64, error) {
	b, err := fetch(ctx, s.url("/metrics"), "")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					return nil, fmt.Errorf("parse %s: %w", n, err)
				}
				out[n] = int64(f)
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in /metrics", n)
		}
	}
	return out, nil
}
