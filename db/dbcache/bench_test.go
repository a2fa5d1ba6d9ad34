package dbcache

import (
	"context"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// go test -run '^$' -bench . -benchmem ./db/dbcache/

// BenchmarkGetCampaignSummaryL1Hit reads cached summaries through the
// decorator, serially and from every core at once (b.RunParallel, one
// goroutine per GOMAXPROCS), on one key and round-robin over 64 keys
// (each goroutine starting at its own offset, as requests for different
// campaigns do). The sub-benchmarks share one setup and run back to back
// (with -count N, N serial runs then N parallel ones), so each parallel
// figure is also reported against the median of the serial runs before it
// ("x-serial", ns/op parallel ÷ ns/op serial): below 1 when the cores add
// throughput, 0.5 for perfect scaling on two cores. Each also
// reports the process's CPU time per read ("cpu-ns/op"): on a shared
// machine the parallel ns/op depends on how many cores were free, while a
// CPU time per read above the serial one is what contention between the
// cores costs. Every sub-benchmark checks that all its reads were L1 hits.
func BenchmarkGetCampaignSummaryL1Hit(b *testing.B) {
	pool := newPool(b, nil)
	s := newCached(b, pool, "", "b")
	ctx := context.Background()
	var args []db.GetCampaignSummaryParams
	for range 64 {
		f := seed(b, pool, 2)
		args = append(args, f.summaryArg())
		if _, err := s.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
			b.Fatal(err)
		}
	}
	for _, keys := range []struct {
		name string
		args []db.GetCampaignSummaryParams
	}{{"1key", args[:1]}, {"64keys", args}} {
		var serial []float64 // ns/op of the serial runs
		b.Run("serial/"+keys.name, func(b *testing.B) {
			hits := l1HitCounter(b, s)
			cpu := cpuPerOp(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i = (i + 1) % len(keys.args)
				if _, err := s.GetCampaignSummary(ctx, keys.args[i]); err != nil {
					b.Fatal(err)
				}
			}
			serial = append(serial, float64(b.Elapsed().Nanoseconds())/float64(b.N))
			cpu()
			hits(b.N)
		})
		b.Run("parallel/"+keys.name, func(b *testing.B) {
			hits := l1HitCounter(b, s)
			var next atomic.Int64
			b.ReportAllocs()
			cpu := cpuPerOp(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1))
				for pb.Next() {
					i = (i + 1) % len(keys.args)
					if _, err := s.GetCampaignSummary(ctx, keys.args[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cpu()
			if len(serial) > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/median(serial), "x-serial")
			}
			hits(b.N)
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuPerOp starts counting the process's CPU time (user and system, every
// thread); the function it returns reports it per read.
func cpuPerOp(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64((processCPU(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// l1HitCounter returns a check that the reads made since it was called
// were all L1 hits: a benchmark of hits must not time misses.
func l1HitCounter(b *testing.B, s *Store) func(n int) {
	before := s.Cache().Snapshot().Query("GetCampaignSummary").HitsL1
	return func(n int) {
		b.Helper()
		if hits := s.Cache().Snapshot().Query("GetCampaignSummary").HitsL1 - before; hits != int64(n) {
			b.Fatalf("%d L1 hits for %d reads", hits, n)
		}
	}
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
