package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/replyrocket/replyrocket/internal/redistest"
)

// These tests drive the runtime with a plain function as the loader; the
// database side is tested through the generated decorator in db/dbcache.

var int64Codec = Codec[int64]{
	Encode: func(b []byte, v int64) []byte { return AppendInt64(b, v) },
	Decode: func(d *Decoder) int64 { return d.ReadInt64() },
}

type counter struct{ n atomic.Int64 }

// load returns how many times it ran, so a test sees whether a read reached
// the "database".
func (c *counter) load(context.Context) (int64, error) { return c.n.Add(1), nil }

func newTestCache(t *testing.T, cfg Config) *Cache {
	t.Helper()
	if cfg.Namespace == "" {
		cfg.Namespace = "test"
	}
	c, err := New(cfg, Options{Tables: []string{"emails", "users"}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func register(t *testing.T, c *Cache, spec QuerySpec) *Query {
	t.Helper()
	q, err := c.Register(spec)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func read(t *testing.T, q *Query, load func(context.Context) (int64, error)) (int64, Outcome) {
	t.Helper()
	ctx, rec := WithRecorder(context.Background())
	v, err := Read(ctx, q, []byte(q.Prefix()+"k"), &int64Codec, load, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v, rec.Outcome()
}

func TestStaleWhileRevalidate(t *testing.T) {
	c := newTestCache(t, Config{})
	// The TTL outlasts a loop turn below on a loaded CI machine (-race,
	// every package at once): with 30 ms, each refreshed entry was stale
	// again before the next read could see it fresh.
	const ttl = 300 * time.Millisecond
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: ttl, SWR: time.Minute, Reads: []string{"emails"}})
	var db counter
	if v, o := read(t, q, db.load); v != 1 || o != OutcomeMiss {
		t.Fatalf("first read: %d %s", v, o)
	}
	time.Sleep(ttl + 10*time.Millisecond)
	if v, o := read(t, q, db.load); v != 1 || o != OutcomeStale {
		t.Fatalf("read past the TTL: %d %s, want the stale 1", v, o)
	}
	// Until the refresh lands, reads are served the stale 1; after it, a
	// hit on a refreshed value. Not necessarily 2: a loop turn slower than
	// the TTL (a stalled CI runner) finds the refreshed entry stale in turn
	// and refreshes it again, and values only grow, so waiting for exactly
	// 2 failed for good after one slow turn. A miss would mean the stale
	// entry was not served.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, o := read(t, q, db.load)
		if o == OutcomeMiss || (o == OutcomeHit && v < 2) {
			t.Fatalf("read while revalidating: %d %s, want the stale 1 or a refreshed hit", v, o)
		}
		if o == OutcomeHit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh: %d %s after %d loads", v, o, db.n.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A stale entry is still an entry: an invalidation kills it too.
	time.Sleep(ttl + 10*time.Millisecond)
	if err := c.InvalidateTable(context.Background(), "emails"); err != nil {
		t.Fatal(err)
	}
	if _, o := read(t, q, db.load); o != OutcomeMiss {
		t.Fatalf("read of an invalidated stale entry: %s, want miss", o)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := newTestCache(t, Config{})
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"users"}})
	boom := errors.New("boom")
	_, err := Read(context.Background(), q, []byte(q.Prefix()), &int64Codec, func(context.Context) (int64, error) { return 0, boom }, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var db counter
	if v, o := read(t, q, db.load); v != 1 || o != OutcomeMiss {
		t.Fatalf("read after an error: %d %s, want a fresh load", v, o)
	}
}

func TestDisabledBypasses(t *testing.T) {
	c := newTestCache(t, Config{Disabled: true})
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"users"}})
	var db counter
	read(t, q, db.load)
	if v, o := read(t, q, db.load); v != 2 || o != OutcomeBypass {
		t.Fatalf("%d %s, want a bypass to the second load", v, o)
	}
}

