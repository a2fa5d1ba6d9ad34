package dbgen

import (
	"slices"
	"strings"
	"testing"
)

const scopeSchema = `
CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL, name text);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE TABLE campaigns (id uuid PRIMARY KEY, user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE, name text, status text);
CREATE INDEX campaigns_user_idx ON campaigns (user_id, id);
CREATE TABLE emails (id uuid NOT NULL, campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    is_opened bool, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE notes (id uuid PRIMARY KEY, campaign_id uuid REFERENCES campaigns (id) ON DELETE SET NULL, body text);
`

func readScopeSchema(t *testing.T) *Schema {
	t.Helper()
	s := NewSchema()
	if err := s.Read(scopeSchema); err != nil {
		t.Fatal(err)
	}
	return s
}

// anyValue accepts every value: these tests are about the SQL, the Go
// types are checked where methods exist (gen.go).
func anyValue(valueRef, string) bool { return true }

func TestSchemaScopes(t *testing.T) {
	s := readScopeSchema(t)
	var got []string
	for _, sc := range s.AllScopes() {
		got = append(got, sc.Name())
	}
	want := []string{
		"campaigns.id", "campaigns.user_id",
		"emails.id", "emails.campaign_id", "emails.campaign_id>campaigns.user_id",
		"notes.id", "notes.campaign_id", "notes.campaign_id>campaigns.user_id",
		"users.id", // lower(email) is an expression, not a column: no scope
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scopes\n got %v\nwant %v", got, want)
	}
}

