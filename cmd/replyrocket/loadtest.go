package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/replyrocket/replyrocket/internal/loadtest"
)

// loadtest runs the load benchmark. With -role it is one of the benchmark's
// own child processes instead: an app instance configured from the
// environment, or the bare reference server.
func (e env) loadtest(ctx context.Context, args []string) error {
	o := loadtest.Options{Getenv: e.getenv, Log: e.stderr}
	var role, envList, scaleSizes string
	var scale bool
	var scaleReps int
	if err := e.flags("loadtest", args, func(fs *flag.FlagSet) {
		fs.IntVar(&o.Concurrency, "c", 32, "requests in flight")
		fs.DurationVar(&o.Duration, "d", 8*time.Second, "measured duration of each scenario")
		fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured run before each scenario")
		fs.IntVar(&o.Users, "users", 10, "seeded users")
		fs.IntVar(&o.CampaignsPerUser, "campaigns-per-user", 10, "seeded campaigns per user")
		fs.IntVar(&o.EmailsPerCampaign, "emails-per-campaign", 1000, "seeded emails per campaign")
		fs.IntVar(&o.Months, "months", 12, "months the emails are spread over")
		fs.StringVar(&envList, "env", "", "extra environment of the app instances, NAME=VALUE,… (e.g. DB_POOL_SIZE=8)")
		fs.StringVar(&o.ProfileDir, "profile", "", "write pprof profiles of the uncached instance's campaign-by-id run into this directory")
		fs.StringVar(&o.Only, "only", "", "run only the scenarios whose names contain one of these comma-separated words")
		fs.BoolVar(&scale, "scale", false, "run the scale benchmark instead (seeds millions of emails: minutes, gigabytes)")
		fs.StringVar(&scaleSizes, "scale-sizes", "1000000,10000000", "with -scale: total emails after each step")
		fs.IntVar(&scaleReps, "scale-reps", 200, "with -scale: sequential requests per read")
		fs.StringVar(&role, "role", "", "internal: run as the benchmark's app or reference child")
	}); err != nil {
		return err
	}
	switch role {
	case "":
	case "app":
		cfg, err := e.config()
		if err != nil {
			return err
		}
		log, closeLog := e.serverLogger(cfg)
		defer closeLog()
		return loadtest.ServeApp(ctx, cfg, log, e.stdout)
	case "reference":
		return loadtest.ServeReference(ctx, e.getenv(loadtest.EnvReferenceKey), []byte(e.getenv(loadtest.EnvReferenceBody)), e.stdout)
	default:
		return fmt.Errorf("%w: unknown loadtest role %q", errUsage, role)
	}
	if o.Concurrency < 1 || o.Duration <= 0 || o.Users < 1 || o.CampaignsPerUser < 1 || o.EmailsPerCampaign < 1 {
		return fmt.Errorf("%w: -c, -d, -users, -campaigns-per-user and -emails-per-campaign must be positive", errUsage)
	}
	if envList != "" {
		o.Env = map[string]string{}
		for _, kv := range strings.Split(envList, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%w: -env wants NAME=VALUE pairs, got %q", errUsage, kv)
			}
			o.Env[k] = v
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to start the servers: %w", err)
	}
	if scale {
		so := loadtest.ScaleOptions{Exe: exe, Reps: scaleReps, Getenv: e.getenv, Log: e.stderr}
		for _, f := range strings.Split(scaleSizes, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || n < 100_000 || (len(so.Sizes) > 0 && n <= so.Sizes[len(so.Sizes)-1]) {
				return fmt.Errorf("%w: -scale-sizes wants ascending counts of at least 100000, got %q", errUsage, scaleSizes)
			}
			so.Sizes = append(so.Sizes, n)
		}
		if scaleReps < 1 {
			return fmt.Errorf("%w: -scale-reps must be positive", errUsage)
		}
		return loadtest.RunScale(ctx, so, e.stdout)
	}
	o.Exe = exe
	return loadtest.Run(ctx, o, e.stdout)
}
