// Command loadtest is ReplyRocket's load benchmark: it starts the app on an
// embedded database with a generated dataset, drives it at fixed
// concurrency beside pgbench and a bare net/http server, and prints the
// table docs/performance.md shows. With -scale it is the scale benchmark
// instead; with -events the events benchmark (docs/writes.md).
//
// It is a command of its own, not a replyrocket subcommand, so that the
// server binary a newcomer builds first does not download and compile the
// load generator. It starts itself again (-role app|reference) for the
// servers it measures. Loopback only; every run is bounded in time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/replyrocket/replyrocket/internal/cli"
	"github.com/replyrocket/replyrocket/internal/loadtest"
)

const usage = `Usage: loadtest [flags]   (loadtest -h lists them)
`

func main() { cli.Main("loadtest", usage, run) }

// run parses args and runs the benchmark, or one of its children.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := loadtest.Options{Getenv: getenv, Log: stderr}
	var role, envList, scaleSizes, bulkSizes string
	var scale, events bool
	var scaleReps int
	eo := loadtest.EventsOptions{Getenv: getenv, Log: stderr}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.IntVar(&o.Concurrency, "c", 32, "requests in flight")
	fs.DurationVar(&o.Duration, "d", 8*time.Second, "measured duration of each scenario")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured run before each scenario")
	fs.IntVar(&o.Rounds, "rounds", 1, "run the scenarios this many times in turn and sum them: a reference and the row read against it then share the machine's drift")
	fs.IntVar(&o.Users, "users", 10, "seeded users")
	fs.IntVar(&o.CampaignsPerUser, "campaigns-per-user", 10, "seeded campaigns per user")
	fs.IntVar(&o.EmailsPerCampaign, "emails-per-campaign", 1000, "seeded emails per campaign")
	fs.IntVar(&o.Months, "months", 12, "months the emails are spread over")
	fs.StringVar(&envList, "env", "", "extra environment of the app instances, NAME=VALUE,… (e.g. DB_POOL_SIZE=8)")
	fs.StringVar(&o.ProfileDir, "profile", "", "write pprof profiles of each app instance's campaign-by-id run into DIR/cached and DIR/uncached, and of the bare server's run into DIR/bare; with -events, of the app during each scenario into DIR/single and DIR/bulk-N")
	fs.StringVar(&o.Generator, "generator", loadtest.GeneratorVegeta, "what drives the GET scenarios and -events' single and bulk posts: vegeta (in process) or wrk (a light generator in its own process, for the CPU ratios; the open scenario and the paced phase stay on vegeta)")
	fs.StringVar(&o.Only, "only", "", "run only the scenarios whose names contain one of these comma-separated words")
	fs.BoolVar(&scale, "scale", false, "run the scale benchmark instead (seeds millions of emails: minutes, gigabytes)")
	fs.StringVar(&scaleSizes, "scale-sizes", "1000000,10000000", "with -scale: total emails after each step")
	fs.IntVar(&scaleReps, "scale-reps", 200, "with -scale: sequential requests per read")
	fs.BoolVar(&events, "events", false, "run the events benchmark instead: single and bulk tracking events beside pgbench's one-row UPDATE, and the summary's hit rate while events flow")
	fs.IntVar(&eo.Campaigns, "event-campaigns", 50, "with -events: campaigns of the one user")
	fs.IntVar(&eo.PerCampaign, "event-emails", 2000, "with -events: emails per campaign")
	fs.StringVar(&bulkSizes, "bulk-sizes", "5,20,100", "with -events: events per bulk request, one scenario per size (1 to 1000)")
	fs.IntVar(&eo.PacedRate, "paced-rate", 2000, "with -events: single events per second while the summary's hit rate is measured")
	fs.IntVar(&eo.ReadRate, "read-rate", 200, "with -events: summary reads per second meanwhile")
	fs.StringVar(&role, "role", "", "internal: run as the benchmark's app or reference child")
	if err := cli.Parse(fs, args, stderr); err != nil {
		return err
	}
	if role != "" {
		return loadtest.RunChild(ctx, role, getenv, stdout, stderr)
	}
	if o.Concurrency < 1 || o.Duration <= 0 || o.Rounds < 1 || o.Users < 1 || o.CampaignsPerUser < 1 || o.EmailsPerCampaign < 1 {
		return fmt.Errorf("%w: -c, -d, -rounds, -users, -campaigns-per-user and -emails-per-campaign must be positive", cli.ErrUsage)
	}
	var err error
	if o.Env, err = parseEnv(envList); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to start the servers: %w", err)
	}
	if events {
		if eo.Campaigns < 1 || eo.PerCampaign < 1 || eo.PacedRate < 1 || eo.ReadRate < 1 {
			return fmt.Errorf("%w: -event-campaigns, -event-emails, -paced-rate and -read-rate must be positive", cli.ErrUsage)
		}
		if eo.BulkSizes, err = parseBulkSizes(bulkSizes); err != nil {
			return err
		}
		eo.Exe, eo.Concurrency, eo.Duration, eo.Warmup, eo.Env, eo.Generator, eo.ProfileDir = exe, o.Concurrency, o.Duration, o.Warmup, o.Env, o.Generator, o.ProfileDir
		return loadtest.RunEvents(ctx, eo, stdout)
	}
	if scale {
		so := loadtest.ScaleOptions{Exe: exe, Reps: scaleReps, Getenv: getenv, Log: stderr}
		if so.Sizes, err = parseSizes(scaleSizes); err != nil {
			return err
		}
		if scaleReps < 1 {
			return fmt.Errorf("%w: -scale-reps must be positive", cli.ErrUsage)
		}
		return loadtest.RunScale(ctx, so, stdout)
	}
	o.Exe = exe
	return loadtest.Run(ctx, o, stdout)
}

// parseEnv reads -env's NAME=VALUE,… pairs (nil for none).
func parseEnv(list string) (map[string]string, error) {
	if list == "" {
		return nil, nil
	}
	env := map[string]string{}
	for _, kv := range strings.Split(list, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: -env wants NAME=VALUE pairs, got %q", cli.ErrUsage, kv)
		}
		env[k] = v
	}
	return env, nil
}

// parseBulkSizes reads -bulk-sizes: events per request, 1 to 1000 (the
// route's limit).
func parseBulkSizes(list string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("%w: -bulk-sizes wants comma-separated sizes from 1 to 1000, got %q", cli.ErrUsage, f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// parseSizes reads -scale-sizes: ascending totals of at least 100 000.
func parseSizes(list string) ([]int64, error) {
	var sizes []int64
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n < 100_000 || (len(sizes) > 0 && n <= sizes[len(sizes)-1]) {
			return nil, fmt.Errorf("%w: -scale-sizes wants ascending counts of at least 100000, got %q", cli.ErrUsage, list)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
