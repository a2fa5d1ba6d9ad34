package loadtest

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/internal/pglocal"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// TestMain lets this test binary be the benchmark's own children: Run
// starts Options.Exe with ChildArgs(role), as the real binary does.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == ChildArgs("")[0] {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := RunChild(ctx, os.Args[2], os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The SQL pgbench runs is the SQL the app runs: each constant is its sqlc
// statement in queries/ with :name for @name.
func TestPgbenchSQLIsTheAppSQL(t *testing.T) {
	cases := []struct {
		file, name, sql string
	}{
		{"campaigns.sql", "GetCampaign", sqlGetCampaign},
		{"api_keys.sql", "GetAPIKeyByHash", sqlGetAPIKeyByHash},
		{"stats.sql", "GetCampaignSummary", sqlGetCampaignSummary},
	}
	space := regexp.MustCompile(`\s+`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "queries", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			stmt := statement(string(b), tc.name)
			if stmt == "" {
				t.Fatalf("no query %s in %s", tc.name, tc.file)
			}
			want := space.ReplaceAllString(regexp.MustCompile(`@(\w+)`).ReplaceAllString(stmt, ":$1"), " ")
			got := space.ReplaceAllString(tc.sql, " ")
			if got != want {
				t.Fatalf("pgbench runs\n  %s\nthe app runs\n  %s", got, want)
			}
		})
	}
}

// statement returns the SQL of the named query: the lines after its
// "-- name:" line that are not comments, up to the semicolon.
func statement(file, name string) string {
	_, rest, ok := strings.Cut(file, "-- name: "+name+" ")
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.Split(rest, "\n")[1:] {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line + "\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			break
		}
	}
	return strings.TrimSpace(b.String())
}

