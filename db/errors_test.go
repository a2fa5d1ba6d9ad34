package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
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

// Every way the driver reports a connection that died is ErrUnavailable,
// however deeply it is wrapped; the context's own errors stay what they are.
func TestClassifyConnectionDeaths(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name string
		err  error
		kind error
	}{
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), ErrUnavailable},
		{"EOF", fmt.Errorf("read: %w", io.EOF), ErrUnavailable},
		{"connection reset", reset, ErrUnavailable},
		{"bare ECONNRESET", fmt.Errorf("x: %w", syscall.ECONNRESET), ErrUnavailable},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), ErrUnavailable},
		{"net.ErrClosed", fmt.Errorf("read: %w", net.ErrClosed), ErrUnavailable},
		{"conn closed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), ErrUnavailable},
		{"closed pool", fmt.Errorf("acquire: %w", puddle.ErrClosedPool), ErrUnavailable},
		{"connection lost", fmt.Errorf("%w: %w", ErrConnectionLost, errors.New("whatever the driver said")), ErrUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, ErrUnavailable},
		{"crash of another backend", &pgconn.PgError{Code: "57P02"}, ErrUnavailable},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, ErrUnavailable},
		{"deadline wins over EOF", fmt.Errorf("%w: %w", context.DeadlineExceeded, io.ErrUnexpectedEOF), ErrTimeout},
		{"cancel wins over EOF", fmt.Errorf("%w: %w", context.Canceled, io.ErrUnexpectedEOF), ErrCanceled},
		{"a statement of a tx that then lost its connection", fmt.Errorf("%w: %w", ErrConnectionLost,
			&Error{Kind: ErrInvalidValue, Op: "CreateCampaign"}), ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Classify("Op", tc.err)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Classify(%v) = %v, want %v", tc.err, err, tc.kind)
			}
		})
	}
	if err := Classify("Op", errors.New("a bug")); errors.Is(err, ErrUnavailable) {
		t.Fatalf("an unknown error became unavailable: %v", err)
	}
}
