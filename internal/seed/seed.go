// Package seed loads realistic data: users with campaigns whose emails are
// spread over many months (and so over many partitions), with sends, opens,
// replies and bounces in plausible proportions. Emails stream through COPY
// row by row, so memory stays flat however many are loaded.
package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/partitions"
)

// Options size a seed run.
type Options struct {
	Users             int
	CampaignsPerUser  int
	EmailsPerCampaign int
	// Months is how far back emails reach; each gets its own partition.
	Months int
	// Workers is how many COPY streams run at once.
	Workers int
	// Now anchors the time range; zero is time.Now.
	Now time.Time
	// UserEmails and UserNames, when given, name the first users (the
	// demo user).
	UserEmails []string
	UserNames  []string
	// Seed makes a run repeatable; 0 picks one at random.
	Seed uint64
	// Progress, if set, is called with the emails loaded so far, at most a
	// few times a second.
	Progress func(done int64)
}

// Result says what was loaded.
type Result struct {
	Users     []UserKey
	Campaigns int
	Emails    int64
}

// UserKey is a seeded user and its API key.
type UserKey struct {
	User db.User
	Key  string
}

// Total is how many emails opts will load.
func (o Options) Total() int64 {
	return int64(o.Users) * int64(o.CampaignsPerUser) * int64(o.EmailsPerCampaign)
}

func (o Options) validate() error {
	switch {
	case o.Users < 1:
		return fmt.Errorf("users must be at least 1, got %d", o.Users)
	case o.CampaignsPerUser < 0 || o.EmailsPerCampaign < 0:
		return fmt.Errorf("campaigns and emails per campaign must not be negative")
	case o.Months < 1 || o.Months > 120:
		return fmt.Errorf("months must be from 1 to 120, got %d", o.Months)
	}
	return nil
}

// Run seeds through store (users, keys, campaigns) and pool (the email COPY,
// which writes columns — opens, replies, sends — the application's own
// insert leaves at their defaults).
func Run(ctx context.Context, store db.Store, pool *pgxpool.Pool, o Options) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Workers < 1 {
		o.Workers = 2
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	from := partitions.MonthStart(o.Now).AddDate(0, -(o.Months - 1), 0)
	// Partitions first, from the oldest month: rows must not pile up in
	// DEFAULT, which the monthly partitions would then have to take over.
	if _, err := partitions.EnsureRange(ctx, store, from, o.Now); err != nil {
		return Result{}, err
	}
	var res Result
	var campaigns []db.Campaign
	for i := range o.Users {
		email := fmt.Sprintf("seed-%s-%d@example.com", uuid.NewString()[:8], i)
		if i < len(o.UserEmails) {
			email = o.UserEmails[i]
		}
		name := personName(rand.New(rand.NewPCG(o.Seed, uint64(i))))
		if i < len(o.UserNames) {
			name = o.UserNames[i]
		}
		u, k, err := apikey.CreateUser(ctx, store, email, name)
		if err != nil {
			return res, err
		}
		res.Users = append(res.Users, UserKey{User: u, Key: k.Plain})
		for j := range o.CampaignsPerUser {
			c, err := store.CreateCampaign(ctx, db.CreateCampaignParams{
				UserID: u.ID, Name: campaignName(i*o.CampaignsPerUser + j), Status: campaignStatus(j),
			})
			if err != nil {
				return res, fmt.Errorf("create campaign for %s: %w", email, err)
			}
			campaigns = append(campaigns, c)
		}
	}
	res.Campaigns = len(campaigns)

	var done atomic.Int64
	stopProgress := reportProgress(&done, o.Progress)
	defer stopProgress()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	for i, c := range campaigns {
		g.Go(func() error {
			gen := newGenerator(c.ID, o.EmailsPerCampaign, from, o.Now, rand.New(rand.NewPCG(o.Seed, uint64(1_000_000+i))), &done)
			_, err := pool.CopyFrom(gctx, pgx.Identifier{"emails"}, emailColumns, gen)
			if err != nil {
				return fmt.Errorf("copy emails of campaign %s: %w", c.ID, err)
			}
			return nil
		})
	}
	err := g.Wait()
	res.Emails = done.Load()
	if err != nil {
		return res, err
	}
	// Fresh statistics, so the first queries after a big load get good plans.
	if _, err := pool.Exec(ctx, "ANALYZE emails"); err != nil {
		return res, fmt.Errorf("analyze emails: %w", err)
	}
	return res, nil
}

// reportProgress calls fn with the count every 200 ms until stopped, and
// once more at the end so the last figure is exact.
func reportProgress(done *atomic.Int64, fn func(int64)) func() {
	if fn == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fn(done.Load())
				return
			case <-t.C:
				fn(done.Load())
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}
