package dbcache

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/dbfixture"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/sqlcname"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// queryCounter is a pgx tracer that counts the statements of one sqlc
// query and can hold each one back, to make concurrent misses overlap.
type queryCounter struct {
	name  string
	delay time.Duration
	n     atomic.Int64
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if sqlcname.Of(data.SQL) == q.name {
		q.n.Add(1)
		if q.delay > 0 {
			time.Sleep(q.delay)
		}
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// newPool opens a pool on a fresh database, with tracer when not nil.
func newPool(t testing.TB, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 16
	if tracer != nil {
		cfg.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newCached wraps a store on pool in a cache; redisURL empty means L1 only.
func newCached(t testing.TB, pool *pgxpool.Pool, redisURL, namespace string) *Store {
	t.Helper()
	// A generous Redis timeout: a loaded test machine must not flip the
	// cache out of service in tests that expect hits. The fail-open test
	// uses the default.
	return newCachedConfig(t, pool, cache.Config{Namespace: namespace, RedisURL: redisURL, L1MaxBytes: 32 << 20, RedisTimeout: time.Second})
}

func newCachedConfig(t testing.TB, pool *pgxpool.Pool, cfg cache.Config) *Store {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := NewCache(cfg, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := New(db.NewStore(pool, 5*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

type fixture struct {
	user     db.User
	campaign db.Campaign
	emails   []db.InsertEmailsParams
}

// seed creates a user with one campaign of n emails, straight through the
// pgx store so that the cache under test sees none of it.
func seed(t testing.TB, pool *pgxpool.Pool, n int) fixture {
	t.Helper()
	s := db.NewStore(pool, 5*time.Second)
	u := dbfixture.User(t, s, db.CreateUserParams{})
	c := dbfixture.Campaign(t, s, db.CreateCampaignParams{UserID: u.ID})
	f := fixture{user: u, campaign: c}
	if n > 0 {
		f.emails = insertEmails(t, s, c.ID, n)
	}
	return f
}

func insertEmails(t testing.TB, q db.Querier, campaign uuid.UUID, n int) []db.InsertEmailsParams {
	t.Helper()
	return dbfixture.Emails(t, q, campaign, n, time.Time{})
}

func (f fixture) summaryArg() db.GetCampaignSummaryParams {
	return db.GetCampaignSummaryParams{CampaignID: f.campaign.ID, UserID: f.user.ID}
}

// outcome runs fn with a recorder and returns how its reads were served.
func outcome(t testing.TB, fn func(ctx context.Context) error) string {
	t.Helper()
	ctx, rec := cache.WithRecorder(context.Background())
	if err := fn(ctx); err != nil {
		t.Fatal(err)
	}
	return rec.Outcome().String()
}

func init() {
	// Tests log through t.Log; keep the default logger quiet for the
	// decorators built without one.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}

// invalidationsOf counts every invalidation of table, scoped or not.
func invalidationsOf(s *Store, table string) int64 {
	ti := s.Cache().Snapshot().Invalidation(table)
	n := ti.TableWide
	for _, v := range ti.Scoped {
		n += v
	}
	return n
}