func TestPgbenchLatencies(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "x-log")
	// Two threads' logs: client, transaction, latency µs, script, epoch, µs.
	if err := os.WriteFile(prefix+".1", []byte("0 1 300 0 1700000000 1\n0 2 100 0 1700000000 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prefix+".1.1", []byte("1 1 200 0 1700000000 3\n1 2 5000 0 1700000000 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lat, err := pgbenchLatencies(prefix)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{{0.5, 200 * time.Microsecond}, {0.99, 5 * time.Millisecond}, {0.25, 100 * time.Microsecond}}
	for _, tc := range cases {
		if got := quantile(lat, tc.q); got != tc.want {
			t.Errorf("quantile %.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
	if _, err := pgbenchLatencies(filepath.Join(dir, "none")); err == nil {
		t.Fatal("no error for missing logs")
	}
}

func TestReferenceHandler(t *testing.T) {
	h := ReferenceHandler("k1", []byte(`{"id":1}`))
	cases := []struct {
		auth   string
		status int
		body   string
	}{
		{"Bearer k1", 200, `{"id":1}`},
		{"Bearer k2", 401, ""},
		{"", 401, ""},
	}
	for _, tc := range cases {
		req := httptest.NewRequest("GET", "/api/v1/campaigns/x", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%q: %d %q, want %d %q", tc.auth, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
}

func TestHelpers(t *testing.T) {
	env := mergeEnv([]string{"A=1", "B=2", "PATH=/bin"}, map[string]string{"B": "3", "C": "4"})
	got := strings.Join(env, " ")
	for _, want := range []string{"A=1", "B=3", "C=4", "PATH=/bin"} {
		if !strings.Contains(got, want) {
			t.Errorf("merged env %q lacks %s", got, want)
		}
	}
	if strings.Contains(got, "B=2") {
		t.Errorf("merged env %q keeps the overridden B=2", got)
	}
	for _, tc := range []struct {
		only, name string
		want       bool
	}{
		{"", "anything", true},
		{"cached", "campaign by id, cached", true},
		{"bare, pgbench", "pgbench: GetCampaign", true},
		{"summary", "campaign by id, cached", false},
	} {
		if got := selected(tc.only, tc.name); got != tc.want {
			t.Errorf("selected(%q, %q) = %v", tc.only, tc.name, got)
		}
	}
	for n, want := range map[int64]string{1_000_000: "1M", 10_000_000: "10M", 200_000: "200k", 1234: "1234"} {
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%d) = %s, want %s", n, got, want)
		}
	}
}

// TestRunShort runs the whole benchmark briefly on a tiny dataset: every
// scenario answers with its expected status, pgbench (when installed) and
// the memory figures are reported.
func TestRunShort(t *testing.T) {
	if _, err := pglocal.BinDir(); err != nil {
		if pgtest.Strict() {
			t.Fatalf("no PostgreSQL binaries (REPLYROCKET_TEST_STRICT=1): %v", err)
		}
		t.Skipf("no PostgreSQL binaries: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out, log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = Run(ctx, Options{
		Exe: exe, Concurrency: 4, Duration: 300 * time.Millisecond,
		Users: 2, CampaignsPerUser: 2, EmailsPerCampaign: 20, Months: 2,
		Env: map[string]string{"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "2"}, Getenv: os.Getenv,
		Settle: -1, Log: &log, Rounds: 2,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	report := out.String()
	for _, want := range []string{
		"2 rounds of 300ms", "also campaign by id, cached: server CPU per request at ", "round by round",
		"bare net/http, same bytes", "campaign by id, cached", "campaign by id, uncached", "summary, cached",
		"summary, uncached", "list page, uncached", "open (write), cached instance",
		"at rest", "under load (peak)", "after a 10 000-email bulk insert", "L1 share under load", "app pool 3 connections",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "×") {
		t.Errorf("some requests failed:\n%s", report)
	}
	if _, err := exec.LookPath("pgbench"); err == nil {
		for _, want := range []string{"pgbench: GetCampaign", "also campaign by id, uncached: "} {
			if !strings.Contains(report, want) {
				t.Errorf("pgbench is installed but the report lacks %q:\n%s", want, report)
			}
		}
	}
}

// A short events benchmark end to end: every scenario in the table, no
// failed request, new events recorded, and the paced phase's hit rate
// reported apart for the campaigns it writes to and the others. It runs
// under wrk when wrk is installed (as in CI), the light generator's path.
func TestRunEventsShort(t *testing.T) {
	if _, err := pglocal.BinDir(); err != nil {
		if pgtest.Strict() {
			t.Fatalf("no PostgreSQL binaries (REPLYROCKET_TEST_STRICT=1): %v", err)
		}
		t.Skipf("no PostgreSQL binaries: %v", err)
	}
	if _, err := exec.LookPath("pgbench"); err != nil {
		if pgtest.Strict() {
			t.Fatal("pgbench is not on PATH (REPLYROCKET_TEST_STRICT=1): the events benchmark needs its reference")
		}
		t.Skip("pgbench is not on PATH: the events benchmark needs its reference")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gen := GeneratorVegeta
	if _, err := exec.LookPath("wrk"); err == nil {
		gen = GeneratorWrk
	}
	var out, log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = RunEvents(ctx, EventsOptions{
		Exe: exe, Concurrency: 4, Duration: time.Second, Campaigns: 4, PerCampaign: 20,
		BulkSizes: []int{3}, PacedRate: 50, ReadRate: 50, Generator: gen, Getenv: os.Getenv, Log: &log,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	report := out.String()
	for _, want := range []string{
		"driven by " + gen, "single events (80 % opened, 20 % replied)", "bulk events (3 per request)",
		"pgbench: one-row UPDATE emails", "single events paced at 50/s",
		"of the 2 campaigns receiving events", "of the 2 receiving none",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if m := regexp.MustCompile(`event ids recorded \(new events, each applied to its email\): (\d+)`).FindStringSubmatch(report); m == nil || m[1] == "0" {
		t.Errorf("no events recorded:\n%s", report)
	}
	// The errors column reads "none" on every scenario's line.
	for _, line := range strings.Split(report, "\n") {
		if (strings.HasPrefix(line, "single events") || strings.HasPrefix(line, "bulk events") ||
			strings.HasPrefix(line, "pgbench")) && !strings.Contains(line, "  none") {
			t.Errorf("some requests failed: %s", line)
		}
	}
}

// TestRowAdd: rounds sum by requests and time; CPU is per request over
// all of them; percentiles are the worse round's.
func TestRowAdd(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		a, b Row
		want Row
	}{
		{
			name: "two rounds",
			a:    Row{Name: "x", RPS: 1000, Requests: 4000, P50: 1 * ms, P99: 5 * ms, ClientCPU: 30 * time.Microsecond, DBCPU: 10 * time.Microsecond, RoundCPU: []time.Duration{30 * time.Microsecond}},
			b:    Row{Name: "x", RPS: 3000, Requests: 12000, P50: 2 * ms, P99: 4 * ms, ClientCPU: 50 * time.Microsecond, RoundCPU: []time.Duration{50 * time.Microsecond}, Errors: "3× 500"},
			want: Row{Name: "x", RPS: 2000, Requests: 16000, P50: 2 * ms, P99: 5 * ms, ClientCPU: 45 * time.Microsecond, DBCPU: 2500 * time.Nanosecond, RoundCPU: []time.Duration{30 * time.Microsecond, 50 * time.Microsecond}, Errors: "3× 500"},
		},
		{
			name: "an empty round",
			a:    Row{RPS: 10, Requests: 10, ClientCPU: time.Microsecond},
			b:    Row{},
			want: Row{RPS: 10, Requests: 10, ClientCPU: time.Microsecond},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.a.add(tc.b)
			if got.RPS != tc.want.RPS || got.Requests != tc.want.Requests || got.P50 != tc.want.P50 || got.P99 != tc.want.P99 ||
				got.ClientCPU != tc.want.ClientCPU || got.DBCPU != tc.want.DBCPU || got.Errors != tc.want.Errors || len(got.RoundCPU) != len(tc.want.RoundCPU) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
