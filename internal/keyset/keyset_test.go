package keyset

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"
)

// stored is a sorted list of hashes served the way ListAPIKeyHashesAfter
// pages them (the SQL itself is tested through the handlers' tests, on
// PostgreSQL).
type stored [][]byte

func (s stored) page(_ context.Context, after []byte, limit int32) ([][]byte, error) {
	i, _ := slices.BinarySearchFunc(s, after, bytes.Compare)
	if i < len(s) && bytes.Equal(s[i], after) {
		i++
	}
	return s[i:min(i+int(limit), len(s))], nil
}

func hashes(n int) stored {
	out := make(stored, n)
	for i := range out {
		h := sha256.Sum256([]byte(rand.Text()))
		out[i] = h[:]
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

func newSet(t testing.TB, src Source) *Set {
	s, err := New(Config{PageSize: 7}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReloadReadsEveryPage(t *testing.T) {
	keys := hashes(50) // 7 full pages and a short one
	s := newSet(t, keys.page)
	if s.Contains([32]byte(keys[0])) || s.Loaded() {
		t.Fatal("a set not loaded yet must know no key")
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !s.Contains([32]byte(k)) {
			t.Fatalf("%x missing after reload", k)
		}
	}
	if s.Len() != 50 || s.Contains(sha256.Sum256([]byte("a bad key"))) {
		t.Fatalf("len %d, or a bad key is in the set", s.Len())
	}
}

// A key added while a reload reads the table (which may have read past
// it before its insert committed) survives the reload; a key gone from
// the table (revoked) is dropped by it.
func TestReloadKeepsKeysAddedMeanwhile(t *testing.T) {
	keys := hashes(20)
	added := sha256.Sum256([]byte("created during the reload"))
	var s *Set
	s = newSet(t, func(ctx context.Context, after []byte, limit int32) ([][]byte, error) {
		s.Add(ctx, added)
		return keys.page(ctx, after, limit)
	})
	revoked := sha256.Sum256([]byte("revoked before the reload"))
	s.Learn(revoked)
	s.now = func() time.Time { return time.Now().Add(2 * addGrace) } // learnt long before the reload
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.Contains(added) || s.Contains(revoked) || s.Len() != 21 {
		t.Fatalf("added kept %v, revoked dropped %v, len %d", s.Contains(added), !s.Contains(revoked), s.Len())
	}
}

// A failed reload keeps the set it had.
func TestFailedReloadKeepsTheSet(t *testing.T) {
	keys := hashes(10)
	fail := false
	s := newSet(t, func(ctx context.Context, after []byte, limit int32) ([][]byte, error) {
		if fail {
			return nil, errors.New("database down")
		}
		return keys.page(ctx, after, limit)
	})
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	fail = true
	if err := s.Reload(context.Background()); err == nil {
		t.Fatal("a failed reload reported no error")
	}
	if s.Len() != 10 || !s.Contains([32]byte(keys[3])) {
		t.Fatalf("after a failed reload: len %d", s.Len())
	}
}

// TestMemoryPerKey reports what the set costs per key (docs/decisions).
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million keys")
	}
	const n = 1_000_000
	keys := hashes(n)
	s := newSet(t, keys.page)
	s.cfg.PageSize = 10_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d keys: %.1f bytes per key in the heap", n, per)
	if s.Len() != n {
		t.Fatalf("len %d", s.Len())
	}
	runtime.KeepAlive(keys)
}

func BenchmarkContains(b *testing.B) {
	keys := hashes(100_000)
	s := newSet(b, keys.page)
	if err := s.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	probe := [32]byte(keys[42])
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.Contains(probe) {
				b.Fatal("missing")
			}
		}
	})
}