func TestRegisterRejectsUnknownTables(t *testing.T) {
	c := newTestCache(t, Config{})
	if _, err := c.Register(QuerySpec{Name: "Q", TTL: time.Minute, Reads: []string{"nope"}}); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("err = %v", err)
	}
}

// TestRedisLosingItsCountersInvalidates restarts Redis empty: the version
// counters start again from zero, and without the epoch an entry stamped
// with an old count could validate again after as many new writes.
func TestRedisLosingItsCountersInvalidates(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestCache(t, Config{RedisURL: srv.URL()})
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"emails"}})
	var db counter
	read(t, q, db.load)
	if _, o := read(t, q, db.load); o != OutcomeHit {
		t.Fatalf("second read: %s", o)
	}
	srv.Restart()
	// A write right after the restart: its bump finds a new epoch.
	if err := c.InvalidateTable(context.Background(), "emails"); err != nil {
		t.Fatal(err)
	}
	v, o := read(t, q, db.load)
	if v != 2 {
		t.Fatalf("read after the write: %d %s, want a fresh load", v, o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	read(t, q, db.load)
	if _, o := read(t, q, db.load); o != OutcomeHit {
		t.Fatalf("after recovery: %s, want hit", o)
	}
}

func TestMetricsExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(Config{Namespace: "m"}, Options{Tables: []string{"emails"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"emails"}})
	var db counter
	read(t, q, db.load)
	read(t, q, db.load)
	if err := c.InvalidateTable(context.Background(), "emails"); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP replyrocket_cache_lookups_total Annotated reads by query, tier (l1, l2, none for bypass) and result (hit, miss, stale, bypass).
# TYPE replyrocket_cache_lookups_total counter
replyrocket_cache_lookups_total{query="Q",result="bypass",tier="none"} 0
replyrocket_cache_lookups_total{query="Q",result="hit",tier="l1"} 1
replyrocket_cache_lookups_total{query="Q",result="hit",tier="l2"} 0
replyrocket_cache_lookups_total{query="Q",result="miss",tier="l1"} 1
replyrocket_cache_lookups_total{query="Q",result="miss",tier="l2"} 0
replyrocket_cache_lookups_total{query="Q",result="stale",tier="l1"} 0
replyrocket_cache_lookups_total{query="Q",result="stale",tier="l2"} 0
# HELP replyrocket_cache_invalidations_total Invalidations made by this instance, by table and scope: the scope's column when the write named its rows' values, table-wide when it could not.
# TYPE replyrocket_cache_invalidations_total counter
replyrocket_cache_invalidations_total{scope="table-wide",table="emails"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "replyrocket_cache_lookups_total", "replyrocket_cache_invalidations_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "replyrocket_cache_entries", "replyrocket_cache_bytes", "replyrocket_cache_load_duration_seconds"); err != nil || n != 3 {
		t.Fatalf("gauges and histogram: %d series, %v", n, err)
	}
	if r := c.QueryHitRates()["Q"]; r != 0.5 {
		t.Fatalf("hit rate %v, want 0.5", r)
	}
}

