package dbcache

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
)

// A store On another pool (the background pool's jobs) runs its statements
// there and invalidates the shared cache as the original store does.
func TestOnRunsElsewhereAndInvalidates(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 1)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	other, err := pgxpool.New(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	bg := s.On(db.NewStore(other, time.Second))
	if bg.Cache() != s.Cache() {
		t.Fatal("On built another cache")
	}

	read := func(ctx context.Context) error { _, err := s.GetCampaignSummary(ctx, f.summaryArg()); return err }
	outcome(t, read)
	if o := outcome(t, read); o != "hit" {
		t.Fatalf("second read: %s, want hit", o)
	}
	before := other.Stat().AcquireCount()
	if _, err := bg.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	if other.Stat().AcquireCount() == before {
		t.Fatal("the write did not run on the other pool")
	}
	if o := outcome(t, read); o != "miss" {
		t.Fatalf("after a write through On: %s, want miss", o)
	}
}
