package db

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore is a Store on a fresh migrated database, with this month's
// partition in place.
func newStore(t *testing.T) (*PgStore, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	s := NewStore(pool, 5*time.Second)
	if _, err := s.EnsureEmailPartitions(context.Background(), EnsureEmailPartitionsParams{FromMonth: time.Now(), Months: 1}); err != nil {
		t.Fatalf("ensure partitions: %v", err)
	}
	return s, pool
}

func mustUser(t *testing.T, q Querier) User {
	t.Helper()
	u, err := q.CreateUser(context.Background(), CreateUserParams{Email: uuid.NewString() + "@example.com", Name: "Test"})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

func mustCampaign(t *testing.T, q Querier, userID uuid.UUID) Campaign {
	t.Helper()
	c, err := q.CreateCampaign(context.Background(), CreateCampaignParams{UserID: userID, Name: "Launch", Status: "draft"})
	if err != nil {
		t.Fatalf("create campaign: %v", err)
	}
	return c
}

func someEmails(n int) []NewEmail {
	out := make([]NewEmail, n)
	for i := range out {
		out[i] = NewEmail{Recipient: "lead@example.com", Subject: "Hello", Body: "Hi there"}
	}
	return out
}