func TestReadScopes(t *testing.T) {
	schema := readScopeSchema(t)
	tests := []struct {
		name, sql, want string
	}{
		{"direct", `SELECT count(*) FROM emails WHERE campaign_id = @campaign_id AND created_at > @since`,
			"emails.campaign_id = @campaign_id"},
		{"join transitivity", `SELECT count(e.id) FROM emails e JOIN campaigns c ON e.campaign_id = c.id WHERE c.id = @cid`,
			"campaigns.id = @cid; emails.campaign_id = @cid"},
		{"path through the foreign key", `SELECT count(*) FROM campaigns c JOIN emails e ON e.campaign_id = c.id WHERE c.user_id = @uid`,
			"campaigns.user_id = @uid; emails.campaign_id>campaigns.user_id = @uid"},
		{"left join pins only its nullable side", `SELECT count(e.id) FROM campaigns c LEFT JOIN emails e ON e.campaign_id = c.id AND e.campaign_id = @cid`,
			"emails.campaign_id = @cid; campaigns table-wide"},
		{"left join with the preserved side pinned", `SELECT count(e.id) FROM campaigns c LEFT JOIN emails e ON e.campaign_id = c.id WHERE c.id = @cid AND c.user_id = @uid`,
			"campaigns.id = @cid; emails.campaign_id = @cid"},
		{"OR falls back", `SELECT id FROM campaigns WHERE id = @a OR user_id = @b`, "campaigns table-wide"},
		{"NOT falls back", `SELECT id FROM campaigns WHERE NOT (id = @a)`, "campaigns table-wide"},
		{"IN list", `SELECT id FROM campaigns WHERE id IN (@a, @b)`, "campaigns.id = @a, @b"},
		{"IN list with an expression falls back", `SELECT id FROM campaigns WHERE id IN (@a, gen_random_uuid())`, "campaigns table-wide"},
		{"= ANY(array)", `SELECT id FROM campaigns WHERE id = ANY(@ids::uuid[])`, "campaigns.id = each of @ids"},
		{"lower(email) is an expression", `SELECT id FROM users WHERE lower(email) = lower(@email)`, "users table-wide"},
		{"cast column falls back", `SELECT id FROM users WHERE id::text = @id`, "users table-wide"},
		{"range falls back", `SELECT id FROM campaigns WHERE user_id > @u`, "campaigns table-wide"},
		{"sqlc.arg", `SELECT id FROM campaigns WHERE user_id = sqlc.arg(owner)`, "campaigns.user_id = @owner"},
		{"partition rolled up", `SELECT count(*) FROM emails_p202611 WHERE campaign_id = @c`, "emails.campaign_id = @c"},
		{"one unpinned occurrence unpins the table", `SELECT (SELECT count(*) FROM emails), count(*) FROM emails WHERE campaign_id = @c`,
			"emails table-wide"},
		{"subquery pinned on its own", `SELECT (SELECT count(*) FROM campaigns WHERE user_id = @u) AS n, count(*) FROM emails WHERE campaign_id = @c`,
			"campaigns.user_id = @u; emails.campaign_id = @c"},
		{"correlated subquery pinned through the enclosing query", `SELECT id FROM campaigns c WHERE c.user_id = @u AND EXISTS (SELECT 1 FROM emails e WHERE e.campaign_id = c.id)`,
			"campaigns.user_id = @u; emails.campaign_id>campaigns.user_id = @u"},
		{"lateral aggregate per row", `SELECT c.id, s.n FROM campaigns c CROSS JOIN LATERAL (SELECT count(*) AS n FROM emails e WHERE e.campaign_id = c.id) s WHERE c.user_id = @u`,
			"campaigns.user_id = @u; emails.campaign_id>campaigns.user_id = @u"},
		{"a correlation never pins the enclosing query", `SELECT c.id FROM campaigns c WHERE EXISTS (SELECT 1 FROM emails e WHERE e.campaign_id = c.id AND e.campaign_id = @x)`,
			"emails.campaign_id = @x; campaigns table-wide"},
		{"bare column of one table", `SELECT 1 FROM campaigns c JOIN notes n ON true WHERE campaign_id = @c AND c.id = @c2`,
			"campaigns.id = @c2; notes.campaign_id = @c"},
		{"ambiguous bare column", `SELECT 1 FROM campaigns c JOIN notes n ON true WHERE id = @x AND c.user_id = @u`,
			"campaigns.user_id = @u; notes table-wide"},
		{"a CTE's column traced to a parameter", `WITH x AS (SELECT @c::uuid AS cid) SELECT count(*) FROM emails e JOIN x ON e.campaign_id = x.cid`,
			"emails.campaign_id = @c"},
		{"a subquery's column traced to a parameter", `SELECT count(*) FROM emails e, (SELECT @c::uuid) x (cid) WHERE e.campaign_id = x.cid`,
			"emails.campaign_id = @c"},
		{"IN a subquery of a parameter", `SELECT id FROM campaigns WHERE user_id IN (SELECT @u::uuid)`, "campaigns.user_id = @u"},
		{"a CTE's own name in its body is not the CTE", `WITH campaigns AS (SELECT id FROM campaigns WHERE user_id = @u) SELECT count(*) FROM emails e JOIN campaigns c ON e.campaign_id = c.id`,
			"emails table-wide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.sql)
			tables := Analyze(q, schema)
			deps := ReadScopes(q, tables, schema, anyValue)
			if got := describeDeps(deps); got != tt.want {
				t.Fatalf("\n got %s\nwant %s", got, tt.want)
			}
			// A pinned table depends on its scope-wide versions, an
			// unpinned one on its table-wide versions.
			for _, sr := range deps.Scoped {
				if !slices.Contains(deps.Named, sr.Scope.Name()) {
					t.Errorf("pinned by %s without its scope-wide version in %v", sr.Scope.Name(), deps.Named)
				}
			}
			for _, tb := range deps.Unpinned {
				if !slices.Contains(deps.Named, tb) {
					t.Errorf("%s unpinned without its table version in %v", tb, deps.Named)
				}
			}
		})
	}
}

func TestReadScopesNeedUsableValues(t *testing.T) {
	schema := readScopeSchema(t)
	q := mustParse(t, `SELECT id FROM campaigns WHERE id = @id`)
	deps := ReadScopes(q, Analyze(q, schema), schema, func(valueRef, string) bool { return false })
	if got := describeDeps(deps); got != "campaigns table-wide" {
		t.Fatalf("a value the Go code cannot hash pinned the read: %s", got)
	}
}

