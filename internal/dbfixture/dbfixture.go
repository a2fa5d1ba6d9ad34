// Package dbfixture makes the rows tests need — users, API keys, campaigns,
// emails — in one place, in the manner of coder's dbgen: each function takes
// a seed whose zero fields get unique, valid defaults, inserts through the
// sqlc queries (so the rows obey every constraint), fails the test on an
// error, and returns what was inserted.
//
// The db package's own tests cannot import it (db would import itself);
// every other package's tests use it.
package dbfixture

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
)

// seq makes default names unique within a test binary; the uuid makes them
// unique across binaries sharing a server.
var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s%d-%s", prefix, seq.Add(1), uuid.NewString()[:8])
}

// User inserts a user. Zero fields default: a unique email, the name "Test".
func User(t testing.TB, q db.Querier, seed db.CreateUserParams) db.User {
	t.Helper()
	if seed.Email == "" {
		seed.Email = unique("user") + "@example.com"
	}
	if seed.Name == "" {
		seed.Name = "Test"
	}
	u, err := q.CreateUser(context.Background(), seed)
	if err != nil {
		t.Fatalf("dbfixture: create user %s: %v", seed.Email, err)
	}
	return u
}

// UserWithKey creates a user and its first API key in one transaction, as
// the admin route does, and returns the key in clear.
func UserWithKey(t testing.TB, s db.Store, seed db.CreateUserParams) (db.User, string) {
	t.Helper()
	if seed.Email == "" {
		seed.Email = unique("user") + "@example.com"
	}
	if seed.Name == "" {
		seed.Name = "Test"
	}
	u, k, err := apikey.CreateUser(context.Background(), s, seed.Email, seed.Name)
	if err != nil {
		t.Fatalf("dbfixture: create user %s with a key: %v", seed.Email, err)
	}
	return u, k.Plain
}

// Campaign inserts a campaign. Zero fields default: a new user as owner,
// a unique name, status active.
func Campaign(t testing.TB, q db.Querier, seed db.CreateCampaignParams) db.Campaign {
	t.Helper()
	if seed.UserID == uuid.Nil {
		seed.UserID = User(t, q, db.CreateUserParams{}).ID
	}
	if seed.Name == "" {
		seed.Name = unique("Campaign ")
	}
	if seed.Status == "" {
		seed.Status = db.CampaignStatusActive
	}
	c, err := q.CreateCampaign(context.Background(), seed)
	if err != nil {
		t.Fatalf("dbfixture: create campaign: %v", err)
	}
	return c
}

// Emails inserts n emails into campaign, created at at (the zero time is
// now), through COPY, and returns the rows as inserted. Recipients are
// r0@example.com, r1@example.com, …
func Emails(t testing.TB, q db.Querier, campaign uuid.UUID, n int, at time.Time) []db.InsertEmailsParams {
	t.Helper()
	if at.IsZero() {
		at = time.Now()
	}
	news := make([]db.NewEmail, n)
	for i := range news {
		news[i] = db.NewEmail{Recipient: fmt.Sprintf("r%d@example.com", i), Subject: "s", Body: "b"}
	}
	rows := db.EmailRows(campaign, news, at)
	if _, err := q.InsertEmails(context.Background(), rows); err != nil {
		t.Fatalf("dbfixture: insert %d emails: %v", n, err)
	}
	return rows
}
