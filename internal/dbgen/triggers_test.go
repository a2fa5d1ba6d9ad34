package dbgen

import (
	"slices"
	"strings"
	"testing"
)

// triggerSchema is scopeSchema plus tables only triggers write: counters
// kept by a statement trigger with transition tables (as the migrations'
// campaign_email_counts), a row trigger's audit log, a log whose values
// no trace reaches, and a trigger that fires on one column only.
const triggerSchema = scopeSchema + `
CREATE TABLE counts (campaign_id uuid PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE, total bigint, opened bigint);
CREATE TABLE audit (id uuid PRIMARY KEY, campaign_id uuid REFERENCES campaigns (id), what text);
CREATE TABLE log (id uuid PRIMARY KEY, campaign_id uuid REFERENCES campaigns (id));

CREATE FUNCTION counts_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counts (campaign_id) SELECT id FROM new_campaigns;
    RETURN NULL;
END $$;
CREATE TRIGGER campaigns_counts AFTER INSERT ON campaigns
    REFERENCING NEW TABLE AS new_campaigns FOR EACH STATEMENT EXECUTE FUNCTION counts_create();

CREATE FUNCTION counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH d AS (SELECT campaign_id, count(*) AS total FROM new_rows GROUP BY campaign_id)
        UPDATE counts c SET total = c.total + d.total FROM d WHERE c.campaign_id = d.campaign_id;
    ELSIF TG_OP = 'DELETE' THEN
        -- Not traced (the value is computed), but only ever run on DELETE.
        INSERT INTO log (id, campaign_id) SELECT gen_random_uuid(), (SELECT min(campaign_id) FROM old_rows);
    ELSE
        UPDATE counts c SET opened = c.opened + d.opened
        FROM (SELECT campaign_id, sum(o) AS opened FROM (
                SELECT campaign_id, is_opened::int AS o FROM new_rows
                UNION ALL
                SELECT campaign_id, -is_opened::int FROM old_rows) r
              GROUP BY campaign_id) d
        WHERE d.campaign_id = c.campaign_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER emails_ins AFTER INSERT ON emails REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION counts_apply();
CREATE TRIGGER emails_upd AFTER UPDATE ON emails REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION counts_apply();
CREATE TRIGGER emails_del AFTER DELETE ON emails REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION counts_apply();

CREATE FUNCTION note_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (id, campaign_id, what) VALUES (gen_random_uuid(), NEW.campaign_id, 'body');
    RETURN NEW;
END $$;
CREATE TRIGGER notes_audit AFTER UPDATE OF body ON notes FOR EACH ROW EXECUTE FUNCTION note_audit();
`

