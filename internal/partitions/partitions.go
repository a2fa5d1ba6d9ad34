// Package partitions manages the monthly partitions of the emails table:
// creating them ahead of time, reporting them, and (opt-in) retiring old
// ones.
package partitions

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
)

// MonthStart is the first instant of t's month in UTC: partitions are UTC
// months.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Ensure creates the partitions of now's month and of the ahead months after
// it that do not exist yet, and returns the names it created. Any number of
// processes may run it at once.
func Ensure(ctx context.Context, q db.Querier, now time.Time, ahead int) ([]string, error) {
	if ahead < 0 {
		return nil, fmt.Errorf("ensure partitions: ahead must not be negative, got %d", ahead)
	}
	return EnsureRange(ctx, q, now, now.AddDate(0, ahead, 0))
}

// EnsureRange creates the missing partitions of every month from from's to
// to's, both included.
func EnsureRange(ctx context.Context, q db.Querier, from, to time.Time) ([]string, error) {
	first, last := MonthStart(from), MonthStart(to)
	if last.Before(first) {
		return nil, fmt.Errorf("ensure partitions: %s is before %s", to.Format("2006-01"), from.Format("2006-01"))
	}
	months := (last.Year()-first.Year())*12 + int(last.Month()-first.Month()) + 1
	created, err := q.EnsureEmailPartitions(ctx, db.EnsureEmailPartitionsParams{FromMonth: first, Months: int32(months)})
	if err != nil {
		return nil, fmt.Errorf("ensure partitions %s..%s: %w", first.Format("2006-01"), last.Format("2006-01"), err)
	}
	return created, nil
}

// Partition is one partition of emails.
type Partition struct {
	Name string `json:"name"`
	// From and To bound a monthly partition, [From, To); both are nil for
	// the DEFAULT partition.
	From *time.Time `json:"from"`
	To   *time.Time `json:"to"`
	// EstimatedRows comes from the planner's statistics; -1 when the
	// partition was never analyzed.
	EstimatedRows int64 `json:"estimated_rows"`
	TotalBytes    int64 `json:"total_bytes"`
	IsDefault     bool  `json:"is_default"`
}

// Report describes the partitions and what fell into DEFAULT.
type Report struct {
	Partitions []Partition `json:"partitions"`
	// DefaultRows counts (exactly) the rows in the DEFAULT partition: rows
	// whose month had no partition when they were written. Ensure for their
	// months moves them out.
	DefaultRows   int64      `json:"default_rows"`
	DefaultOldest *time.Time `json:"default_oldest"`
	DefaultNewest *time.Time `json:"default_newest"`
}

// boundsRE reads the bounds of a range partition as pg_get_expr prints them.
var boundsRE = regexp.MustCompile(`FROM \('([^']+)'\) TO \('([^']+)'\)`)

// List reports every partition of emails with bounds, estimated rows and
// size, and counts the rows sitting in DEFAULT.
func List(ctx context.Context, pool *pgxpool.Pool) (Report, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint,
		       pg_total_relation_size(c.oid)
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'emails'::regclass
		ORDER BY c.relname`)
	if err != nil {
		return Report{}, fmt.Errorf("list partitions: %w", err)
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		var bound string
		if err := r.Scan(&p.Name, &bound, &p.EstimatedRows, &p.TotalBytes); err != nil {
			return p, err
		}
		if bound == "DEFAULT" {
			p.IsDefault = true
			return p, nil
		}
		from, to, err := parseBounds(bound)
		if err != nil {
			return p, fmt.Errorf("partition %s: %w", p.Name, err)
		}
		p.From, p.To = &from, &to
		return p, nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("list partitions: %w", err)
	}
	rep := Report{Partitions: parts}
	err = pool.QueryRow(ctx, `SELECT count(*), min(created_at), max(created_at) FROM emails_default`).
		Scan(&rep.DefaultRows, &rep.DefaultOldest, &rep.DefaultNewest)
	if err != nil {
		return Report{}, fmt.Errorf("count rows in emails_default: %w", err)
	}
	return rep, nil
}

func parseBounds(bound string) (time.Time, time.Time, error) {
	m := boundsRE.FindStringSubmatch(bound)
	if m == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("unexpected bounds %q", bound)
	}
	from, err := parseTimestamptz(m[1])
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	to, err := parseTimestamptz(m[2])
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return from, to, nil
}

// parseTimestamptz reads PostgreSQL's ISO output, whose offset is "+00" or
// "+05:30" depending on the zone.
func parseTimestamptz(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05-07", "2006-01-02 15:04:05-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unexpected timestamp %q in partition bounds", s)
}

// Retired is what Retain did to one partition.
type Retired struct {
	Name    string    `json:"name"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Rows    int64     `json:"rows"`
	Dropped bool      `json:"dropped"`
}

