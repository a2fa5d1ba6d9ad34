package querystats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestRecordPercentiles(t *testing.T) {
	tr := New()
	// 1..100 ms: p50 ≈ 50 ms, p95 ≈ 95 ms, p99 ≈ 99 ms.
	for i := 1; i <= 100; i++ {
		var err error
		if i%10 == 0 {
			err = errors.New("boom")
		}
		tr.Record("GetCampaign", time.Duration(i)*time.Millisecond, err)
	}
	tr.Record("CountUsers", time.Millisecond, nil)

	stats := tr.Snapshot()
	if len(stats) != 2 {
		t.Fatalf("got %d names, want 2", len(stats))
	}
	s := stats[0]
	if s.Name != "GetCampaign" {
		t.Fatalf("first stat %q, want the one with most total time", s.Name)
	}
	if s.Calls != 100 || s.Errors != 10 {
		t.Errorf("calls %d errors %d, want 100 and 10", s.Calls, s.Errors)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", s.P50Ms, 50}, {"p95", s.P95Ms, 95}, {"p99", s.P99Ms, 99}, {"max", s.MaxMs, 100}} {
		if c.got < c.want*0.99 || c.got > c.want*1.01 {
			t.Errorf("%s = %.3f ms, want %.0f ms ±1%%", c.name, c.got, c.want)
		}
	}
}

func TestNameOf(t *testing.T) {
	for _, c := range []struct{ sql, want string }{
		{"-- name: GetCampaign :one\nSELECT 1", "GetCampaign"},
		{"SELECT 1", Unnamed},
		{"", Unnamed},
	} {
		if got := nameOf(c.sql); got != c.want {
			t.Errorf("nameOf(%q) = %q, want %q", c.sql, got, c.want)
		}
	}
}

func TestWithoutTracing(t *testing.T) {
	tr := New()
	start := pgx.TraceQueryStartData{SQL: "-- name: GetCampaign :one\nSELECT 1"}
	ctx := tr.TraceQueryStart(WithoutTracing(context.Background()), nil, start)
	tr.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{})
	ctx = tr.TraceQueryStart(context.Background(), nil, start)
	tr.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{Err: errors.New("x")})
	s := tr.Snapshot()
	if len(s) != 1 || s[0].Name != "GetCampaign" || s[0].Calls != 1 || s[0].Errors != 1 {
		t.Fatalf("snapshot %+v, want one traced failing call", s)
	}
}

func TestRecordConcurrent(t *testing.T) {
	tr := New()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				tr.Record(fmt.Sprintf("Q%d", i%4), time.Duration(i)*time.Microsecond, nil)
			}
		}(g)
	}
	wg.Wait()
	var total int64
	for _, s := range tr.Snapshot() {
		total += s.Calls
	}
	if total != 8000 {
		t.Fatalf("recorded %d calls, want 8000", total)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	tr := New()
	names := []string{"GetCampaign", "GetEmail", "ListCampaigns", "GetUser"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tr.Record(names[i%len(names)], time.Duration(i%5000)*time.Microsecond, nil)
			i++
		}
	})
}

// BenchmarkTraceQuery is the whole cost the tracer adds to one query: the
// start hook (name parse, context value) and the end hook (record).
func BenchmarkTraceQuery(b *testing.B) {
	tr := New()
	ctx := context.Background()
	start := pgx.TraceQueryStartData{SQL: "-- name: GetCampaign :one\nSELECT id FROM campaigns WHERE id = $1"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			qctx := tr.TraceQueryStart(ctx, nil, start)
			tr.TraceQueryEnd(qctx, nil, pgx.TraceQueryEndData{})
		}
	})
}
