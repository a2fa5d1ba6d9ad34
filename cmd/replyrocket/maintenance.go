package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/cli"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/partitions"
	"github.com/replyrocket/replyrocket/internal/seed"
	"github.com/replyrocket/replyrocket/internal/wire"
)

// openDB opens a pool and store for a maintenance command.
func (e env) openDB(ctx context.Context) (*pgxpool.Pool, db.Store, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, nil, err
	}
	return openDB(ctx, cfg)
}

func openDB(ctx context.Context, cfg config.Config) (*pgxpool.Pool, db.Store, error) {
	if cfg.DB.URL == "" {
		return nil, nil, fmt.Errorf("DATABASE_URL is not set")
	}
	pool, err := db.NewPool(ctx, wire.Pool(cfg.DB), nil)
	if err != nil {
		return nil, nil, err
	}
	return pool, db.NewStore(pool, wire.Pool(cfg.DB).Timeout), nil
}

func (e env) partitions(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: partitions needs one of ensure, list, retain", cli.ErrUsage)
	}
	sub, rest := args[0], args[1:]
	var ahead, olderThan int
	var drop bool
	var define func(fs *flag.FlagSet)
	switch sub {
	case "ensure":
		define = func(fs *flag.FlagSet) { fs.IntVar(&ahead, "ahead", 3, "months past the current one to create") }
	case "list":
		define = func(*flag.FlagSet) {}
	case "retain":
		define = func(fs *flag.FlagSet) {
			fs.IntVar(&olderThan, "older-than", 0, "detach monthly partitions that ended this many months before the current month")
			fs.BoolVar(&drop, "drop", false, "drop the detached partitions (their rows are gone for good)")
		}
	default:
		return fmt.Errorf("%w: unknown partitions command %q", cli.ErrUsage, sub)
	}
	if err := e.flags("partitions "+sub, rest, define); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pool, store, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch sub {
	case "ensure":
		created, err := partitions.Ensure(ctx, store, time.Now(), ahead)
		if err != nil {
			return err
		}
		if len(created) == 0 {
			fmt.Fprintln(e.stdout, "all partitions already exist")
		}
		for _, p := range created {
			fmt.Fprintln(e.stdout, "created", p)
		}
		return nil
	case "list":
		rep, err := partitions.List(ctx, pool)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tFROM\tTO\tEST. ROWS\tSIZE")
		for _, p := range rep.Partitions {
			from, to := "DEFAULT", ""
			if !p.IsDefault {
				from, to = p.From.Format(time.DateOnly), p.To.Format(time.DateOnly)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Name, from, to, p.EstimatedRows, bytesText(p.TotalBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if rep.DefaultRows > 0 {
			fmt.Fprintf(e.stdout, "\n%d rows sit in emails_default (%s .. %s): run `replyrocket partitions ensure` for their months to move them.\n",
				rep.DefaultRows, rep.DefaultOldest.Format(time.DateOnly), rep.DefaultNewest.Format(time.DateOnly))
		}
		return nil
	}
	inv, closeCache, err := e.serversCache(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeCache()
	retired, err := partitions.Retain(ctx, pool, inv, time.Now(), olderThan, drop)
	for _, r := range retired {
		verb := "detached (kept as a table)"
		if r.Dropped {
			verb = "dropped"
		}
		fmt.Fprintf(e.stdout, "%s %s: %d rows, %s .. %s\n", verb, r.Name, r.Rows, r.From.Format(time.DateOnly), r.To.Format(time.DateOnly))
	}
	if err == nil && len(retired) == 0 {
		fmt.Fprintln(e.stdout, "no partition is old enough")
	}
	return err
}

// serversCache is the cache the running servers share, for a command that
// writes outside the generated queries: with REDIS_URL set, a bump there
// reaches every instance. Without it each server's cache is in its own
// process, out of this one's reach: the command says so, and returns a nil
// Invalidator.
func (e env) serversCache(ctx context.Context, cfg config.Config) (partitions.Invalidator, func(), error) {
	ccfg := wire.Cache(cfg.Cache)
	if ccfg.Disabled {
		return nil, func() {}, nil
	}
	if ccfg.RedisURL == "" {
		fmt.Fprintln(e.stderr, "note: REDIS_URL is not set, so running servers cache in process, out of this command's reach;"+
			" their cached reads of emails and campaign figures keep the old values for their TTL"+
			" unless invalidated: POST /db-monitor/cache/invalidate {\"table\": \"emails\"} on each instance")
		return nil, func() {}, nil
	}
	// Nothing is read through this cache: no in-process tier.
	ccfg.L1Disabled = true
	c, err := dbcache.NewCache(ccfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("cache: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, max(10*ccfg.RedisTimeout, 5*time.Second))
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("cache: Redis at REDIS_URL is not ready, so nothing would invalidate the servers' cached figures: %w", err)
	}
	return sharedInvalidator{c}, func() { _ = c.Close() }, nil
}

// sharedInvalidator fails when a bump did not reach Redis. A server keeps
// such a bump pending and applies it when Redis is back; this process exits
// next, and its pending bumps with it.
type sharedInvalidator struct{ c *cache.Cache }

func (s sharedInvalidator) InvalidateTable(ctx context.Context, table string) error {
	if err := s.c.InvalidateTable(ctx, table); err != nil {
		return err
	}
	if !s.c.Ready() {
		return fmt.Errorf("invalidate %[1]s: Redis did not take the bump; POST /db-monitor/cache/invalidate {\"table\": %[1]q} on an instance", table)
	}
	return nil
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (e env) users(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: users needs the create command", cli.ErrUsage)
	}
	var email, name string
	var asJSON bool
	if err := e.flags("users create", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email address")
		fs.StringVar(&name, "name", "", "the user's name")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}); err != nil {
		return err
	}
	if email == "" || name == "" {
		return fmt.Errorf("%w: users create needs --email and --name", cli.ErrUsage)
	}
	pool, store, err := e.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	u, k, err := apikey.CreateUser(ctx, store, email, name)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]string{"user_id": u.ID.String(), "email": u.Email, "api_key": k.Plain})
	}
	fmt.Fprintf(e.stdout, "Created user %s (%s).\nAPI key (shown once, store it now):\n\n  %s\n", u.Email, u.ID, k.Plain)
	return nil
}

