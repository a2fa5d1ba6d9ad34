package sqlguard

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckRefuses(t *testing.T) {
	for _, c := range []struct {
		name, sql string
		want      error
	}{
		{"delete", "DELETE FROM emails", ErrNotSelect},
		{"update", "UPDATE emails SET status = 'sent'", ErrNotSelect},
		{"insert", "INSERT INTO users (email, name) VALUES ('a@b.c', 'x')", ErrNotSelect},
		{"second statement", "SELECT 1; DELETE FROM emails", ErrNotOneStatement},
		{"second select", "SELECT 1; SELECT 2", ErrNotOneStatement},
		{"empty", "", ErrNotOneStatement},
		{"cte delete", "WITH d AS (DELETE FROM emails RETURNING id) SELECT count(*) FROM d", ErrModifyingCTE},
		{"nested cte update", "SELECT * FROM (WITH u AS (UPDATE users SET name = 'x' RETURNING id) SELECT id FROM u) s", ErrModifyingCTE},
		{"for update", "SELECT * FROM emails FOR UPDATE", ErrLocking},
		{"for share in subquery", "SELECT * FROM users WHERE id IN (SELECT user_id FROM campaigns FOR SHARE)", ErrLocking},
		{"select into", "SELECT * INTO copy_of_users FROM users", ErrSelectInto},
		{"pg_sleep", "SELECT pg_sleep(60)", ErrDeniedFunction},
		{"qualified pg_sleep", "SELECT pg_catalog.pg_sleep_for('1 minute')", ErrDeniedFunction},
		{"upper case", "SELECT PG_SLEEP(1)", ErrDeniedFunction},
		{"dblink", "SELECT * FROM dblink('dbname=x', 'DELETE FROM emails') AS t(x int)", ErrDeniedFunction},
		{"set_config", "SELECT set_config('default_transaction_read_only', 'off', false)", ErrDeniedFunction},
		{"read file", "SELECT pg_read_file('/etc/passwd')", ErrDeniedFunction},
		{"terminate", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", ErrDeniedFunction},
		{"advisory", "SELECT pg_advisory_lock(1)", ErrDeniedFunction},
		{"nextval", "SELECT nextval('s')", ErrDeniedFunction},
		{"lo", "SELECT lo_import('/etc/passwd')", ErrDeniedFunction},
		{"sql in a string", "SELECT query_to_xml('DELETE FROM emails', true, true, '')", ErrDeniedFunction},
		{"in where", "SELECT 1 FROM users WHERE pg_sleep(1) IS NULL", ErrDeniedFunction},
		{"explain", "EXPLAIN ANALYZE DELETE FROM emails", ErrNotSelect},
		{"set", "SET statement_timeout = 0", ErrNotSelect},
		{"syntax", "SELEC 1", ErrSyntax},
		{"param zero", "SELECT $0", ErrSyntax},
		{"too long", "SELECT " + strings.Repeat("1+", MaxLength) + "1", ErrTooLong},
		// Found by FuzzCheck: parses, but deparses to "SELECT $1::a()",
		// which does not.
		{"deparse does not parse", "SELECT(A(0!0)$1)", ErrNotCanonical},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Check(c.sql)
			if !errors.Is(err, c.want) {
				t.Fatalf("Check(%q) = %v, %v; want error %v", c.sql, got, err, c.want)
			}
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	for _, c := range []struct {
		name, sql string
		params    int
	}{
		{"plain", "SELECT * FROM emails WHERE recipient = 'a@b.c'", 0},
		{"params", "SELECT * FROM emails WHERE campaign_id = $1 AND created_at > $2", 2},
		{"join and cte", "WITH c AS (SELECT id FROM campaigns) SELECT count(*) FROM emails e JOIN c ON c.id = e.campaign_id", 0},
		{"union", "SELECT id FROM users UNION ALL SELECT id FROM campaigns", 0},
		{"trailing semicolon", "SELECT 1;", 0},
		{"values", "VALUES (1), (2)", 0},
		{"aggregate", "SELECT status, count(*) FROM emails GROUP BY status ORDER BY 2 DESC", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Check(c.sql)
			if err != nil {
				t.Fatalf("Check(%q): %v", c.sql, err)
			}
			if got.Params != c.params {
				t.Errorf("params = %d, want %d", got.Params, c.params)
			}
			if strings.Contains(got.SQL, ";") {
				t.Errorf("deparsed SQL %q keeps a statement separator", got.SQL)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"SELECT 1", "DELETE FROM x", "WITH d AS (DELETE FROM x RETURNING 1) SELECT 1", "SELECT pg_sleep(1)", "SELECT(A(0!0)$1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		c, err := Check(sql)
		if err != nil {
			return
		}
		// Whatever passes must pass again once deparsed: the text that runs
		// is itself a checked single SELECT.
		if _, err := Check(c.SQL); err != nil {
			t.Fatalf("deparsed %q of accepted %q is refused: %v", c.SQL, sql, err)
		}
	})
}

// BenchmarkCheck is the guard's cost per analyze-query request: parse,
// full-tree walk and deparse of a typical join.
func BenchmarkCheck(b *testing.B) {
	const sql = `SELECT e.id, e.subject FROM emails e JOIN campaigns c ON c.id = e.campaign_id
		WHERE c.user_id = $1 AND e.created_at >= $2 AND e.recipient LIKE '%@example.com' ORDER BY e.created_at DESC LIMIT 50`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Check(sql); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReason(t *testing.T) {
	for _, r := range reasons {
		got, ok := Reason(fmt.Errorf("check: %w", r))
		if !ok || got != r.Error() {
			t.Errorf("Reason(wrapped %v) = %q, %v", r, got, ok)
		}
	}
	if got, ok := Reason(errors.New("pg: relation \"secret\" does not exist")); ok {
		t.Errorf("a foreign error is a reason: %q", got)
	}
	// A refused query names its reason through Reason, end to end.
	_, err := Check("DELETE FROM users")
	if got, ok := Reason(err); !ok || got != ErrNotSelect.Error() {
		t.Errorf("Check(DELETE): Reason = %q, %v (err %v)", got, ok, err)
	}
}
