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
	var versions []string
	for _, c := range cols {
		versions = append(versions, wideName(scope, c))
	}
	c, err := New(Config{Namespace: "scopes"}, Options{Tables: []string{"counts"}, Versions: versions,
		Scopes: []Scope{{Name: scope, Table: "counts"}}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
	versions := []string{wideName(scope, "")}
	for _, c := range cols {
		versions = append(versions, wideName(scope, c))
	}
	c, err := New(Config{Namespace: "bench"}, Options{Tables: []string{"emails"}, Versions: versions,
		Scopes: []Scope{{Name: scope, Table: "emails"}}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
