package handlers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/cachetest"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// withCache wires the caching decorator as internal/app does (through
// cachetest, the one wiring of it in tests).
func withCache(t testing.TB, redisURL string) (envOpt, **cache.Cache) {
	var built *cache.Cache
	return func(d *Deps) {
		d.Store, built = cachetest.Wrap(t, d.Store, cache.Config{Namespace: "h", RedisURL: redisURL}, d.Log)
		d.APIMiddleware = append(d.APIMiddleware, CacheHeader())
		d.Cache = built
	}, &built
}

func TestCachedEndpointsSeeEveryWrite(t *testing.T) {
	for _, tier := range []string{"l1", "l1+redis"} {
		t.Run(tier, func(t *testing.T) {
			url := ""
			if tier != "l1" {
				url = redistest.Start(t).URL()
			}
			opt, _ := withCache(t, url)
			e := newEnv(t, opt)
			_, key := e.user()
			c := e.campaign(key, 3)
			summary := "/api/v1/campaigns/" + c.ID.String() + "/summary"
			daily := "/api/v1/campaigns/" + c.ID.String() + "/daily-stats?days=2"
			stats := "/api/v1/me/statistics"
			campaign := "/api/v1/campaigns/" + c.ID.String()
			for _, p := range []string{summary, daily, stats, campaign} {
				// The campaign itself was read (and cached) by the routes before.
				if h := e.do("GET", p, key, nil).want(200).Header().Get(HeaderXCache); h != "miss" && p != campaign {
					t.Fatalf("first GET %s: X-Cache %q, want miss", p, h)
				}
				if h := e.do("GET", p, key, nil).want(200).Header().Get(HeaderXCache); h != "hit" {
					t.Fatalf("second GET %s: X-Cache %q, want hit", p, h)
				}
			}

			var list []emailJSON
			var page struct {
				Items []emailJSON `json:"items"`
			}
			e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, nil).want(200).json(&page)
			list = page.Items
			if len(list) == 0 {
				t.Fatal("no emails listed")
			}
			e.do("POST", "/api/v1/emails/"+list[0].ID.String()+"/opened", key, nil).want(200)
			var sum summaryJSON
			r := e.do("GET", summary, key, nil).want(200)
			r.json(&sum)
			if sum.Opened != 1 || r.Header().Get(HeaderXCache) != "miss" {
				t.Fatalf("summary after an open: %+v, X-Cache %q", sum, r.Header().Get(HeaderXCache))
			}
			var st statisticsJSON
			e.do("GET", stats, key, nil).want(200).json(&st)
			if st.Opened != 1 {
				t.Fatalf("statistics after an open: %+v", st)
			}
			// A bulk event's batch bumps the user's scopes from the owner
			// each applied row returns.
			e.do("POST", "/api/v1/events", key, map[string]any{"events": []map[string]any{{
				"id": uuid.NewString(), "email_id": list[1].ID, "kind": "replied", "at": "2026-12-01T09:00:00Z"}}}).want(200)
			e.do("GET", stats, key, nil).want(200).json(&st)
			if st.Replied != 1 {
				t.Fatalf("statistics after a bulk reply: %+v", st)
			}
			e.do("POST", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, map[string]any{"emails": sampleEmails(2)}).want(201)
			e.do("GET", summary, key, nil).want(200).json(&sum)
			if sum.Total != 5 {
				t.Fatalf("summary after a bulk insert: %+v", sum)
			}
			var days []dayCountJSON
			e.do("GET", daily, key, nil).want(200).json(&days)
			if days[len(days)-1].Count != 5 {
				t.Fatalf("daily stats after a bulk insert: %+v", days)
			}
			e.do("PATCH", campaign, key, map[string]any{"name": "Renamed"}).want(200)
			var got campaignJSON
			e.do("GET", campaign, key, nil).want(200).json(&got)
			if got.Name != "Renamed" {
				t.Fatalf("campaign after an update: %+v", got)
			}
			e.do("DELETE", campaign, key, nil).want(204)
			e.do("GET", campaign, key, nil).want(404)
			e.do("GET", summary, key, nil).want(404)
		})
	}
}

