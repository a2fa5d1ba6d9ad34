package dbgen

import (
	"slices"
	"testing"
)

const slotSchema = `
CREATE TABLE users (id uuid PRIMARY KEY, email text, name text, is_active bool);
CREATE TABLE campaigns (id uuid PRIMARY KEY, user_id uuid REFERENCES users (id) ON DELETE CASCADE, name text, status text);
CREATE TABLE emails (id uuid, campaign_id uuid REFERENCES campaigns (id) ON DELETE CASCADE,
    is_opened bool, opened_at timestamptz, created_at timestamptz) PARTITION BY RANGE (created_at);
ALTER TABLE users ADD COLUMN note text;
`

func TestSlots(t *testing.T) {
	schema := NewSchema()
	if err := schema.Read(slotSchema); err != nil {
		t.Fatal(err)
	}
	allEmails := []string{"emails", "emails#campaign_id", "emails#created_at", "emails#id", "emails#is_opened", "emails#opened_at"}
	tests := []struct {
		name   string
		sql    string
		reads  []string
		writes []string
	}{
		{"qualified columns", `SELECT count(e.id) FILTER (WHERE e.is_opened) FROM campaigns c LEFT JOIN emails e ON e.campaign_id = c.id WHERE c.id = @campaign_id AND c.user_id = @user_id GROUP BY c.id`,
			[]string{"campaigns", "campaigns#id", "campaigns#user_id", "emails", "emails#campaign_id", "emails#id", "emails#is_opened"}, nil},
		{"unqualified columns, sqlc params are not columns", `SELECT date_trunc('day', created_at) AS day, count(*) FROM emails WHERE campaign_id = @campaign_id AND created_at >= @since::timestamptz GROUP BY 1`,
			[]string{"emails", "emails#campaign_id", "emails#created_at"}, nil},
		{"count star needs only the rows", `SELECT count(*) FROM users`, []string{"users"}, nil},
		{"select star takes every column", `SELECT * FROM emails`, allEmails, nil},
		{"alias star", `SELECT e.*, c.name FROM emails e JOIN campaigns c ON c.id = e.campaign_id`,
			append([]string{"campaigns", "campaigns#id", "campaigns#name"}, allEmails...), nil},
		{"whole-row reference", `SELECT row_to_json(e) FROM emails e`, allEmails, nil},
		{"join using", `SELECT 1 FROM users JOIN campaigns USING (id)`,
			[]string{"campaigns", "campaigns#id", "campaigns#name", "campaigns#status", "campaigns#user_id", "users", "users#email", "users#id", "users#is_active", "users#name", "users#note"}, nil},
		{"subquery and cte bodies count", `WITH o AS (SELECT e.campaign_id FROM emails e WHERE e.is_opened) SELECT (SELECT count(*) FROM users u WHERE u.is_active), count(*) FROM o`,
			[]string{"emails", "emails#campaign_id", "emails#is_opened", "users", "users#is_active"}, nil},
		{"column added by alter table", `SELECT note FROM users`, []string{"users", "users#note"}, nil},
		{"update sets columns", `UPDATE emails e SET is_opened = true, opened_at = now() FROM campaigns c WHERE e.id = @id AND c.id = e.campaign_id`,
			nil, []string{"emails#is_opened", "emails#opened_at"}},
		{"update of a key cascades nothing here", `UPDATE campaigns SET name = coalesce(sqlc.narg('name'), name) WHERE id = @id`, nil, []string{"campaigns#name"}},
		{"insert is whole table", `INSERT INTO campaigns (user_id, name) VALUES (@u, @n)`, nil, []string{"campaigns"}},
		{"delete and its cascade are whole tables", `DELETE FROM campaigns WHERE id = @id`, nil, []string{"campaigns", "emails"}},
		{"data-modifying cte of another table leaves the update's columns", `WITH d AS (DELETE FROM emails RETURNING id) UPDATE users SET name = 'x'`, nil, []string{"emails", "users#name"}},
		{"data-modifying cte of a parent makes the update whole", `WITH d AS (DELETE FROM campaigns RETURNING id) UPDATE emails SET body = 'x'`, nil, []string{"campaigns", "emails"}},
		// A column the schema does not list may be read by anything: the
		// table stays whole even when a later UPDATE names known columns.
		{"update of an unlisted column is whole", `WITH a AS (UPDATE users SET name = 'x' RETURNING id) UPDATE users SET nickname = 'y' WHERE id IN (SELECT id FROM a)`,
			nil, []string{"users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.sql)
			reads, writes := Slots(q, Analyze(q, schema), schema)
			if !slices.Equal(reads, tt.reads) {
				t.Errorf("reads = %v\nwant    %v", reads, tt.reads)
			}
			if !slices.Equal(writes, tt.writes) {
				t.Errorf("writes = %v\nwant     %v", writes, tt.writes)
			}
		})
	}
}

// TestSlotsUpdateOfUnknownColumns: an ON UPDATE CASCADE updates columns
// the statement does not name, so the child table is written whole even
// when the statement's own UPDATE of it names its columns.
func TestSlotsUpdateOfUnknownColumns(t *testing.T) {
	schema := NewSchema()
	if err := schema.Read(`CREATE TABLE parent (id uuid PRIMARY KEY, name text);
CREATE TABLE child (id uuid PRIMARY KEY, parent_id uuid REFERENCES parent (id) ON UPDATE CASCADE, note text);`); err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, `WITH a AS (UPDATE child SET note = 'x' RETURNING id) UPDATE parent SET id = @new WHERE id = @old`)
	if _, writes := Slots(q, Analyze(q, schema), schema); !slices.Equal(writes, []string{"child", "parent#id"}) {
		t.Errorf("writes = %v, want [child parent#id]", writes)
	}
}
