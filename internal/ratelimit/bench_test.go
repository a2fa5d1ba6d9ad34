package ratelimit

import (
	"context"
	"strconv"
	"testing"

	"github.com/replyrocket/replyrocket/internal/redistest"
)

// What one rate-limit decision costs a request: in process, and shared
// through Redis (one EVALSHA round trip on loopback), side by side.
func BenchmarkAllow(b *testing.B) {
	lim := Limit{PerMinute: 1 << 30, Burst: 1 << 20}
	for _, backend := range []string{"local", "redis"} {
		b.Run(backend, func(b *testing.B) {
			url := ""
			if backend == "redis" {
				url = redistest.Start(b).URL()
			}
			l, err := New(Config{RedisURL: url, Namespace: "bench"}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = "key:" + strconv.Itoa(i)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if d := l.Allow(ctx, "key", keys[i%len(keys)], lim, 1); !d.Allowed || d.Shared != (backend == "redis") {
					b.Fatalf("decision %+v", d)
				}
			}
		})
	}
}