func TestCacheAdminRoutes(t *testing.T) {
	opt, c := withCache(t, redistest.Start(t).URL())
	e := newEnv(t, opt)
	_, key := e.user()
	camp := e.campaign(key, 1)
	summary := "/api/v1/campaigns/" + camp.ID.String() + "/summary"
	e.do("GET", summary, key, nil).want(200)
	e.do("GET", summary, key, nil).want(200)

	e.do("GET", "/db-monitor/cache", "", nil).want(401).problem()
	var snap cache.Snapshot
	e.do("GET", "/db-monitor/cache", testAdminKey, nil).want(200).json(&snap)
	if !snap.Redis.Configured || !snap.Redis.Up || snap.Hits < 1 || snap.L1.Entries < 1 || len(snap.Queries) == 0 {
		t.Fatalf("snapshot = %+v", snap)
	}
	if rates := (*c).QueryHitRates(); rates["GetCampaignSummary"] != 0.5 {
		t.Fatalf("hit rates = %v, want GetCampaignSummary 0.5", rates)
	}

	// The summary reads campaigns and the counters, not emails; but a write
	// to emails fires the triggers that keep the counters, so invalidating
	// emails invalidates them too.
	e.do("GET", summary, key, nil).want(200)
	e.do("POST", "/db-monitor/cache/invalidate", testAdminKey, map[string]any{"table": "emails"}).want(200)
	if h := e.do("GET", summary, key, nil).want(200).Header().Get(HeaderXCache); h != "miss" {
		t.Fatalf("after invalidating emails: X-Cache %q, want miss (the counters its triggers write)", h)
	}
	e.do("POST", "/db-monitor/cache/invalidate", testAdminKey, map[string]any{"table": "campaign_email_counts"}).want(200)
	if h := e.do("GET", summary, key, nil).want(200).Header().Get(HeaderXCache); h != "miss" {
		t.Fatalf("after invalidating campaign_email_counts: X-Cache %q, want miss", h)
	}
	p := e.do("POST", "/db-monitor/cache/invalidate", testAdminKey, map[string]any{"table": "nope"}).want(400).problem()
	if len(p.Errors) != 1 || p.Errors[0].Field != "table" {
		t.Fatalf("problem = %+v", p)
	}
	e.do("POST", "/db-monitor/cache/invalidate", testAdminKey, map[string]any{}).want(400).problem()

	var cleared clearedJSON
	e.do("DELETE", "/db-monitor/cache", testAdminKey, nil).want(200).json(&cleared)
	if cleared.RedisKeysRemoved < 1 {
		t.Fatalf("cleared = %+v", cleared)
	}
	if h := e.do("GET", summary, key, nil).want(200).Header().Get(HeaderXCache); h != "miss" {
		t.Fatalf("after clearing: X-Cache %q, want miss", h)
	}
}

// foreignWritesKeepHits runs round, another user's writes checked to keep a
// user's reads cached, until a round passes, at most three times. round
// makes its own other user each time and returns what missed, or "".
//
// Why more than one round: the cache keeps ScopeSlots hashed version slots
// per scope, one per (value, column), so two users' values share a slot
// with a small probability (a few in a hundred for a round's writes and
// reads here). Such a pair invalidates each other's entries, which the
// design allows: a collision adds invalidations, never removes one. A
// scoping bug misses in every round; a collision in three fresh rounds
// running is about one in twenty thousand.
func foreignWritesKeepHits(t *testing.T, round func() string) {
	t.Helper()
	var missed []string
	for range 3 {
		m := round()
		if m == "" {
			return
		}
		missed = append(missed, m)
	}
	t.Fatalf("another user's writes invalidated the reads in every round: %s", strings.Join(missed, "; "))
}