// Retain detaches every monthly partition that ends on or before the start
// of the month olderThan months before now's. Detached tables keep their
// rows as ordinary tables; only with drop are they dropped, and the exact
// row count of each is returned either way, so nothing goes silently.
func Retain(ctx context.Context, pool *pgxpool.Pool, now time.Time, olderThan int, drop bool) ([]Retired, error) {
	if olderThan < 1 {
		return nil, fmt.Errorf("retain partitions: older-than must be at least 1 month, got %d", olderThan)
	}
	cutoff := MonthStart(now).AddDate(0, -olderThan, 0)
	rep, err := List(ctx, pool)
	if err != nil {
		return nil, err
	}
	var done []Retired
	for _, p := range rep.Partitions {
		if p.IsDefault || p.To.After(cutoff) {
			continue
		}
		r, err := retire(ctx, pool, p, drop)
		if err != nil {
			return done, err
		}
		done = append(done, r)
	}
	return done, nil
}

// retire detaches (and with drop, drops) one partition in one
// transaction, taking its rows out of the campaigns' counters
// (campaign_email_counts, kept by statement triggers on emails, which a
// DETACH or DROP does not fire). The detach locks the partition, so the
// count after it is exactly what leaves emails; a failure at any step
// rolls the whole partition back: still attached, counters untouched.
func retire(ctx context.Context, pool *pgxpool.Pool, p Partition, drop bool) (Retired, error) {
	r := Retired{Name: p.Name, From: *p.From, To: *p.To, Dropped: drop}
	ident := pgx.Identifier{p.Name}.Sanitize()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Not CONCURRENTLY: PostgreSQL refuses a concurrent detach while a
		// DEFAULT partition exists, and emails always has one (and a
		// concurrent detach cannot run in a transaction).
		if _, err := tx.Exec(ctx, "ALTER TABLE emails DETACH PARTITION "+ident); err != nil {
			return fmt.Errorf("detach %s: %w", p.Name, err)
		}
		if err := tx.QueryRow(ctx, fmt.Sprintf(subtractCounts, ident)).Scan(&r.Rows); err != nil {
			return fmt.Errorf("subtract the rows of %s from the campaign counters: %w", p.Name, err)
		}
		if !drop {
			return nil
		}
		if _, err := tx.Exec(ctx, "DROP TABLE "+ident); err != nil {
			return fmt.Errorf("drop detached %s (%d rows): %w", p.Name, r.Rows, err)
		}
		return nil
	})
	return r, err
}

// subtractCounts takes a detached partition's rows (%s, a quoted name) out
// of the campaign counters, locking the counter rows in campaign_id order
// as the triggers do, and returns how many rows the partition held.
const subtractCounts = `
WITH d AS (
    SELECT campaign_id,
           count(*)                           AS total,
           count(*) FILTER (WHERE is_opened)  AS opened,
           count(*) FILTER (WHERE is_replied) AS replied,
           count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
           count(*) FILTER (WHERE status = 'bounced')  AS bounced,
           count(*) FILTER (WHERE status = 'failed')   AS failed
    FROM %s
    GROUP BY campaign_id
), locked AS (
    SELECT k.campaign_id FROM campaign_email_counts k
    WHERE k.campaign_id IN (SELECT campaign_id FROM d)
    ORDER BY k.campaign_id
    FOR UPDATE
), updated AS (
    UPDATE campaign_email_counts c
    SET total   = c.total - d.total,
        opened  = c.opened - d.opened,
        replied = c.replied - d.replied,
        sent    = c.sent - d.sent,
        bounced = c.bounced - d.bounced,
        failed  = c.failed - d.failed
    FROM d
    WHERE c.campaign_id = d.campaign_id
      AND c.campaign_id IN (SELECT campaign_id FROM locked)
)
SELECT coalesce(sum(total), 0)::bigint FROM d`