func (e env) seed(ctx context.Context, args []string) error {
	o := seed.Options{}
	if err := e.flags("seed", args, func(fs *flag.FlagSet) {
		fs.IntVar(&o.Users, "users", 10, "users to create")
		fs.IntVar(&o.CampaignsPerUser, "campaigns-per-user", 5, "campaigns per user")
		fs.IntVar(&o.EmailsPerCampaign, "emails-per-campaign", 1000, "emails per campaign")
		fs.IntVar(&o.Months, "months", 12, "months back that emails are spread over")
		fs.IntVar(&o.Workers, "workers", 2, "concurrent COPY streams")
	}); err != nil {
		return err
	}
	pool, store, err := e.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	total := o.Total()
	o.Progress = e.progress(total)
	start := time.Now()
	res, err := seed.Run(ctx, store, pool, o)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(e.stdout, "\nSeeded %d users, %d campaigns and %d emails over %d months in %s (%.0f emails/s).\n",
		len(res.Users), res.Campaigns, res.Emails, o.Months, elapsed.Round(time.Millisecond), float64(res.Emails)/elapsed.Seconds())
	if len(res.Users) > 0 {
		fmt.Fprintf(e.stdout, "API key of %s: %s\n", res.Users[0].User.Email, res.Users[0].Key)
	}
	return nil
}

// progress draws a bar with rows/s and ETA on a terminal, and prints a
// plain line every few seconds otherwise (CI logs, pipes).
func (e env) progress(total int64) func(int64) {
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("emails"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetElapsedTime(true),
		)
		return func(done int64) { _ = bar.Set64(done) }
	}
	start := time.Now()
	var lastPrint time.Time
	return func(done int64) {
		now := time.Now()
		if now.Sub(lastPrint) < 2*time.Second && done < total {
			return
		}
		lastPrint = now
		elapsed := now.Sub(start).Seconds()
		rate := float64(done) / max(elapsed, 1e-9)
		eta := "-"
		if rate > 0 {
			eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
		}
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		fmt.Fprintf(e.stderr, "seed: %d/%d emails (%.1f%%), %.0f rows/s, ETA %s\n", done, total, pct, rate, eta)
	}
}