// TestCampaignPageScopedToItsUser: a page of campaigns with their figures
// stays cached through another user's writes of every kind, and reflects
// each of its own user's writes on the next read.
func TestCampaignPageScopedToItsUser(t *testing.T) {
	opt, _ := withCache(t, "")
	e := newEnv(t, opt)
	_, keyA := e.user()
	a := e.campaign(keyA, 2)
	const pageA = "/api/v1/campaigns?include=stats"
	read := func() (page[campaignJSON], string) {
		var p page[campaignJSON]
		r := e.do("GET", pageA, keyA, nil).want(200)
		r.json(&p)
		return p, r.Header().Get(HeaderXCache)
	}
	read()
	if _, h := read(); h != "hit" {
		t.Fatalf("second read: X-Cache %q, want hit", h)
	}
	foreignWritesKeepHits(t, func() string {
		read() // cached again, if the round before invalidated it
		_, keyB := e.user()
		b := e.campaign(keyB, 2)
		var bEmails page[emailJSON]
		e.do("GET", "/api/v1/campaigns/"+b.ID.String()+"/emails", keyB, nil).want(200).json(&bEmails)
		otherWrites := []func(){
			func() { e.do("POST", "/api/v1/emails/"+bEmails.Items[0].ID.String()+"/opened", keyB, nil).want(200) },
			func() {
				e.do("POST", "/api/v1/campaigns/"+b.ID.String()+"/emails", keyB, map[string]any{"emails": sampleEmails(3)}).want(201)
			},
			func() { e.campaign(keyB, 0) },
			func() { e.do("DELETE", "/api/v1/campaigns/"+b.ID.String(), keyB, nil).want(204) },
		}
		for i, w := range otherWrites {
			w()
			if _, h := read(); h != "hit" {
				return fmt.Sprintf("after another user's write %d: X-Cache %q, want hit", i, h)
			}
		}
		return ""
	})
	var aEmails page[emailJSON]
	e.do("GET", "/api/v1/campaigns/"+a.ID.String()+"/emails", keyA, nil).want(200).json(&aEmails)
	ownWrites := []struct {
		name  string
		write func()
		check func(page[campaignJSON]) bool
	}{
		{"open", func() { e.do("POST", "/api/v1/emails/"+aEmails.Items[0].ID.String()+"/opened", keyA, nil).want(200) },
			func(p page[campaignJSON]) bool { return len(p.Items) == 1 && p.Items[0].Stats.Opened == 1 }},
		{"bulk insert", func() {
			e.do("POST", "/api/v1/campaigns/"+a.ID.String()+"/emails", keyA, map[string]any{"emails": sampleEmails(4)}).want(201)
		}, func(p page[campaignJSON]) bool { return len(p.Items) == 1 && p.Items[0].Stats.Total == 6 }},
		{"new campaign", func() { e.campaign(keyA, 1) },
			func(p page[campaignJSON]) bool { return len(p.Items) == 2 && p.Items[0].Stats.Total == 1 }},
		{"deleted campaign", func() { e.do("DELETE", "/api/v1/campaigns/"+a.ID.String(), keyA, nil).want(204) },
			func(p page[campaignJSON]) bool { return len(p.Items) == 1 && p.Items[0].ID != a.ID }},
	}
	for _, w := range ownWrites {
		w.write()
		p, h := read()
		if h != "miss" || !w.check(p) {
			t.Fatalf("after the user's own %s: X-Cache %q, page %+v", w.name, h, p)
		}
	}
}