func TestTriggerWriteScopes(t *testing.T) {
	schema := NewSchema()
	if err := schema.Read(triggerSchema); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kind, sql string
		want            []string // the scopes of tables only triggers write
	}{
		{"an open: counters of the email's campaign and user", ":one", `UPDATE emails e SET is_opened = true FROM campaigns c
			WHERE e.id = @id AND c.id = e.campaign_id AND c.user_id = @user_id RETURNING e.campaign_id`, []string{
			"counts.campaign_id: RETURNING campaign_id (trigger emails_upd: campaign_id from emails.campaign_id (RETURNING))",
			"counts.campaign_id>campaigns.user_id: @user_id (trigger emails_upd: campaign_id from emails.campaign_id>campaigns.user_id (WHERE))",
		}},
		{"COPY: each row's campaign; the user not known here", ":copyfrom", `INSERT INTO emails (id, campaign_id, created_at) VALUES (@id, @campaign_id, @created_at)`, []string{
			"counts.campaign_id: each row's @campaign_id (trigger emails_ins: campaign_id from emails.campaign_id (VALUES))",
			"counts.campaign_id>campaigns.user_id: table-wide (trigger emails_ins: campaign_id from emails.campaign_id>campaigns.user_id, bumped wide (its rows' campaigns.user_id is not known))",
		}},
		{"an update whose scope the write does not know stays wide", ":exec", `UPDATE emails SET is_opened = true WHERE created_at < now()`, []string{
			"counts.campaign_id: table-wide (trigger emails_upd: campaign_id from emails.campaign_id, bumped wide (its rows' campaign_id is not known))",
			"counts.campaign_id>campaigns.user_id: table-wide (trigger emails_upd: campaign_id from emails.campaign_id>campaigns.user_id, bumped wide (its rows' campaigns.user_id is not known))",
		}},
		{"a delete: its branch is not traced, so wide", ":exec", `DELETE FROM emails WHERE campaign_id = @c`, []string{
			"log.campaign_id: table-wide (trigger emails_del: its rows' campaign_id is not traced to emails)",
			"log.campaign_id>campaigns.user_id: table-wide (trigger emails_del: its rows' campaigns.user_id is not traced to emails)",
			"log.id: table-wide (trigger emails_del: its rows' id is not traced to emails)",
		}},
		{"the parent's trigger: its key and scope columns", ":one", `INSERT INTO campaigns (user_id, name) VALUES (@user_id, @name) RETURNING id`, []string{
			"audit.campaign_id>campaigns.user_id: @user_id (campaigns rows added or removed)",
			"counts.campaign_id: RETURNING id (trigger campaigns_counts: campaign_id from campaigns.id (RETURNING))",
			"counts.campaign_id>campaigns.user_id: @user_id (campaigns rows added or removed; trigger campaigns_counts: campaign_id from campaigns.user_id (VALUES))",
			"log.campaign_id>campaigns.user_id: @user_id (campaigns rows added or removed)",
		}},
		{"a row trigger's NEW.column", ":exec", `UPDATE notes SET body = @b WHERE campaign_id = @c`, []string{
			"audit.campaign_id: @c (trigger notes_audit: campaign_id from notes.campaign_id (WHERE))",
			"audit.campaign_id>campaigns.user_id: table-wide (trigger notes_audit: campaign_id from notes.campaign_id>campaigns.user_id, bumped wide (its rows' campaigns.user_id is not known))",
			"audit.id: table-wide (trigger notes_audit: its rows' id is not traced to notes)",
		}},
		{"UPDATE OF another column fires nothing", ":exec", `UPDATE notes SET campaign_id = NULL WHERE id = @id`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Only the tables the triggers write.
			got := describedWrites(t, schema, tt.sql, tt.kind, func(w ScopeWrite) bool {
				tbl := w.Scope.Table
				return tbl == "counts" || tbl == "audit" || tbl == "log"
			})
			if !slices.Equal(got, tt.want) {
				t.Fatalf("\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

func TestTriggerWritesTablesAndSlots(t *testing.T) {
	schema := NewSchema()
	if err := schema.Read(triggerSchema); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sql string
		writes    []string
		slots     []string
	}{
		{"an UPDATE trigger updates columns of counts", `UPDATE emails SET is_opened = true WHERE id = $1`,
			[]string{"counts", "emails"}, []string{"counts#opened", "emails#is_opened"}},
		{"an INSERT trigger's branch only", `INSERT INTO emails (id, campaign_id, created_at) VALUES ($1, $2, $3)`,
			[]string{"counts", "emails"}, []string{"counts#total", "emails"}},
		{"a DELETE trigger's branch inserts rows", `DELETE FROM emails WHERE id = $1`,
			[]string{"emails", "log"}, []string{"emails", "log"}},
		{"the cascade's delete fires the trigger too", `DELETE FROM campaigns WHERE id = $1`,
			[]string{"campaigns", "counts", "emails", "log", "notes"}, []string{"campaigns", "counts", "emails", "log", "notes"}},
		{"UPDATE OF body only", `UPDATE notes SET campaign_id = NULL`, []string{"notes"}, []string{"notes#campaign_id"}},
		{"a read fires nothing", `SELECT 1 FROM emails`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.sql)
			tables := Analyze(q, schema)
			if !slices.Equal(tables.Writes, tt.writes) {
				t.Fatalf("writes %v, want %v", tables.Writes, tt.writes)
			}
			_, slots := Slots(q, tables, schema)
			if !slices.Equal(slots, tt.slots) {
				t.Fatalf("slots %v, want %v", slots, tt.slots)
			}
		})
	}
}

func TestTriggersDbgenCannotFollowFailGeneration(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"dynamic SQL", `CREATE TABLE t (id uuid PRIMARY KEY);
			CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM t'; RETURN NULL; END $$;
			CREATE TRIGGER tr AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION f();`, "dynamic SQL"},
		{"a BEFORE row trigger changing NEW", `CREATE TABLE t (id uuid PRIMARY KEY, n int);
			CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.n := 1; RETURN NEW; END $$;
			CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();`, "BEFORE"},
		{"a function the migrations do not define", `CREATE TABLE t (id uuid PRIMARY KEY);
			CREATE TRIGGER tr AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION elsewhere();`, "do not define"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewSchema().Read(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read: %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestGooseDownIsNotRead(t *testing.T) {
	s := NewSchema()
	if err := s.Read(`-- +goose Up
CREATE TABLE t (id uuid PRIMARY KEY);
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t (id) SELECT id FROM n; RETURN NULL; END $$;
CREATE TRIGGER tr AFTER INSERT ON t REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION f();
-- +goose Down
DROP TRIGGER tr ON t;
CREATE TABLE gone (id uuid PRIMARY KEY);
`); err != nil {
		t.Fatal(err)
	}
	if len(s.Triggers) != 1 || s.Columns["gone"] != nil {
		t.Fatalf("triggers %v, tables %v: the Down section was read", s.Triggers, sortedKeys(s.Columns))
	}
	// A later migration's Up that drops it.
	if err := s.Read("-- +goose Up\nDROP TRIGGER tr ON t;\n"); err != nil {
		t.Fatal(err)
	}
	if tables := Analyze(mustParse(t, `INSERT INTO t (id) VALUES ($1)`), s); len(s.Triggers) != 0 || !slices.Equal(tables.Writes, []string{"t"}) {
		t.Fatalf("after DROP TRIGGER: triggers %v, writes %v", s.Triggers, tables.Writes)
	}
}

// TestTriggerFunctionUpsertFiresUpdateTriggers: an upsert in a trigger
// function may update rows, so the UPDATE triggers of its table fire too.
func TestTriggerFunctionUpsertFiresUpdateTriggers(t *testing.T) {
	schema := NewSchema()
	if err := schema.Read(`
CREATE TABLE a (id uuid PRIMARY KEY);
CREATE TABLE totals (id uuid PRIMARY KEY, n bigint);
CREATE TABLE log (id uuid PRIMARY KEY);
CREATE FUNCTION count_a() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO totals (id, n) SELECT id, 1 FROM new_a ON CONFLICT (id) DO UPDATE SET n = totals.n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER a_count AFTER INSERT ON a REFERENCING NEW TABLE AS new_a FOR EACH STATEMENT EXECUTE FUNCTION count_a();
CREATE FUNCTION log_totals() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO log (id) SELECT gen_random_uuid();
    RETURN NULL;
END $$;
CREATE TRIGGER totals_log AFTER UPDATE OF n ON totals FOR EACH STATEMENT EXECUTE FUNCTION log_totals();
`); err != nil {
		t.Fatal(err)
	}
	tables := Analyze(mustParse(t, `INSERT INTO a (id) VALUES ($1)`), schema)
	if want := []string{"a", "log", "totals"}; !slices.Equal(tables.Writes, want) {
		t.Fatalf("writes %v, want %v", tables.Writes, want)
	}
}

func TestTgOpCondition(t *testing.T) {
	for q, want := range map[string]string{
		`TG_OP = 'INSERT'`:                     "INSERT",
		`(tg_op='DELETE')`:                     "DELETE",
		`TG_OP = 'UPDATE' OR TG_OP = 'INSERT'`: "",
		`NEW.n > 0`:                            "",
		`TG_OP <> 'INSERT'`:                    "",
	} {
		cond := map[string]any{"PLpgSQL_expr": map[string]any{"query": q}}
		if got, ok := tgOpCondition(cond); got != want || ok != (want != "") {
			t.Errorf("%s: got %q, %v; want %q", q, got, ok, want)
		}
	}
}