func TestDecoderRejectsCorruption(t *testing.T) {
	good := AppendString(AppendInt64(nil, 7), "hello")
	for n := 0; n < len(good); n++ {
		d := NewDecoder(good[:n])
		d.ReadInt64()
		_ = d.ReadString()
		if d.Err() == nil {
			t.Errorf("%d of %d bytes decoded without error", n, len(good))
		}
	}
	d := NewDecoder(append(good, 0))
	d.ReadInt64()
	_ = d.ReadString()
	if d.Err() == nil {
		t.Error("trailing byte accepted")
	}
	if _, _, err := decodeEnvelope([]byte{9, 1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad envelope: %v", err)
	}
}

func TestRecorderKeepsLeastCached(t *testing.T) {
	for _, tt := range []struct {
		in   []Outcome
		want Outcome
	}{
		{nil, OutcomeNone},
		{[]Outcome{OutcomeHit, OutcomeHit}, OutcomeHit},
		{[]Outcome{OutcomeHit, OutcomeMiss, OutcomeStale}, OutcomeMiss},
		{[]Outcome{OutcomeBypass, OutcomeHit}, OutcomeBypass},
	} {
		_, r := WithRecorder(context.Background())
		for _, o := range tt.in {
			r.record(o)
		}
		if r.Outcome() != tt.want {
			t.Errorf("%v -> %s, want %s", tt.in, r.Outcome(), tt.want)
		}
	}
}

// TestL1IsBoundedInBytes fills L1 with 16 times CACHE_L1_MAX_BYTES of
// values: what it keeps stays within the bound, and the gauges and the
// monitor's snapshot report what it keeps.
func TestL1IsBoundedInBytes(t *testing.T) {
	const limit = 64 << 10
	reg := prometheus.NewRegistry()
	c, err := New(Config{Namespace: "test", L1MaxBytes: limit}, Options{Tables: []string{"users"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"users"}})
	strCodec := Codec[string]{
		Encode: func(b []byte, v string) []byte { return AppendString(b, v) },
		Decode: func(d *Decoder) string { return d.ReadString() },
	}
	value := strings.Repeat("x", 1000)
	ctx := context.Background()
	const n = 1000 // 1 MB of values
	var last []byte
	for i := range n {
		last = AppendInt64([]byte(q.Prefix()), int64(i))
		if _, err := Read(ctx, q, last, &strCodec, func(context.Context) (string, error) { return value, nil }, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Eviction runs in otter's maintenance, after the writes; finish it.
	c.l1.c.CleanUp()
	// Each entry weighs its encoded value and its key.
	entryBytes := int64(len(AppendString(nil, value)) + len(last))
	held, entries := c.l1Bytes(), c.l1Entries()
	if held > limit || held < limit/2 {
		t.Fatalf("L1 holds %d bytes, limit %d", held, limit)
	}
	if entries <= 0 || entries >= n || held != entries*entryBytes {
		t.Fatalf("L1 holds %d entries in %d bytes, %d bytes each", entries, held, entryBytes)
	}
	want := fmt.Sprintf(`
# HELP replyrocket_cache_bytes Encoded bytes held (the cost L1 is bounded by).
# TYPE replyrocket_cache_bytes gauge
replyrocket_cache_bytes{tier="l1"} %d
# HELP replyrocket_cache_entries Entries held.
# TYPE replyrocket_cache_entries gauge
replyrocket_cache_entries{tier="l1"} %d
`, held, entries)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "replyrocket_cache_bytes", "replyrocket_cache_entries"); err != nil {
		t.Fatal(err)
	}
	if l1 := c.Snapshot().L1; l1.Bytes != held || l1.Entries != entries || l1.MaxBytes != limit {
		t.Fatalf("snapshot %+v, want %d entries in %d bytes of %d", l1, entries, held, limit)
	}
	// Clear empties it, and the gauges say so.
	if _, err := c.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	c.l1.c.CleanUp()
	if b, e := testutil.ToFloat64(c.m.gauges[1]), testutil.ToFloat64(c.m.gauges[0]); b != 0 || e != 0 {
		t.Fatalf("after Clear the gauges say %v bytes, %v entries", b, e)
	}
}

// TestL1Disabled keeps nothing in process: every read loads, and the
// gauges stay at zero.
func TestL1Disabled(t *testing.T) {
	c := newTestCache(t, Config{L1Disabled: true})
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"users"}})
	var db counter
	for want := int64(1); want <= 3; want++ {
		if v, o := read(t, q, db.load); v != want || o != OutcomeMiss {
			t.Fatalf("read %d: %d %s, want a miss", want, v, o)
		}
	}
	if l1 := c.Snapshot().L1; l1.Entries != 0 || l1.Bytes != 0 {
		t.Fatalf("L1 off holds %+v", l1)
	}
}