// TestSummaryInvalidatedThroughTheCounters: the summary and statistics read
// campaign_email_counts, which only the triggers on emails write. An open
// and a bulk insert in the campaign reach them (dbgen follows the
// triggers); an open, a bulk insert or a new campaign of another user, and
// an open in another campaign of the same user, leave the summary cached.
func TestSummaryInvalidatedThroughTheCounters(t *testing.T) {
	opt, _ := withCache(t, "")
	e := newEnv(t, opt)
	_, keyA := e.user()
	a := e.campaign(keyA, 3)
	a2 := e.campaign(keyA, 2)
	summary := "/api/v1/campaigns/" + a.ID.String() + "/summary"
	read := func(path string) (string, func(any)) {
		r := e.do("GET", path, keyA, nil).want(200)
		return r.Header().Get(HeaderXCache), func(v any) { r.json(v) }
	}
	firstEmail := func(c campaignJSON, key string) string {
		var p page[emailJSON]
		e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, nil).want(200).json(&p)
		return p.Items[0].ID.String()
	}
	foreignWritesKeepHits(t, func() string {
		// Cached again, if the round before invalidated them.
		read(summary)
		read("/api/v1/me/statistics")
		_, keyB := e.user()
		b := e.campaign(keyB, 2)
		for i, w := range []func(){
			func() { e.do("POST", "/api/v1/emails/"+firstEmail(b, keyB)+"/opened", keyB, nil).want(200) },
			func() {
				e.do("POST", "/api/v1/campaigns/"+b.ID.String()+"/emails", keyB, map[string]any{"emails": sampleEmails(3)}).want(201)
			},
			func() { e.campaign(keyB, 1) },
		} {
			w()
			if h, _ := read(summary); h != "hit" {
				return fmt.Sprintf("summary after another user's write %d: X-Cache %q, want hit", i, h)
			}
			if h, _ := read("/api/v1/me/statistics"); h != "hit" {
				return fmt.Sprintf("statistics after another user's write %d: X-Cache %q, want hit", i, h)
			}
		}
		return ""
	})
	e.do("POST", "/api/v1/emails/"+firstEmail(a2, keyA)+"/opened", keyA, nil).want(200)
	if h, _ := read(summary); h != "hit" {
		t.Fatalf("summary after an open in the user's other campaign: X-Cache %q, want hit", h)
	}
	var st statisticsJSON
	if h, decode := read("/api/v1/me/statistics"); h != "miss" {
		t.Fatalf("statistics after the user's own open: X-Cache %q, want miss", h)
	} else if decode(&st); st.Opened != 1 || st.Emails != 5 {
		t.Fatalf("statistics after the user's own open: %+v", st)
	}
	var sum summaryJSON
	e.do("POST", "/api/v1/emails/"+firstEmail(a, keyA)+"/opened", keyA, nil).want(200)
	if h, decode := read(summary); h != "miss" {
		t.Fatalf("summary after an open in its campaign: X-Cache %q, want miss", h)
	} else if decode(&sum); sum.Opened != 1 || sum.Total != 3 {
		t.Fatalf("summary after an open in its campaign: %+v", sum)
	}
	e.do("POST", "/api/v1/campaigns/"+a.ID.String()+"/emails", keyA, map[string]any{"emails": sampleEmails(4)}).want(201)
	if h, decode := read(summary); h != "miss" {
		t.Fatalf("summary after a bulk insert in its campaign: X-Cache %q, want miss", h)
	} else if decode(&sum); sum.Total != 7 || sum.Opened != 1 {
		t.Fatalf("summary after a bulk insert in its campaign: %+v", sum)
	}
	if h, _ := read(summary); h != "hit" {
		t.Fatalf("summary read again: X-Cache %q, want hit", h)
	}
}

// TestXCacheOnErrors: a response the error handler writes (a 404 after a
// cached read found nothing) reports X-Cache as a success does, with and
// without gzip on the way out; a route that made no cached read has none.
func TestXCacheOnErrors(t *testing.T) {
	opt, _ := withCache(t, "")
	e := newEnv(t, opt)
	_, key := e.user()
	for _, accept := range []string{"", "gzip"} {
		req := newRequest("GET", "/api/v1/campaigns/00000000-0000-0000-0000-000000000000", key, nil, "")
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		if h := e.serve(req).want(404).Header().Get(HeaderXCache); h != "miss" && h != "hit" {
			t.Fatalf("404 with Accept-Encoding %q: X-Cache %q, want miss or hit", accept, h)
		}
	}
	if h := e.do("GET", "/health", "", nil).Header().Get(HeaderXCache); h != "" {
		t.Fatalf("/health: X-Cache %q, want none", h)
	}
}

// TestXCacheUnderAWrappedContext: when an API middleware wraps the
// request's context before CacheHeader, so the context CacheHeader finds
// is not the request's requestState, X-Cache is still reported (through a
// context of its own) and the principal is still seen.
func TestXCacheUnderAWrappedContext(t *testing.T) {
	opt, _ := withCache(t, "")
	wrapped := 0
	e := newEnv(t, func(d *Deps) {
		d.APIMiddleware = append(d.APIMiddleware, func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				wrapped++
				c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), wrapKey{}, 1)))
				return next(c)
			}
		})
	}, opt)
	_, key := e.user()
	c := e.campaign(key, 0)
	path := "/api/v1/campaigns/" + c.ID.String()
	e.do("GET", path, key, nil).want(200)
	if h := e.do("GET", path, key, nil).want(200).Header().Get(HeaderXCache); h != "hit" {
		t.Fatalf("second GET: X-Cache %q, want hit", h)
	}
	if wrapped == 0 {
		t.Fatal("the wrapping middleware never ran")
	}
}

type wrapKey struct{}
