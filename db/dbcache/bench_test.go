package dbcache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// go test -run '^$' -bench . -benchmem ./db/dbcache/

func BenchmarkGetCampaignSummaryL1Hit(b *testing.B) {
	pool := newPool(b, nil)
	f := seed(b, pool, 10)
	s := newCached(b, pool, "", "b")
	ctx := context.Background()
	arg := f.summaryArg()
	if _, err := s.GetCampaignSummary(ctx, arg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetCampaignSummary(ctx, arg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if hits := s.Cache().Snapshot().Query("GetCampaignSummary").HitsL1; hits < int64(b.N) {
		b.Fatalf("%d L1 hits for %d reads", hits, b.N)
	}
}

// BenchmarkGetCampaignSummaryL1HitParallel is the same hit from every
// core at once: gocache's statistics mutex and ristretto's buffers are
// shared.
func BenchmarkGetCampaignSummaryL1HitParallel(b *testing.B) {
	pool := newPool(b, nil)
	f := seed(b, pool, 10)
	s := newCached(b, pool, "", "b")
	arg := f.summaryArg()
	if _, err := s.GetCampaignSummary(context.Background(), arg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := s.GetCampaignSummary(ctx, arg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetCampaignSummaryL1HitParallelKeys is the parallel hit with
// each goroutine on its own campaigns, as under real traffic: nothing but
// ristretto's shard of the key is shared, so it should scale with cores
// (ristretto read-locks a key's shard, which the same-key benchmark above
// contends on by design).
func BenchmarkGetCampaignSummaryL1HitParallelKeys(b *testing.B) {
	pool := newPool(b, nil)
	s := newCached(b, pool, "", "b")
	ctx := context.Background()
	var args []db.GetCampaignSummaryParams
	for i := 0; i < 64; i++ {
		f := seed(b, pool, 2)
		args = append(args, f.summaryArg())
		if _, err := s.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			i = (i + 1) % len(args)
			if _, err := s.GetCampaignSummary(ctx, args[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCampaignSummary100k compares the summary of a campaign with
// 100 000 emails read from PostgreSQL and from L1.
func BenchmarkCampaignSummary100k(b *testing.B) {
	pool := newPool(b, nil)
	f := seed(b, pool, 100_000)
	if _, err := pool.Exec(context.Background(), "ANALYZE emails"); err != nil {
		b.Fatal(err)
	}
	s := newCached(b, pool, "", "b")
	arg := f.summaryArg()
	for _, bc := range []struct {
		name string
		q    db.Querier
	}{{"uncached", db.NewStore(pool, 5*time.Second)}, {"cached", s}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			r, err := bc.q.GetCampaignSummary(ctx, arg)
			if err != nil || r.Total != 100_000 {
				b.Fatalf("%+v %v", r, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.q.GetCampaignSummary(ctx, arg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkL2Hit reads through the decorator with L1 off, beside a plain
// go-redis GET of the very bytes the decorator fetches.
func BenchmarkL2Hit(b *testing.B) {
	srv := redistest.Start(b)
	pool := newPool(b, nil)
	f := seed(b, pool, 10)
	s := newCachedConfig(b, pool, cache.Config{Namespace: "b", RedisURL: srv.URL(), L1Disabled: true})
	ctx := context.Background()
	arg := f.summaryArg()
	if _, err := s.GetCampaignSummary(ctx, arg); err != nil {
		b.Fatal(err)
	}
	key := string(keyGetCampaignSummary([]byte(s.q.GetCampaignSummary.Prefix()), arg))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	b.Run("decorator", func(b *testing.B) {
		before := s.Cache().Snapshot().Query("GetCampaignSummary").HitsL2
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetCampaignSummary(ctx, arg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if hits := s.Cache().Snapshot().Query("GetCampaignSummary").HitsL2 - before; hits < int64(b.N) {
			b.Fatalf("%d L2 hits for %d reads", hits, b.N)
		}
	})
	b.Run("go-redis-get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
