package dbgen

import (
	"slices"
	"testing"
)

func TestAnalyze(t *testing.T) {
	schema := NewSchema()
	if err := schema.Read(testSchema); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sql    string
		reads  []string
		writes []string
	}{
		{"plain select", `SELECT id FROM users WHERE id = $1`, []string{"users"}, nil},
		{"join", `SELECT k.id FROM api_keys k JOIN users u ON u.id = k.user_id`, []string{"api_keys", "users"}, nil},
		{"left join and group", `SELECT count(e.id) FROM campaigns c LEFT JOIN emails e ON e.campaign_id = c.id GROUP BY c.id`,
			[]string{"campaigns", "emails"}, nil},
		{"scalar subquery", `SELECT (SELECT count(*) FROM campaigns WHERE user_id = $1), count(*) FROM emails`,
			[]string{"campaigns", "emails"}, nil},
		{"subquery in where", `SELECT id FROM users WHERE id IN (SELECT user_id FROM api_keys WHERE revoked_at IS NULL)`,
			[]string{"api_keys", "users"}, nil},
		{"exists in lateral", `SELECT u.id FROM users u, LATERAL (SELECT 1 FROM campaigns c WHERE c.user_id = u.id) x`,
			[]string{"campaigns", "users"}, nil},
		{"FOR UPDATE OF names a FROM item, not a table", `SELECT l.id FROM emails l JOIN campaigns ON true FOR UPDATE OF l, campaigns`,
			[]string{"campaigns", "emails"}, nil},
		{"cte name excluded", `WITH recent AS (SELECT * FROM emails WHERE created_at > now()) SELECT count(*) FROM recent JOIN campaigns c ON c.id = recent.campaign_id`,
			[]string{"campaigns", "emails"}, nil},
		{"recursive cte", `WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM t WHERE n < 3) SELECT n FROM t, users`,
			[]string{"users"}, nil},
		{"partition rolled up", `SELECT count(*) FROM emails_p202611 UNION ALL SELECT count(*) FROM emails_default`,
			[]string{"emails"}, nil},
		{"unpartitioned lookalike kept", `SELECT 1 FROM users_default`, []string{"users_default"}, nil},
		{"schema qualified", `SELECT 1 FROM public.users JOIN audit.log l ON true`, []string{"audit.log", "users"}, nil},
		{"insert", `INSERT INTO campaigns (user_id, name) VALUES ($1, $2) RETURNING id`, nil, []string{"campaigns"}},
		{"insert select", `INSERT INTO emails SELECT * FROM emails_default`, []string{"emails"}, []string{"emails"}},
		{"update from", `UPDATE emails e SET is_opened = true FROM campaigns c WHERE c.id = e.campaign_id`,
			[]string{"campaigns"}, []string{"emails"}},
		{"delete using", `DELETE FROM api_keys k USING users u WHERE u.id = k.user_id AND NOT u.is_active`,
			[]string{"users"}, []string{"api_keys"}},
		{"data-modifying cte", `WITH moved AS (DELETE FROM emails_default RETURNING *) INSERT INTO emails_p202611 SELECT * FROM moved`,
			nil, []string{"emails"}},
		{"update in cte under select", `WITH u AS (UPDATE users SET name = 'x' WHERE id = $1 RETURNING id) SELECT count(*) FROM u JOIN campaigns ON true`,
			[]string{"campaigns"}, []string{"audit", "users"}}, // an UPDATE of users may change the key audit cascades from
		{"copy from", `COPY emails (id) FROM STDIN`, nil, []string{"emails"}},
		{"truncate", `TRUNCATE users, campaigns`, nil, []string{"campaigns", "users"}},
		{"function only", `SELECT ensure_email_partitions(now(), 3)`, nil, nil},
		{"delete cascades", `DELETE FROM campaigns WHERE id = $1`, nil, []string{"campaigns", "emails"}},
		{"delete cascades transitively", `DELETE FROM users WHERE id = $1`, nil, []string{"api_keys", "audit", "campaigns", "emails", "users"}},
		{"update cascades only on update", `UPDATE users SET id = $1`, nil, []string{"audit", "users"}},
		{"insert does not cascade", `INSERT INTO users (id) VALUES ($1)`, nil, []string{"users"}},
		{"an upsert's update cascades", `INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = $2`, nil, []string{"audit", "users"}},
		{"truncate cascade", `TRUNCATE campaigns CASCADE`, nil, []string{"campaigns", "emails"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Analyze(mustParse(t, tt.sql), schema)
			if !slices.Equal(got.Reads, tt.reads) && !(len(got.Reads) == 0 && len(tt.reads) == 0) {
				t.Errorf("reads = %v, want %v", got.Reads, tt.reads)
			}
			if !slices.Equal(got.Writes, tt.writes) && !(len(got.Writes) == 0 && len(tt.writes) == 0) {
				t.Errorf("writes = %v, want %v", got.Writes, tt.writes)
			}
		})
	}
}

