package db

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestTypedErrors(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	u := mustUser(t, s)
	c := mustCampaign(t, s, u.ID)

	canceled, cancel := context.WithCancel(ctx)
	cancel()

	// A server-side statement_timeout, not a client deadline: the error
	// comes back from PostgreSQL as SQLSTATE 57014.
	slowCfg := pool.Config().Copy()
	slowCfg.ConnConfig.RuntimeParams["statement_timeout"] = "1"
	slowPool, err := pgxpool.NewWithConfig(ctx, slowCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer slowPool.Close()
	slow := NewStore(slowPool, 5*time.Second)

	// Nothing listens on port 1.
	deadPool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer deadPool.Close()
	dead := NewStore(deadPool, 5*time.Second)

	tests := []struct {
		name       string
		run        func() error
		kind       error
		op         string
		constraint string
	}{
		{"not found", func() error {
			_, err := s.GetUser(ctx, uuid.New())
			return err
		}, ErrNotFound, "GetUser", ""},
		{"conflict names the constraint", func() error {
			_, err := s.CreateUser(ctx, CreateUserParams{Email: strings.ToUpper(u.Email), Name: "Dup"})
			return err
		}, ErrConflict, "CreateUser", "users_email_key"},
		{"invalid reference", func() error {
			_, err := s.CreateCampaign(ctx, CreateCampaignParams{UserID: uuid.New(), Name: "x", Status: "draft"})
			return err
		}, ErrInvalidReference, "CreateCampaign", "campaigns_user_id_fkey"},
		{"invalid value", func() error {
			_, err := s.CreateCampaign(ctx, CreateCampaignParams{UserID: u.ID, Name: "", Status: CampaignStatusDraft})
			return err
		}, ErrInvalidValue, "CreateCampaign", "campaigns_name_check"},
		{"status outside the enum", func() error {
			// The enum refuses it before any constraint runs (22P02).
			_, err := s.CreateCampaign(ctx, CreateCampaignParams{UserID: u.ID, Name: "x", Status: "shouting"})
			return err
		}, ErrInvalidValue, "CreateCampaign", ""},
		{"invalid value in copy", func() error {
			_, err := s.InsertEmails(ctx, EmailRows(c.ID, []NewEmail{{Recipient: "x", Subject: "s", Body: "b"}}, time.Now()))
			return err
		}, ErrInvalidValue, `copy into "emails"`, "emails_recipient_check"},
		{"unavailable", func() error {
			_, err := dead.GetUser(ctx, u.ID)
			return err
		}, ErrUnavailable, "GetUser", ""},
		{"canceled", func() error {
			_, err := s.GetUser(canceled, u.ID)
			return err
		}, ErrCanceled, "GetUser", ""},
		{"statement timeout", func() error {
			_, err := slow.InsertEmails(ctx, EmailRows(c.ID, someEmails(200_000), time.Now()))
			return err
		}, ErrTimeout, `copy into "emails"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v is not %v", err, tc.kind)
			}
			var dbErr *Error
			if !errors.As(err, &dbErr) {
				t.Fatalf("error %T is not a *db.Error", err)
			}
			if dbErr.Op != tc.op || dbErr.Constraint != tc.constraint {
				t.Fatalf("op %q constraint %q, want %q %q", dbErr.Op, dbErr.Constraint, tc.op, tc.constraint)
			}
		})
	}
}

// The raw driver error stays reachable for logs.
func TestErrorKeepsDriverError(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.CreateCampaign(context.Background(), CreateCampaignParams{UserID: uuid.New(), Name: "x", Status: "draft"})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" {
		t.Fatalf("want the foreign-key PgError inside %v", err)
	}
}
