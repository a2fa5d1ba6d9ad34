package dbcache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// The stale-read checker: writers open emails, insert emails in bulk,
// create and delete campaigns across several users; readers read
// summaries, user statistics and campaign pages with their figures, and
// check each result against the writes acknowledged before the read
// began. Counts only grow while a campaign lives, so a result below what
// was acknowledged is a stale read.

type checkCampaign struct {
	id, user  uuid.UUID
	mu        sync.Mutex
	unopened  []uuid.UUID
	inserted  atomic.Int64
	opened    atomic.Int64
	deleting  atomic.Bool // set before the delete is sent
	deleted   atomic.Bool // set once it is acknowledged
	createdAt time.Time
}

type checkUser struct {
	id    uuid.UUID
	mu    sync.Mutex
	camps []*checkCampaign
}

func (u *checkUser) campaigns() []*checkCampaign {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*checkCampaign(nil), u.camps...)
}

type checkWorld struct {
	users []*checkUser
}

func newCheckWorld(t *testing.T, pool *pgxpool.Pool, users, campaigns, emails int) *checkWorld {
	t.Helper()
	ctx := context.Background()
	raw := db.NewStore(pool, 5*time.Second)
	w := &checkWorld{}
	for i := 0; i < users; i++ {
		u, err := raw.CreateUser(ctx, db.CreateUserParams{Email: fmt.Sprintf("check%d-%d@example.com", i, time.Now().UnixNano()), Name: "C"})
		if err != nil {
			t.Fatal(err)
		}
		cu := &checkUser{id: u.ID}
		for j := 0; j < campaigns; j++ {
			cu.camps = append(cu.camps, createCheckCampaign(t, raw, u.ID, emails))
		}
		w.users = append(w.users, cu)
	}
	return w
}

func createCheckCampaign(t *testing.T, s db.Querier, user uuid.UUID, emails int) *checkCampaign {
	ctx := context.Background()
	c, err := s.CreateCampaign(ctx, db.CreateCampaignParams{UserID: user, Name: "c", Status: "active"})
	if err != nil {
		t.Error(err)
		return nil
	}
	cc := &checkCampaign{id: c.ID, user: user, createdAt: c.CreatedAt}
	if emails > 0 {
		for _, r := range insertEmails(t, s, c.ID, emails) {
			cc.unopened = append(cc.unopened, r.ID)
		}
		cc.inserted.Store(int64(emails))
	}
	return cc
}

// write runs one random write through s.
func (w *checkWorld) write(t *testing.T, s db.Store, rng *rand.Rand) {
	ctx := context.Background()
	u := w.users[rng.IntN(len(w.users))]
	camps := u.campaigns()
	var live []*checkCampaign
	for _, c := range camps {
		if !c.deleting.Load() {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	c := live[rng.IntN(len(live))]
	switch op := rng.IntN(100); {
	case op < 60: // open
		c.mu.Lock()
		if len(c.unopened) == 0 {
			c.mu.Unlock()
			return
		}
		id := c.unopened[0]
		c.unopened = c.unopened[1:]
		c.mu.Unlock()
		if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: id, UserID: u.id}); err != nil {
			if !(errors.Is(err, db.ErrNotFound) && c.deleting.Load()) {
				t.Errorf("open: %v", err)
			}
			return
		}
		c.opened.Add(1)
	case op < 85: // bulk insert
		news := make([]db.NewEmail, 1+rng.IntN(3))
		for i := range news {
			news[i] = db.NewEmail{Recipient: "r@example.com", Subject: "s", Body: "b"}
		}
		rows := db.EmailRows(c.id, news, time.Now())
		if _, err := s.InsertEmails(ctx, rows); err != nil {
			if !(errors.Is(err, db.ErrInvalidReference) && c.deleting.Load()) {
				t.Errorf("insert: %v", err)
			}
			return
		}
		c.mu.Lock()
		for _, r := range rows {
			c.unopened = append(c.unopened, r.ID)
		}
		c.mu.Unlock()
		c.inserted.Add(int64(len(rows)))
	case op < 95: // new campaign
		if nc := createCheckCampaign(t, s, u.id, 0); nc != nil {
			u.mu.Lock()
			u.camps = append(u.camps, nc)
			u.mu.Unlock()
		}
	default: // delete, keeping at least two campaigns per user
		if len(live) <= 2 {
			return
		}
		c.deleting.Store(true)
		if _, err := s.DeleteCampaign(ctx, db.DeleteCampaignParams{ID: c.id, UserID: u.id}); err != nil {
			t.Errorf("delete: %v", err)
			return
		}
		c.deleted.Store(true)
	}
}

