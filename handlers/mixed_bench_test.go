package handlers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// BenchmarkMixedWorkload is the product's normal state over HTTP on
// loopback: 16 connections read the summaries of random campaigns while
// opens arrive for random emails at a fixed rate, with the scoped cache,
// the same cache with scopes off (every open invalidates every summary, as
// before scopes), and no cache. One op is one summary read; reported:
// reads/s, the summary's hit rate, and the writes/s achieved. Opens go
// through the event batcher (internal/ingest): at 2000/s a batch holds
// several opens, and invalidates only the campaigns it touched.
//
//	go test ./handlers -run '^$' -bench MixedWorkload -benchtime 20000x
func BenchmarkMixedWorkload(b *testing.B) {
	w := newMixedWorld(b, 20, 10, 200)
	for _, mode := range []string{"scoped", "scopes-off", "cache-off"} {
		for _, rate := range []int{0, 5, 50, 200, 2000} {
			b.Run(fmt.Sprintf("%s/writes=%d", mode, rate), func(b *testing.B) { w.run(b, mode, rate) })
		}
	}
}

type mixedCampaign struct {
	id  uuid.UUID
	key string
}

type mixedEmail struct {
	id  uuid.UUID
	key string
}

type mixedWorld struct {
	store     db.Store
	deps      Deps
	campaigns []mixedCampaign
	unopened  []mixedEmail
	next      atomic.Int64
}

// newMixedWorld seeds users × campaigns × emails straight through the
// store (COPY), so every run starts from the same data.
func newMixedWorld(b *testing.B, users, campaignsPerUser, emails int) *mixedWorld {
	b.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	store := db.NewStore(pool, 5*time.Second)
	if _, err := store.EnsureEmailPartitions(ctx, db.EnsureEmailPartitionsParams{FromMonth: time.Now().AddDate(0, -1, 0), Months: 3}); err != nil {
		b.Fatal(err)
	}
	w := &mixedWorld{store: store, deps: Deps{
		Pool: pool, AdminKey: testAdminKey, RequestTimeout: 5 * time.Second,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}}
	news := make([]db.NewEmail, emails)
	for i := range news {
		news[i] = db.NewEmail{Recipient: fmt.Sprintf("lead%d@example.com", i), Subject: "Hello", Body: "Hi!"}
	}
	for u := 0; u < users; u++ {
		user, key, err := apikey.CreateUser(ctx, store, uuid.NewString()+"@example.com", "Bench")
		if err != nil {
			b.Fatal(err)
		}
		for c := 0; c < campaignsPerUser; c++ {
			camp, err := store.CreateCampaign(ctx, db.CreateCampaignParams{UserID: user.ID, Name: "Bench", Status: "active"})
			if err != nil {
				b.Fatal(err)
			}
			rows := db.EmailRows(camp.ID, news, time.Now())
			if _, err := store.InsertEmails(ctx, rows); err != nil {
				b.Fatal(err)
			}
			w.campaigns = append(w.campaigns, mixedCampaign{id: camp.ID, key: key.Plain})
			for _, r := range rows {
				w.unopened = append(w.unopened, mixedEmail{id: r.ID, key: key.Plain})
			}
		}
	}
	rand.Shuffle(len(w.unopened), func(i, j int) { w.unopened[i], w.unopened[j] = w.unopened[j], w.unopened[i] })
	return w
}

func (w *mixedWorld) router(b *testing.B, mode string) (http.Handler, *cache.Cache) {
	d := w.deps
	d.Store = w.store
	if mode == "cache-off" {
		return New(d), nil
	}
	c, err := dbcache.NewCache(cache.Config{Namespace: "mixed", ScopesDisabled: mode == "scopes-off"}, prometheus.NewRegistry(), d.Log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	s, err := dbcache.New(w.store, c)
	if err != nil {
		b.Fatal(err)
	}
	d.Store = s
	return New(d), c
}

func (w *mixedWorld) run(b *testing.B, mode string, rate int) {
	h, c := w.router(b, mode)
	srv := httptest.NewServer(h)
	defer srv.Close()
	const conns = 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns + 8, MaxConnsPerHost: conns + 8}}
	defer client.CloseIdleConnections()
	get := func(camp mixedCampaign) error {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/campaigns/"+camp.id.String()+"/summary", nil)
		req.Header.Set("Authorization", "Bearer "+camp.key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("summary: status %d", resp.StatusCode)
		}
		return nil
	}
	// Warm: every summary read once, so a run measures the steady state.
	for _, camp := range w.campaigns {
		if err := get(camp); err != nil {
			b.Fatal(err)
		}
	}
	hits0, lookups0 := summaryCounts(c)
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	if rate > 0 {
		// A tick starts one open; up to 8 run at once, so a slow response
		// does not lower the rate.
		sem := make(chan struct{}, 8)
		open := func(em mixedEmail) {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/emails/"+em.id.String()+"/opened", nil)
			req.Header.Set("Authorization", "Bearer "+em.key)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("open: status %d", resp.StatusCode)
				return
			}
			writes.Add(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Second / time.Duration(rate))
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				i := w.next.Add(1) - 1
				if int(i) >= len(w.unopened) {
					b.Error("ran out of unopened emails")
					return
				}
				select {
				case sem <- struct{}{}:
					wg.Add(1)
					go open(w.unopened[i])
				default: // 8 in flight: this tick's write is skipped, and the figure says so
				}
			}
		}()
	}
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var rg sync.WaitGroup
	for g := 0; g < conns; g++ {
		rg.Add(1)
		go func(seed uint64) {
			defer rg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for n.Add(1) <= int64(b.N) {
				if err := get(w.campaigns[rng.IntN(len(w.campaigns))]); err != nil {
					b.Error(err)
					return
				}
			}
		}(uint64(g))
	}
	rg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reads/s")
	b.ReportMetric(float64(writes.Load())/elapsed.Seconds(), "writes/s")
	if c != nil {
		hits, lookups := summaryCounts(c)
		if lookups > lookups0 {
			b.ReportMetric(100*float64(hits-hits0)/float64(lookups-lookups0), "hit%")
		}
	}
}

// summaryCounts are the summary query's served and total lookups.
func summaryCounts(c *cache.Cache) (served, total int64) {
	if c == nil {
		return 0, 0
	}
	q := c.Snapshot().Query("GetCampaignSummary")
	served = q.HitsL1 + q.HitsL2 + q.Stale
	return served, served + q.Misses + q.Bypasses
}
