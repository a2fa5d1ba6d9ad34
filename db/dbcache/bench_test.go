package dbcache

import (
	"context"
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
	if hits := queryStats(b, s.Cache().Snapshot(), "GetCampaignSummary").HitsL1; hits < int64(b.N) {
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
		before := queryStats(b, s.Cache().Snapshot(), "GetCampaignSummary").HitsL2
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetCampaignSummary(ctx, arg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if hits := queryStats(b, s.Cache().Snapshot(), "GetCampaignSummary").HitsL2 - before; hits < int64(b.N) {
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
