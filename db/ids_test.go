package db

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/internal/sqlcname"
)

func TestNewEmailIDEncodesItsTime(t *testing.T) {
	at := time.Date(2026, 11, 26, 23, 59, 59, 987654321, time.UTC)
	id, createdAt := NewEmailID(at)
	if id.Version() != 7 {
		t.Fatalf("version = %d, want 7", id.Version())
	}
	if want := at.Truncate(time.Millisecond); !createdAt.Equal(want) || !EmailTime(id).Equal(want) {
		t.Fatalf("created_at %v, EmailTime %v, want %v", createdAt, EmailTime(id), want)
	}
}

// The Go and SQL readings of an id's time must agree to the microsecond, or
// the CHECK constraint rejects rows and lookups miss their partition.
func TestEmailTimeMatchesSQL(t *testing.T) {
	_, pool := newStore(t)
	for _, at := range []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(2026, 2, 28, 12, 0, 0, 1_000_000, time.UTC),
		time.Now(),
	} {
		id, createdAt := NewEmailID(at)
		var got time.Time
		if err := pool.QueryRow(context.Background(), "SELECT uuid7_time($1)", id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(createdAt) {
			t.Errorf("uuid7_time(%s) = %v, Go says %v", id, got, createdAt)
		}
	}

	// And over many random milliseconds from 1970 to 2200, where floating
	// point rounding would show if it could.
	ids := make([]uuid.UUID, 5000)
	times := make([]time.Time, len(ids))
	for i := range ids {
		ms := rand.Int64N(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
		ids[i], times[i] = NewEmailID(time.UnixMilli(ms))
	}
	var mismatches int
	err := pool.QueryRow(context.Background(),
		"SELECT count(*) FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, ts) WHERE uuid7_time(id) <> ts",
		ids, times).Scan(&mismatches)
	if err != nil || mismatches != 0 {
		t.Fatalf("%d of %d ids disagree between Go and SQL (%v)", mismatches, len(ids), err)
	}
}

// Every statement sqlc generated here is named by sqlcname, which is how
// errors carry their operation.
func TestGeneratedStatementsAreNamed(t *testing.T) {
	if got := sqlcname.Of(getCampaign); got != "GetCampaign" {
		t.Errorf("sqlcname.Of(getCampaign) = %q", got)
	}
}

// BenchmarkQueryName is the cost of naming a statement, which the error
// wrapper and the tracer each do once per statement.
//
//	go test ./db -run '^$' -bench QueryName -benchmem
func BenchmarkQueryName(b *testing.B) {
	sql := getCampaign
	for b.Loop() {
		if sqlcname.Of(sql) != "GetCampaign" {
			b.Fatal("wrong name")
		}
	}
}
