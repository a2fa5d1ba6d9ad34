package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/cachetest"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// `partitions retain` subtracts the retired rows from the campaign counters
// outside the generated queries. A server caching through the same Redis
// must stop serving the old figures once the command returns, not after
// their TTL (10 minutes for a summary).
func TestRetainInvalidatesTheServersCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	redisURL := redistest.Start(t).URL()
	mustCLI(t, url, "seed", "--users", "1", "--campaigns-per-user", "1", "--emails-per-campaign", "300", "--months", "4")

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	server, _ := cachetest.Wrap(t, db.NewStore(pool, 5*time.Second), cache.Config{Namespace: "replyrocket", RedisURL: redisURL}, nil)
	var arg db.GetCampaignSummaryParams
	if err := pool.QueryRow(ctx, "SELECT id, user_id FROM campaigns").Scan(&arg.CampaignID, &arg.UserID); err != nil {
		t.Fatal(err)
	}
	before, err := server.GetCampaignSummary(ctx, arg)
	if err != nil || before.Total != 300 {
		t.Fatalf("summary before: %+v, %v", before, err)
	}

	var out, errOut bytes.Buffer
	env := map[string]string{"DATABASE_URL": url, "REDIS_URL": redisURL}
	if err := run(ctx, []string{"partitions", "retain", "--older-than", "2"}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("partitions retain: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "detached") {
		t.Fatalf("partitions retain detached nothing:\n%s", out.String())
	}
	var want int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM emails WHERE campaign_id = $1", arg.CampaignID).Scan(&want); err != nil || want >= 300 {
		t.Fatalf("%d emails left after retain, %v", want, err)
	}
	// The bump reached Redis before the command returned; this instance
	// mirrors it through pub/sub, a moment later.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := server.GetCampaignSummary(ctx, arg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached summary still says %d emails, %d remain: retain did not invalidate", got.Total, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without REDIS_URL the servers' caches are out of the command's reach: it
// says so rather than leave the operator to find stale figures.
func TestRetainWithoutRedisSaysTheCacheIsNotReached(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	var out, errOut bytes.Buffer
	env := map[string]string{"DATABASE_URL": url}
	if err := run(context.Background(), []string{"partitions", "retain", "--older-than", "2"}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), `POST /db-monitor/cache/invalidate {"table": "emails"}`) {
		t.Fatalf("stderr does not say how to invalidate:\n%s", errOut.String())
	}
}
