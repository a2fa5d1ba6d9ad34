package cache

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
)

// l1 is the in-process tier: otter, bounded by the encoded size of what it
// holds. Otter's reads take no lock and write no shared cache line (its
// hash table is read lock-free; its access buffers are striped by
// goroutine), so L1 hits scale with cores, which ristretto's per-shard
// read locks prevented. The tier keeps no TTL of its own: an entry's soft
// and hard times decide (read.go), and a dead entry stays until the byte
// bound evicts it, like any cold one.
type l1 struct {
	c     *otter.Cache[string, *entry]
	clock *coarseClock
}

// The hit path's clock: a wall clock read every l1ClockResolution by a
// goroutine, trusted only while an entry's soft time is more than
// l1ClockSlack ahead of it. The goroutine wakes 10 times a second (at 1 ms
// it cost 2.7 % of a core doing nothing); a slack of ten ticks covers a
// goroutine that runs late, so the answer is the precise clock's.
const (
	l1ClockResolution = 100 * time.Millisecond
	l1ClockSlack      = time.Second
)

func newL1(maxBytes int64) *l1 {
	return &l1{
		c: otter.Must(&otter.Options[string, *entry]{
			MaximumWeight: uint64(maxBytes),
			Weigher:       func(_ string, e *entry) uint32 { return e.cost },
		}),
		clock: newCoarseClock(l1ClockResolution),
	}
}

// get looks key up without copying it into a string: otter only hashes and
// compares the key of a lookup, it keeps none, so the bytes need to stay
// unchanged only for the call (they are the caller's own buffer).
func (t *l1) get(key []byte) (*entry, bool) {
	return t.c.GetIfPresent(unsafe.String(unsafe.SliceData(key), len(key)))
}

// set stores e under k, weighing it cost bytes (the encoded size, the unit
// of CACHE_L1_MAX_BYTES and of Redis).
func (t *l1) set(k string, e *entry, cost int) {
	e.cost = uint32(min(cost, math.MaxUint32))
	t.c.Set(k, e)
}

func (t *l1) clear() { t.c.InvalidateAll() }

func (t *l1) close() { t.clock.stop() }

// now is the time to compare e's soft and hard times to, in unix
// nanoseconds. An entry fresh for more than the slack by the coarse clock is
// fresh by the precise one, which runs at most that much ahead: comparing
// to the coarse time gives the same answers. Only an entry near or past its
// soft time (a small share of its life with TTLs of minutes; every entry
// with TTLs below the slack, as in tests) pays for the precise clock.
func (t *l1) now(e *entry) int64 {
	if now := t.clock.now(); now+int64(l1ClockSlack) < e.soft {
		return now
	}
	return time.Now().UnixNano()
}

func (t *l1) entries() int64 { return int64(t.c.EstimatedSize()) }

func (t *l1) bytes() int64 { return int64(t.c.WeightedSize()) }

// coarseClock is the wall clock read once per resolution by a goroutine.
// Reading the precise time costs 70 ns on this VM, half of an L1 hit;
// reading this one costs a load. otter.CoarseClock does the same but counts
// monotonic time from its start, which drifts from the wall-clock times
// entries carry (L2 shares them between instances) after a clock step: a
// step back longer than a TTL would make every L1 entry look dead.
type coarseClock struct {
	_        [64]byte // its own cache line: every hit reads it, only the ticker writes it
	unix     atomic.Int64
	_        [56]byte
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newCoarseClock(resolution time.Duration) *coarseClock {
	c := &coarseClock{quit: make(chan struct{}), done: make(chan struct{})}
	c.unix.Store(time.Now().UnixNano())
	go func() {
		defer close(c.done)
		t := time.NewTicker(resolution)
		defer t.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-t.C:
				// Not the tick's own time: it is older when this goroutine ran late.
				c.unix.Store(time.Now().UnixNano())
			}
		}
	}()
	return c
}

func (c *coarseClock) now() int64 { return c.unix.Load() }

// stop ends the goroutine; the clock then stays where it was. Like Close,
// it may be called more than once.
func (c *coarseClock) stop() {
	c.stopOnce.Do(func() { close(c.quit) })
	<-c.done
}
