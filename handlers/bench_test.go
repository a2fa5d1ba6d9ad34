package handlers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/logbuf"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/querystats"
	"github.com/replyrocket/replyrocket/internal/wire"
)

// BenchmarkGetSummary is one authenticated GET of a campaign summary through
// the whole router (middleware, auth, handler, JSON), on the plain store
// and through the in-process cache tier.
//
//	go test ./handlers -run '^$' -bench BenchmarkGetSummary -benchmem
func BenchmarkGetSummary(b *testing.B) {
	for _, tc := range []struct {
		name   string
		cached bool
	}{{"plain", false}, {"cached", true}} {
		b.Run(tc.name, func(b *testing.B) {
			// Access logs are written, as in production, but to nowhere.
			opts := []envOpt{prodLog(b)}
			if tc.cached {
				opt, _ := withCache(b, "")
				opts = append(opts, opt)
			}
			e := newEnv(b, opts...)
			_, key := e.user()
			c := e.campaign(key, 200)
			req := newRequest("GET", "/api/v1/campaigns/"+c.ID.String()+"/summary", key, nil, "")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rec := httptest.NewRecorder()
				e.e.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkGetCampaign is an authenticated GET of a campaign by id through
// the whole router, uncached (key lookup and campaign from PostgreSQL, as
// with no cache at all) and from the in-process tier, with 32 requests in
// flight as in the loadtest. Its CPU profile is the app's side of the
// loadtest's uncached row without the network and the load generator:
//
//	go test ./handlers -run '^$' -bench BenchmarkGetCampaign -benchmem -cpuprofile cpu.out
//
// Each goroutine writes its responses into one reusable benchWriter, so
// allocs/op are the request path's own: httptest.NewRecorder per request
// added seven (the recorder, its header map and body buffer, and the
// header snapshot WriteHeader clones), which net/http's server does not
// make. cached-httptest is the cached read through a new recorder per
// request, as this benchmark measured before, for the comparison. Neither
// counts net/http's own per-request allocations (its request, response
// and header map): they are the same for every handler, the bare
// server's included. cached-identity sends no Accept-Encoding, as wrk and
// the loadtest's GETs do: the path whose CPU the loadtest compares with
// the bare server's.
func BenchmarkGetCampaign(b *testing.B) {
	for _, tc := range []struct {
		name     string
		cached   bool
		recorder bool
		identity bool
	}{{"uncached", false, false, false}, {"cached", true, false, false}, {"cached-httptest", true, true, false}, {"cached-identity", true, false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := []envOpt{prodLog(b), prodPool(b)}
			if tc.cached {
				opts = append(opts, cachedStore(b))
			}
			e := newEnv(b, opts...)
			_, key := e.user()
			c := e.campaign(key, 1)
			path := "/api/v1/campaigns/" + c.ID.String()
			b.ReportAllocs()
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// One request per goroutine, served over and over: the
				// router copies a request before changing it, and building
				// one (httptest's 4 KiB reader among it) would be a third
				// of what a cached iteration measures.
				req := newRequest("GET", path, key, nil, "")
				if !tc.identity {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				w := &benchWriter{h: http.Header{}}
				for pb.Next() {
					if tc.recorder {
						rec := httptest.NewRecorder()
						e.e.ServeHTTP(rec, req)
						w.code, w.n = rec.Code, rec.Body.Len()
					} else {
						w.reset()
						e.e.ServeHTTP(w, req)
					}
					if w.code != 200 || w.n == 0 {
						b.Errorf("status %d, %d bytes", w.code, w.n)
						return
					}
				}
			})
		})
	}
}

// benchWriter is a ResponseWriter a benchmark goroutine reuses for every
// request, as a served connection reuses its buffers: it keeps the status
// and counts the body's bytes.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

// reset empties it for the next request, keeping the header map.
func (w *benchWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

func cachedStore(b *testing.B) envOpt {
	return func(d *Deps) {
		c, err := dbcache.NewCache(cache.Config{Namespace: "bench"}, prometheus.NewRegistry(), d.Log)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		s, err := dbcache.New(d.Store, c)
		if err != nil {
			b.Fatal(err)
		}
		d.Store = s
		// X-Cache, as internal/app wires it.
		d.APIMiddleware = append(d.APIMiddleware, CacheHeader())
	}
}

// prodPool puts the store on a pool configured as the app configures it in
// production (APP_ENV=prod sizes, the per-query tracer).
func prodPool(b *testing.B) envOpt {
	return func(d *Deps) {
		c, err := config.Load(func(k string) string {
			if k == "APP_ENV" {
				return "prod"
			}
			return ""
		})
		if err != nil {
			b.Fatal(err)
		}
		cfg := wire.Pool(c.DB)
		cfg.URL = pgtest.NewDatabase(b)
		pool, err := db.NewPool(context.Background(), cfg, querystats.New())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		store := db.NewStore(pool, cfg.Timeout)
		if _, err := store.EnsureEmailPartitions(context.Background(), db.EnsureEmailPartitionsParams{FromMonth: time.Now().AddDate(0, -1, 0), Months: 3}); err != nil {
			b.Fatal(err)
		}
		d.Store, d.Pool = store, pool
	}
}

// BenchmarkPostOpened is POST /api/v1/emails/{id}/opened through the whole
// router, the event batcher and the cached store, 32 requests in flight on
// 10 000 emails: one op is one acknowledged open (a repeat of an email is
// a duplicate by its derived event id). Its CPU profile is the server's
// side of the loadtest's single-event row:
//
//	go test ./handlers -run '^$' -bench PostOpened -cpuprofile /tmp/opened.prof
func BenchmarkPostOpened(b *testing.B) {
	opt, _ := withCache(b, "")
	e := newEnv(b, opt, prodLog(b))
	_, key := e.user()
	c := e.campaign(key, 0)
	for range 5 {
		e.do("POST", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, map[string]any{"emails": sampleEmails(2000)}).want(201)
	}
	rows, err := e.pool.Query(context.Background(), "SELECT id::text FROM emails")
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	var next atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(7919) % int64(len(ids))
			rec := httptest.NewRecorder()
			e.e.ServeHTTP(rec, newRequest("POST", "/api/v1/emails/"+ids[i]+"/opened", key, nil, ""))
			if rec.Code != 200 {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

// prodLog logs as a served process does in production (config.Config.Logger's
// JSON through internal/logbuf's buffer), to nowhere.
func prodLog(b *testing.B) envOpt {
	log, closeLog := logbuf.ServerLogger(io.Discard, config.Config{Env: "prod"}.Logger)
	b.Cleanup(closeLog)
	return func(d *Deps) { d.Log = log }
}