// writeScopeCases are TestWriteScopes's cases.
var writeScopeCases = []struct {
	name, kind, sql string
	want            []string
}{
	{"insert with VALUES and RETURNING", ":one", `INSERT INTO campaigns (user_id, name) VALUES (@user_id, @name) RETURNING id, user_id`, []string{
		"campaigns.id: RETURNING id (RETURNING)",
		"campaigns.user_id: @user_id (VALUES)",
		"emails.campaign_id>campaigns.user_id: @user_id (campaigns rows added or removed)",
		"notes.campaign_id>campaigns.user_id: @user_id (campaigns rows added or removed)",
	}},
	{"write without RETURNING", ":exec", `UPDATE campaigns SET name = @name WHERE id = @id`, []string{
		"campaigns.id: @id (WHERE)",
		"campaigns.user_id: table-wide (its rows' user_id is not known)",
	}},
	{"update of a scope column moves rows", ":exec", `UPDATE emails SET campaign_id = @c WHERE id = @id AND created_at = @at`, []string{
		"emails.campaign_id: table-wide (updates campaign_id, moving rows between values)",
		"emails.campaign_id>campaigns.user_id: table-wide (updates campaign_id, moving rows between values)",
		"emails.id: @id (WHERE)",
	}},
	{"update through a join", ":one", `UPDATE emails e SET is_opened = true FROM campaigns c
		WHERE e.id = @id AND c.id = e.campaign_id AND c.user_id = @user_id RETURNING e.campaign_id`, []string{
		"emails.campaign_id: RETURNING campaign_id (RETURNING)",
		"emails.campaign_id>campaigns.user_id: @user_id (WHERE)",
		"emails.id: @id (WHERE)",
	}},
	// The parent joined on the foreign key gives each row's path value.
	{"a path's value returned from the joined parent", ":many", `UPDATE emails e SET is_opened = true FROM campaigns c
		WHERE e.id = ANY(@ids::uuid[]) AND c.id = e.campaign_id RETURNING e.id, c.user_id`, []string{
		"emails.campaign_id: table-wide (its rows' campaign_id is not known)",
		"emails.campaign_id>campaigns.user_id: RETURNING user_id (RETURNING)",
		"emails.id: each of @ids (WHERE)",
	}},
	// A parent's column returned without the join on the key is not the
	// row's path value.
	{"a parent's column without the key join is not a path value", ":many", `UPDATE emails e SET is_opened = true FROM campaigns c
		WHERE e.id = ANY(@ids::uuid[]) AND c.name = 'x' RETURNING e.id, c.user_id`, []string{
		"emails.campaign_id: table-wide (its rows' campaign_id is not known)",
		"emails.campaign_id>campaigns.user_id: table-wide (its rows' campaigns.user_id is not known)",
		"emails.id: each of @ids (WHERE)",
	}},
	{"delete cascades with the parent's values", ":execrows", `DELETE FROM campaigns WHERE id = @id AND user_id = @uid`, []string{
		"campaigns.id: @id (WHERE)",
		"campaigns.user_id: @uid (WHERE)",
		"emails.campaign_id: @id (cascade from campaigns.id)",
		"emails.campaign_id>campaigns.user_id: @uid (cascade from campaigns.user_id; campaigns rows added or removed)",
		"emails.id: table-wide (its rows' id is not known)",
		// SET NULL updates the notes: not followed, so wide.
		"notes.campaign_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.campaign_id>campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
	}},
	{"transitive cascade", ":exec", `DELETE FROM users WHERE id = @id`, []string{
		"campaigns.id: table-wide (its rows' id is not known)",
		"campaigns.user_id: @id (cascade from users.id)",
		"emails.campaign_id: table-wide (its rows' campaign_id is not known)",
		// Two hops: the emails of the deleted user's campaigns.
		"emails.campaign_id>campaigns.user_id: @id (cascade from campaigns.user_id; campaigns rows added or removed)",
		"emails.id: table-wide (its rows' id is not known)",
		"notes.campaign_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.campaign_id>campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"users.id: @id (WHERE)",
	}},
	{"copy rows", ":copyfrom", `INSERT INTO emails (id, campaign_id, created_at) VALUES (@id, @campaign_id, @created_at)`, []string{
		"emails.campaign_id: each row's @campaign_id (VALUES)",
		"emails.campaign_id>campaigns.user_id: table-wide (its rows' campaigns.user_id is not known)",
		"emails.id: each row's @id (VALUES)",
	}},
	// The top-level UPDATE is attributed as it would be alone (its ids come
	// from d, so unknown); it sets name only, which moves no email between
	// users. The CTE's DELETE is not attributed.
	{"a CTE's write is not attributed, the top-level one is", ":exec", `WITH d AS (DELETE FROM notes WHERE id = @id RETURNING campaign_id) UPDATE campaigns SET name = 'x' WHERE id IN (SELECT campaign_id FROM d)`, []string{
		"campaigns.id: table-wide (its rows' id is not known)",
		"campaigns.user_id: table-wide (its rows' user_id is not known)",
		"notes.campaign_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.campaign_id>campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
	}},
	// ApplyEmailEvents' shape: a CTE records rows of another table, the
	// UPDATE's RETURNING names the rows it changed.
	{"a CTE's insert leaves the update's RETURNING attributed", ":many", `WITH r AS (INSERT INTO notes (id, campaign_id, body) SELECT @id, @c, 'x' RETURNING campaign_id) UPDATE campaigns c SET name = 'x' FROM r WHERE c.id = r.campaign_id RETURNING c.id, c.user_id`, []string{
		"campaigns.id: RETURNING id (RETURNING)",
		"campaigns.user_id: RETURNING user_id (RETURNING)",
		"notes.campaign_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.campaign_id>campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
	}},
	// A CTE deleting the UPDATE's parent rows cascades into its table:
	// neither write is attributed there.
	{"a CTE's cascade into the update's table is not attributed", ":many", `WITH d AS (DELETE FROM campaigns WHERE id = @id RETURNING id) UPDATE emails SET body = 'x' WHERE id = @e RETURNING id`, []string{
		"campaigns.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"emails.campaign_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"emails.campaign_id>campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"emails.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.campaign_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.campaign_id>campaigns.user_id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
		"notes.id: table-wide (rows not attributed (several writes, or a statement kind not analysed))",
	}},
	{"upsert counts only RETURNING", ":one", `INSERT INTO notes (id, campaign_id, body) VALUES (@id, @c, @b) ON CONFLICT (id) DO UPDATE SET body = excluded.body RETURNING id`, []string{
		"notes.campaign_id: table-wide (its rows' campaign_id is not known)",
		"notes.campaign_id>campaigns.user_id: table-wide (its rows' campaigns.user_id is not known)",
		"notes.id: RETURNING id (RETURNING)",
	}},
	{"insert of a SELECT's parameters", ":exec", `INSERT INTO notes (id, campaign_id, body) SELECT @id, @c, 'x'`, []string{
		"notes.campaign_id: @c (SELECT)",
		"notes.campaign_id>campaigns.user_id: table-wide (its rows' campaigns.user_id is not known)",
		"notes.id: @id (SELECT)",
	}},
	{"partition rolled up", ":exec", `DELETE FROM emails_p202611 WHERE campaign_id = @c`, []string{
		"emails.campaign_id: @c (WHERE)",
		"emails.campaign_id>campaigns.user_id: table-wide (its rows' campaigns.user_id is not known)",
		"emails.id: table-wide (its rows' id is not known)",
	}},
}

func TestWriteScopes(t *testing.T) {
	schema := readScopeSchema(t)
	tests := writeScopeCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describedWrites(t, schema, tt.sql, tt.kind, func(ScopeWrite) bool { return true })
			if !slices.Equal(got, tt.want) {
				t.Fatalf("\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

// describedWrites analyses the write sql of sqlc kind against schema and
// describes each scope it bumps that keep accepts, in order.
func describedWrites(t *testing.T, schema *Schema, sql, kind string, keep func(ScopeWrite) bool) []string {
	t.Helper()
	q := mustParse(t, sql)
	ws := WriteScopes(q, kind, Analyze(q, schema), schema, anyValue)
	var got []string
	for _, w := range ws {
		if keep(w) {
			got = append(got, describeWrite(w))
		}
	}
	return got
}
