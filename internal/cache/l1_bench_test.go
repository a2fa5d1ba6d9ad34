package cache

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkL1Heap reports the heap an L1 at the default bound costs,
// empty and holding 5 000 entries of 218 encoded bytes (1 MiB counted),
// each read four times: what the in-process tier adds to an instance
// beyond its entries.
func BenchmarkL1Heap(b *testing.B) {
	codec := Codec[string]{
		Encode: func(b []byte, v string) []byte { return AppendString(b, v) },
		Decode: func(d *Decoder) string { return d.ReadString() },
	}
	value := strings.Repeat("x", 200)
	load := func(context.Context) (string, error) { return value, nil }
	ctx := context.Background()
	var empty, full, counted float64
	for b.Loop() {
		h0 := liveHeap()
		c, err := New(Config{Namespace: "m", L1MaxBytes: DefaultL1MaxBytes}, Options{Tables: []string{"users"}})
		if err != nil {
			b.Fatal(err)
		}
		empty += float64(int64(liveHeap()) - int64(h0))
		q, err := c.Register(QuerySpec{Name: "Q", Hash: "h", TTL: time.Minute, Reads: []string{"users"}})
		if err != nil {
			b.Fatal(err)
		}
		for range 4 {
			for i := range 5000 {
				if _, err := Read(ctx, q, AppendInt64([]byte(q.Prefix()), int64(i)), &codec, load, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		c.l1.c.CleanUp()
		full += float64(int64(liveHeap()) - int64(h0))
		counted += float64(c.l1Bytes())
		_ = c.Close()
	}
	const mib = 1 << 20
	n := float64(b.N)
	b.ReportMetric(empty/n/mib, "MiB-empty")
	b.ReportMetric(full/n/mib, "MiB-full")
	b.ReportMetric(counted/n/mib, "MiB-counted")
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
