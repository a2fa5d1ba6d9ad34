package pgtest

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/schema"
)

func TestMain(m *testing.M) { Main(m) }

func TestTemplateNameFollowsTheMigrations(t *testing.T) {
	base := fstest.MapFS{
		"00001_a.sql": {Data: []byte("CREATE TABLE a (id int);")},
		"00002_b.sql": {Data: []byte("CREATE TABLE b (id int);")},
		"README.txt":  {Data: []byte("not a migration")},
	}
	name := func(fsys fstest.MapFS) string {
		t.Helper()
		n, err := TemplateName(fsys)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := name(base)
	if again := name(base); again != first {
		t.Fatalf("same migrations, two names: %s, %s", first, again)
	}
	edited := fstest.MapFS{"00001_a.sql": base["00001_a.sql"], "00002_b.sql": {Data: []byte("CREATE TABLE b (id bigint);")}}
	added := fstest.MapFS{"00001_a.sql": base["00001_a.sql"], "00002_b.sql": base["00002_b.sql"], "00003_c.sql": {Data: []byte("SELECT 1;")}}
	renamed := fstest.MapFS{"00001_a.sql": base["00001_a.sql"], "00003_b.sql": base["00002_b.sql"]}
	notSQL := fstest.MapFS{"00001_a.sql": base["00001_a.sql"], "00002_b.sql": base["00002_b.sql"], "README.txt": {Data: []byte("changed")}}
	for what, fsys := range map[string]fstest.MapFS{"an edited migration": edited, "an added one": added, "a renamed one": renamed} {
		if name(fsys) == first {
			t.Errorf("%s keeps the template name %s", what, first)
		}
	}
	if name(notSQL) != first {
		t.Errorf("a file that is not a migration changed the name")
	}
}

// The harness clones test databases from the template named after the
// embedded migrations, and the clone holds the migrated schema.
func TestNewDatabaseClonesTheHashedTemplate(t *testing.T) {
	want, err := TemplateName(schema.FS)
	if err != nil {
		t.Fatal(err)
	}
	if harness.serverURL != "" && harness.template != want {
		t.Fatalf("harness template %q, want %q", harness.template, want)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", want).Scan(&exists); err != nil || !exists {
		t.Fatalf("template %s in pg_database: %v %v", want, exists, err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users','campaigns','emails','api_keys')").Scan(&n); err != nil || n != 4 {
		t.Fatalf("clone has %d of the 4 tables (%v)", n, err)
	}
}