func TestParseQueryRejectsBadSQL(t *testing.T) {
	if _, err := parseQuery(`SELEC 1`); err == nil {
		t.Fatal("parseQuery accepted invalid SQL")
	}
}

// mustParse parses a test query.
func mustParse(t *testing.T, sql string) *parsed {
	t.Helper()
	q, err := parseQuery(sql)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

const testSchema = `
CREATE TABLE users (id uuid PRIMARY KEY);
CREATE TABLE api_keys (id uuid, user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE campaigns (id uuid PRIMARY KEY, user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE emails (id uuid, campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    created_at timestamptz) PARTITION BY RANGE (created_at);
CREATE TABLE notes (id uuid, campaign_id uuid REFERENCES campaigns (id) ON DELETE RESTRICT);
CREATE TABLE audit (id uuid);
ALTER TABLE audit ADD CONSTRAINT audit_user FOREIGN KEY (id) REFERENCES users (id) ON UPDATE CASCADE ON DELETE SET NULL;
`

func TestSchemaRead(t *testing.T) {
	s := NewSchema()
	if err := s.Read(testSchema); err != nil {
		t.Fatal(err)
	}
	if !s.Partitioned["emails"] || len(s.Partitioned) != 1 {
		t.Errorf("partitioned = %v, want only emails", s.Partitioned)
	}
	if got := s.OnDelete["users"]; !slices.Equal(got, []string{"api_keys", "campaigns", "audit"}) {
		t.Errorf("on delete of users = %v", got)
	}
	if got := s.OnDelete["campaigns"]; !slices.Equal(got, []string{"emails"}) {
		t.Errorf("on delete of campaigns = %v (RESTRICT changes no rows)", got)
	}
	if got := s.OnUpdate["users"]; !slices.Equal(got, []string{"audit"}) {
		t.Errorf("on update of users = %v", got)
	}
}

func TestParseQueries(t *testing.T) {
	src := `-- name: A :one
SELECT 1;

-- Doc of B.
-- name: B :many
-- cache: ttl=5m swr=30s
-- more doc
SELECT id
FROM users;
-- trailing comment belongs to C
-- name: C :exec
DELETE FROM users;
`
	qs, err := ParseQueries("x.sql", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 3 {
		t.Fatalf("got %d queries, want 3", len(qs))
	}
	b := qs[1]
	if b.Name != "B" || b.Kind != ":many" || !b.Cached || b.TTL.String() != "5m0s" || b.SWR.String() != "30s" {
		t.Errorf("B = %+v", b)
	}
	if b.SQL != "SELECT id\nFROM users;" {
		t.Errorf("B.SQL = %q", b.SQL)
	}
	if qs[0].Cached || qs[2].Cached || qs[2].SQL != "DELETE FROM users;" || b.Resolver {
		t.Errorf("A, C = %+v, %+v", qs[0], qs[2])
	}
}

func TestParseResolverAnnotation(t *testing.T) {
	qs, err := ParseQueries("x.sql", "-- name: Owners :many\n-- cache: resolver\nSELECT id, user_id FROM campaigns WHERE id = ANY(@ids::uuid[]);\n")
	if err != nil || len(qs) != 1 || !qs[0].Resolver || qs[0].Cached {
		t.Fatalf("got %+v, %v: want an uncached resolver", qs, err)
	}
}

func TestParseQueriesRejectsBadAnnotations(t *testing.T) {
	for _, ann := range []string{"ttl=soon", "ttl=5m bogus=1", "swr=1m", "ttl", "ttl=0s", "resolver ttl=5m", "resolver lookup"} {
		src := "-- name: A :one\n-- cache: " + ann + "\nSELECT 1;\n"
		if _, err := ParseQueries("x.sql", src); err == nil {
			t.Errorf("annotation %q accepted", ann)
		}
	}
}