// snapshot is what was acknowledged for one campaign before a read.
type snapshot struct {
	c                 *checkCampaign
	inserted, opened  int64
	deleted, deleting bool
}

func snap(c *checkCampaign) snapshot {
	return snapshot{c: c, inserted: c.inserted.Load(), opened: c.opened.Load(), deleted: c.deleted.Load(), deleting: c.deleting.Load()}
}

// read runs one random read through s and reports a stale result. delay
// is how long after the snapshot the read starts (for an instance that
// learns of writes through Redis).
func (w *checkWorld) read(t *testing.T, s db.Store, rng *rand.Rand, delay time.Duration) (stale bool) {
	ctx := context.Background()
	u := w.users[rng.IntN(len(w.users))]
	camps := u.campaigns()
	snaps := make([]snapshot, len(camps))
	for i, c := range camps {
		snaps[i] = snap(c)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	// A campaign whose delete began during the read may or may not be in
	// the result; the checks skip it.
	unsettled := func(sn snapshot) bool { return sn.deleting || sn.c.deleting.Load() && !sn.deleted }
	switch rng.IntN(3) {
	case 0:
		sn := snaps[rng.IntN(len(snaps))]
		r, err := s.GetCampaignSummary(ctx, db.GetCampaignSummaryParams{CampaignID: sn.c.id, UserID: u.id})
		switch {
		case errors.Is(err, db.ErrNotFound):
			return !sn.c.deleting.Load()
		case err != nil:
			t.Errorf("summary: %v", err)
		case sn.deleted:
			return true
		case !unsettled(sn) && (r.Total < sn.inserted || r.Opened < sn.opened):
			return true
		}
	case 1:
		r, err := s.GetUserStatistics(ctx, u.id)
		if err != nil {
			t.Errorf("statistics: %v", err)
			return false
		}
		var total, opened int64
		for _, sn := range snaps {
			if unsettled(sn) {
				return false // a delete under way lowers the figures
			}
			if !sn.deleted {
				total += sn.inserted
				opened += sn.opened
			}
		}
		return r.Emails < total || r.Opened < opened
	case 2:
		rows, err := s.ListCampaignsWithStats(ctx, db.ListCampaignsWithStatsParams{
			UserID: u.id, BeforeCreatedAt: time.Now().Add(time.Hour), BeforeID: uuid.Max, PageSize: 100,
		})
		if err != nil {
			t.Errorf("page: %v", err)
			return false
		}
		got := map[uuid.UUID]db.ListCampaignsWithStatsRow{}
		for _, r := range rows {
			got[r.ID] = r
		}
		for _, sn := range snaps {
			r, ok := got[sn.c.id]
			switch {
			case unsettled(sn):
			case sn.deleted && ok:
				return true
			case !sn.deleted && !ok:
				return true
			case ok && (r.Total < sn.inserted || r.Opened < sn.opened):
				return true
			}
		}
	}
	return false
}

type checkResult struct {
	reads, stale int64
	hitRate      float64
}

// runChecker runs writers through write and readers through each of
// readers for d.
func (w *checkWorld) run(t *testing.T, d time.Duration, write db.Store, readers []db.Store, delays []time.Duration, caches ...*cache.Cache) checkResult {
	var reads, stale atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Three writers, each writing once per 30 reads: one write in ten
	// reads, the ratio the fixed 2 ms pause gave on an idle machine.
	const writers, readsPerWrite = 3, 30
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				w.write(t, write, rng)
				// Writers wait for readsPerWrite reads before the next
				// write, so that reads outnumber writes, as in the product,
				// by the same ratio however loaded the machine is: with a
				// fixed pause instead, a slow machine's few reads met as
				// many writes, and the hit rates of two runs (the scopes
				// control) compared noise.
				for next := reads.Load() + readsPerWrite; reads.Load() < next; {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Microsecond):
					}
				}
			}
		}(uint64(i))
	}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 2))
			k := int(seed) % len(readers)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if w.read(t, readers[k], rng, delays[k]) {
					if n := stale.Add(1); n <= 3 {
						t.Logf("stale read %d on reader %d", n, k)
					}
				}
				reads.Add(1)
			}
		}(uint64(i + 10))
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	res := checkResult{reads: reads.Load(), stale: stale.Load()}
	var hits, others int64
	for _, c := range caches {
		s := c.Snapshot()
		hits += s.Hits + s.Stale
		others += s.Misses + s.Bypasses
	}
	if hits+others > 0 {
		res.hitRate = float64(hits) / float64(hits+others)
	}
	return res
}

