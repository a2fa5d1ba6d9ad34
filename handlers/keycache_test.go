package handlers

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/cachetest"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// TestKeyLookupCachedUnderCacheDisabled: with CACHE_DISABLED, data reads
// go to PostgreSQL but the API-key lookup is served from the cache, and a
// revocation still refuses the key's next request — at once on the
// instance that revoked it, and on another instance sharing Redis as soon
// as the invalidation reaches it (pub/sub, as for every cached read).
func TestKeyLookupCachedUnderCacheDisabled(t *testing.T) {
	for _, tier := range []string{"l1", "l1+redis"} {
		t.Run(tier, func(t *testing.T) {
			cfg := cache.Config{Namespace: "keys", Disabled: true}
			if tier != "l1" {
				cfg.RedisURL = redistest.Start(t).URL()
			}
			var cacheA *cache.Cache
			a := newEnv(t, func(d *Deps) { d.Store, cacheA = cachetest.Wrap(t, d.Store, cfg, d.Log) })
			_, key := a.user()
			c := a.campaign(key, 0)
			path := "/api/v1/campaigns/" + c.ID.String()

			for range 3 {
				a.do("GET", path, key, nil).want(200)
			}
			s := cacheA.Snapshot()
			if k := s.Query("GetAPIKeyByHash"); k.HitsL1 < 2 {
				t.Fatalf("key lookup under CACHE_DISABLED: %+v, want L1 hits", k)
			}
			if g := s.Query("GetCampaign"); g.HitsL1+g.HitsL2 != 0 || g.Bypasses < 3 {
				t.Fatalf("campaign read under CACHE_DISABLED: %+v, want bypasses only", g)
			}

			var b *env
			if cfg.RedisURL != "" {
				// A second instance on the same database and Redis, its
				// key lookup cached before the revocation.
				inner := db.NewStore(a.pool, 2*time.Second)
				storeB, cacheB := cachetest.Wrap(t, inner, cfg, nil)
				log := slog.New(slog.NewJSONHandler(a.logs, nil))
				b = &env{t: t, e: New(Deps{Store: storeB, Pool: a.pool, AdminKey: testAdminKey, RequestTimeout: 5 * time.Second, Log: log}), pool: a.pool, store: storeB, logs: a.logs}
				b.do("GET", path, key, nil).want(200)
				b.do("GET", path, key, nil).want(200)
				if k := cacheB.Snapshot().Query("GetAPIKeyByHash"); k.HitsL1+k.HitsL2 == 0 {
					t.Fatalf("other instance's key lookup: %+v, want a hit before the revocation", k)
				}
			}

			h := apikey.Hash(key)
			row, err := a.store.GetAPIKeyByHash(context.Background(), h[:])
			if err != nil {
				t.Fatal(err)
			}
			a.do("DELETE", "/api/v1/keys/"+row.ID.String(), testAdminKey, nil).want(204)
			a.do("GET", path, key, nil).want(401)
			if b == nil {
				return
			}
			deadline := time.Now().Add(2 * time.Second)
			for b.do("GET", path, key, nil).Code != 401 {
				if time.Now().After(deadline) {
					t.Fatal("the other instance still accepts the revoked key after 2 s")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
