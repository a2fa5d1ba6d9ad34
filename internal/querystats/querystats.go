// Package querystats measures the latency of every query the application
// runs, keyed by the sqlc query name, through pgx's tracer hooks. It exists
// because pg_stat_statements sees normalised SQL text, not the application's
// names, and cannot see time spent waiting for a connection or on the wire.
package querystats

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/sqlcname"
)

// Unnamed is the name under which SQL that did not come from sqlc is counted,
// so ad-hoc statements still show up rather than vanishing.
const Unnamed = "(unnamed)"

// Latencies are recorded in microseconds from 1 µs to 10 min with three
// significant digits: enough for p99 of both index lookups and slow scans,
// in a fixed ~20 KiB per query name.
const (
	minMicros = 1
	maxMicros = int64(10 * time.Minute / time.Microsecond)
	sigFigs   = 3
)

// Tracer implements pgx.QueryTracer and pgx.CopyFromTracer. Set it on
// pgxpool.Config.ConnConfig.Tracer. It is safe for concurrent use.
type Tracer struct {
	now     func() time.Time
	entries sync.Map // query name -> *entry
}

// New returns an empty Tracer.
func New() *Tracer { return &Tracer{now: time.Now} }

var (
	_ pgx.QueryTracer    = (*Tracer)(nil)
	_ pgx.CopyFromTracer = (*Tracer)(nil)
)

// entry holds one query name's figures. HdrHistogram is not safe for
// concurrent use, so each name has its own lock: queries of different names
// never contend.
type entry struct {
	mu     sync.Mutex
	calls  int64
	errors int64
	hist   *hdrhistogram.Histogram
}

type startKey struct{}

type skipKey struct{}

// WithoutTracing marks ctx so the tracer ignores the queries run on it. The
// database monitor uses it: its catalog queries are not the application's
// and would crowd the per-query figures.
func WithoutTracing(ctx context.Context) context.Context {
	return context.WithValue(ctx, skipKey{}, true)
}

type started struct {
	name string
	at   time.Time
}

// TraceQueryStart remembers the query name and start time in the context.
func (t *Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if ctx.Value(skipKey{}) != nil {
		return ctx
	}
	return context.WithValue(ctx, startKey{}, started{name: nameOf(data.SQL), at: t.now()})
}

// TraceQueryEnd records the call's latency and whether it failed.
func (t *Tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.finish(ctx, data.Err)
}

// TraceCopyFromStart is the COPY counterpart of TraceQueryStart. sqlc's
// :copyfrom methods carry no SQL, so they are named after their table.
func (t *Tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	if ctx.Value(skipKey{}) != nil {
		return ctx
	}
	return context.WithValue(ctx, startKey{}, started{name: "COPY " + data.TableName.Sanitize(), at: t.now()})
}

// TraceCopyFromEnd records the COPY's latency and whether it failed.
func (t *Tracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	t.finish(ctx, data.Err)
}

func (t *Tracer) finish(ctx context.Context, err error) {
	s, ok := ctx.Value(startKey{}).(started)
	if !ok {
		return
	}
	t.Record(s.name, t.now().Sub(s.at), err)
}

// Record adds one call of the named query. It is exported for callers that
// time work pgx does not trace.
func (t *Tracer) Record(name string, d time.Duration, err error) {
	e := t.entry(name)
	us := d.Microseconds()
	if us < minMicros {
		us = minMicros
	}
	if us > maxMicros {
		us = maxMicros
	}
	e.mu.Lock()
	e.calls++
	if err != nil {
		e.errors++
	}
	// The value is clamped into the histogram's range above, so recording
	// cannot fail.
	_ = e.hist.RecordValue(us)
	e.mu.Unlock()
}

func (t *Tracer) entry(name string) *entry {
	if v, ok := t.entries.Load(name); ok {
		return v.(*entry)
	}
	v, _ := t.entries.LoadOrStore(name, &entry{hist: hdrhistogram.New(minMicros, maxMicros, sigFigs)})
	return v.(*entry)
}

func nameOf(sql string) string {
	if n := sqlcname.Of(sql); n != "" {
		return n
	}
	return Unnamed
}

// Stat is one query name's figures since the process started.
type Stat struct {
	Name   string  `json:"name"`
	Calls  int64   `json:"calls"`
	Errors int64   `json:"errors"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Snapshot returns every query name's figures, most total time first.
func (t *Tracer) Snapshot() []Stat {
	var out []Stat
	t.entries.Range(func(k, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		s := Stat{
			Name:   k.(string),
			Calls:  e.calls,
			Errors: e.errors,
			MeanMs: e.hist.Mean() / 1000,
			P50Ms:  float64(e.hist.ValueAtQuantile(50)) / 1000,
			P95Ms:  float64(e.hist.ValueAtQuantile(95)) / 1000,
			P99Ms:  float64(e.hist.ValueAtQuantile(99)) / 1000,
			MaxMs:  float64(e.hist.Max()) / 1000,
		}
		e.mu.Unlock()
		out = append(out, s)
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		ti, tj := out[i].MeanMs*float64(out[i].Calls), out[j].MeanMs*float64(out[j].Calls)
		if ti != tj {
			return ti > tj
		}
		return out[i].Name < out[j].Name
	})
	return out
}
