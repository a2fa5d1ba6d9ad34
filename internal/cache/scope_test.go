package cache

import (
	"encoding/binary"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A write of many values (an event batch over many campaigns) bumps the
// distinct slots of its values, not the scope-wide version, until its
// slots pass WideSlots; and a value's slots stay in its window.
func TestManyValuesStayScoped(t *testing.T) {
	const scope = "counts.campaign_id"
	cols := []string{"", "opened", "replied", "sent", "bounced", "failed", "total"}
	c, versions := scopeCache(t, "counts", scope, cols)
	wide := map[int]bool{}
	for _, v := range versions {
		wide[c.mustIndex(v)] = true
	}
	bump := func(values int) (scoped, wideSlots int) {
		b := c.NewBumps()
		for i := range values {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(i))
			b.Value(scope, v[:], cols[1:]...)
		}
		for _, i := range b.slots() {
			if wide[i] {
				wideSlots++
			} else {
				scoped++
			}
		}
		return scoped, wideSlots
	}
	for _, tc := range []struct {
		values   int
		wantWide bool
	}{{1, false}, {65, false}, {500, false}, {ScopeSlots, true}} {
		scoped, wideSlots := bump(tc.values)
		switch {
		case tc.wantWide && (wideSlots == 0 || scoped != 0):
			t.Errorf("%d values: %d scoped and %d wide slots, want wide only", tc.values, scoped, wideSlots)
		case !tc.wantWide && (wideSlots != 0 || scoped == 0 || scoped > tc.values*valueWindow || scoped > WideSlots):
			t.Errorf("%d values: %d scoped and %d wide slots, want scoped ones only, at most %d", tc.values, scoped, wideSlots, tc.values*valueWindow)
		}
	}
	// One value's slots all lie in its window.
	vh := hashString("campaign")
	for _, a := range cols {
		for _, b := range cols {
			d := (slotOf(vh, hashString(a)) - slotOf(vh, hashString(b)) + ScopeSlots) % ScopeSlots
			if d >= valueWindow && ScopeSlots-d >= valueWindow {
				t.Errorf("columns %q and %q of one value are %d slots apart", a, b, d)
			}
		}
	}
}

// BenchmarkBatchSlots is an event batch's invalidation: 80 emails in 8
// columns (go test ./internal/cache -run '^$' -bench BatchSlots).
func BenchmarkBatchSlots(b *testing.B) {
	const scope = "emails.id"
	cols := []string{"bounce_reason", "bounced_at", "is_opened", "is_replied", "opened_at", "replied_at", "sent_at", "status"}
	c, _ := scopeCache(b, "emails", scope, append([]string{""}, cols...))
	b.ReportAllocs()
	for b.Loop() {
		bumps := c.NewBumps()
		for i := range 80 {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(i))
			bumps.Value(scope, v[:], cols...)
		}
		if len(bumps.slots()) == 0 {
			b.Fatal("no slots")
		}
	}
}

// scopeCache is a cache of one table with one scope, and its scope-wide
// versions for cols ("" is the row's), closed when tb ends.
func scopeCache(tb testing.TB, table, scope string, cols []string) (*Cache, []string) {
	tb.Helper()
	var versions []string
	for _, col := range cols {
		versions = append(versions, wideName(scope, col))
	}
	c, err := New(Config{Namespace: "scopes"}, Options{Tables: []string{table}, Versions: versions,
		Scopes: []Scope{{Name: scope, Table: table}}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c, versions
}
