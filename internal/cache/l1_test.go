package cache

import (
	"testing"
	"time"
)

// TestL1ClockIsExactNearExpiry: the hit path's clock answers with the
// coarse time only for entries fresh beyond the slack, and with the
// precise time near or past an entry's soft time, so a coarse clock that
// lags (here: stopped an hour ago) never serves an expired entry as fresh.
func TestL1ClockIsExactNearExpiry(t *testing.T) {
	wall := time.Now().UnixNano()
	for _, tt := range []struct {
		name       string
		coarse     int64 // the coarse clock's reading
		soft       time.Duration
		wantCoarse bool
	}{
		{"fresh beyond the slack", wall, 10 * time.Minute, true},
		{"within the slack", wall, l1ClockSlack / 2, false},
		{"past its soft time", wall, -time.Millisecond, false},
		{"lagging clock, entry expiring soon", wall - int64(time.Hour), -time.Hour + l1ClockSlack/2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &coarseClock{}
			c.unix.Store(tt.coarse)
			l := &l1{clock: c}
			e := &entry{soft: wall + int64(tt.soft)}
			before := time.Now().UnixNano()
			got := l.now(e)
			after := time.Now().UnixNano()
			if tt.wantCoarse {
				if got != tt.coarse {
					t.Fatalf("now = %d, want the coarse %d", got, tt.coarse)
				}
				return
			}
			if got < before || got > after {
				t.Fatalf("now = %d, want the precise time in [%d, %d]", got, before, after)
			}
		})
	}
}

// TestCoarseClockTicks: the goroutine keeps the coarse time within a few
// resolutions of the wall clock, and stop ends it.
func TestCoarseClockTicks(t *testing.T) {
	const res = 5 * time.Millisecond
	c := newCoarseClock(res)
	start := c.now()
	deadline := time.Now().Add(5 * time.Second)
	for c.now() == start {
		if time.Now().After(deadline) {
			t.Fatal("the coarse clock did not move")
		}
		time.Sleep(res)
	}
	if lag := time.Now().UnixNano() - c.now(); lag < 0 || lag > int64(time.Second) {
		t.Fatalf("coarse clock %v behind the wall clock", time.Duration(lag))
	}
	c.stop()
	c.stop() // as Close, stop may be called twice
	stopped := c.now()
	time.Sleep(4 * res)
	if c.now() != stopped {
		t.Fatal("the coarse clock moved after stop")
	}
}

// TestReadAfterCloseBypasses: a closed cache hears no invalidation, so it
// serves nothing, not even from L1, whose clock has stopped too.
func TestReadAfterCloseBypasses(t *testing.T) {
	c := newTestCache(t, Config{})
	q := register(t, c, QuerySpec{Name: "Q", Hash: "h", TTL: time.Hour, Reads: []string{"users"}})
	var db counter
	read(t, q, db.load)
	if v, o := read(t, q, db.load); v != 1 || o != OutcomeHit {
		t.Fatalf("second read: %d %s, want a hit", v, o)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if v, o := read(t, q, db.load); v != 2 || o != OutcomeBypass {
		t.Fatalf("read after Close: %d %s, want a bypass", v, o)
	}
	if n := c.l1Entries(); n != 0 {
		t.Fatalf("L1 holds %d entries after Close", n)
	}
}