// TestCheckerNoStaleReads runs the checker on each tier and across two
// instances, then the two controls: without scopes (every write
// invalidates as in the table-wide design: the hit rate falls) and
// without invalidation (writes bypass the decorator: the checker must see
// stale reads, or it proves nothing).
func TestCheckerNoStaleReads(t *testing.T) {
	const d = 1500 * time.Millisecond
	run := func(t *testing.T, scopesOff bool, redisURL string, instances int, invalidate bool) checkResult {
		pool := newPool(t, nil)
		w := newCheckWorld(t, pool, 4, 5, 3)
		ns := fmt.Sprintf("chk%d", time.Now().UnixNano())
		var stores []db.Store
		var caches []*cache.Cache
		var delays []time.Duration
		for i := 0; i < instances; i++ {
			s := newCachedConfig(t, pool, cache.Config{Namespace: ns, RedisURL: redisURL, L1MaxBytes: 32 << 20, RedisTimeout: time.Second, ScopesDisabled: scopesOff})
			stores = append(stores, s)
			caches = append(caches, s.Cache())
			// The second instance learns of the first's writes through
			// pub/sub, a few milliseconds later: its readers start 100 ms
			// after their snapshot.
			delays = append(delays, time.Duration(i)*100*time.Millisecond)
		}
		var writer db.Store = stores[0]
		if !invalidate {
			writer = db.NewStore(pool, 5*time.Second)
		}
		res := w.run(t, d, writer, stores, delays, caches...)
		t.Logf("%d reads, %d stale, hit rate %.3f", res.reads, res.stale, res.hitRate)
		return res
	}
	var scoped checkResult
	t.Run("l1", func(t *testing.T) {
		scoped = run(t, false, "", 1, true)
		if scoped.stale != 0 {
			t.Fatalf("%d stale reads", scoped.stale)
		}
	})
	t.Run("l1+redis", func(t *testing.T) {
		if r := run(t, false, redistest.Start(t).URL(), 1, true); r.stale != 0 {
			t.Fatalf("%d stale reads", r.stale)
		}
	})
	t.Run("two instances", func(t *testing.T) {
		if r := run(t, false, redistest.Start(t).URL(), 2, true); r.stale != 0 {
			t.Fatalf("%d stale reads", r.stale)
		}
	})
	t.Run("control: scopes disabled", func(t *testing.T) {
		r := run(t, true, "", 1, true)
		if r.stale != 0 {
			t.Fatalf("%d stale reads", r.stale)
		}
		if !(scoped.hitRate > r.hitRate) {
			t.Fatalf("hit rate with scopes %.3f, without %.3f: scoping saved nothing", scoped.hitRate, r.hitRate)
		}
	})
	t.Run("control: invalidation disabled", func(t *testing.T) {
		if r := run(t, false, "", 1, false); r.stale == 0 {
			t.Fatalf("no stale read in %d reads with writes bypassing the cache: the checker cannot fail", r.reads)
		}
	})
}
