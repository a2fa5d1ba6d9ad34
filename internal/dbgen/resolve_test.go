package dbgen

import (
	"go/types"
	"strings"
	"testing"
)

// resolverMethods are a COPY of emails and a lookup of campaigns' owners
// with Go types as sqlc generates them; annotate marks the lookup
// "-- cache: resolver", sql replaces its SQL when set.
func resolverMethods(t *testing.T, schema *Schema, annotate bool, sql string) []method {
	t.Helper()
	uuid := types.NewArray(types.Typ[types.Byte], 16)
	field := func(name string, typ types.Type) *types.Var { return types.NewField(0, nil, name, typ, false) }
	owners := method{Query: Query{Name: "ListOwners", Kind: ":many", Resolver: annotate,
		SQL: `SELECT id, user_id FROM campaigns WHERE id = ANY(@ids::uuid[])`}}
	if sql != "" {
		owners.SQL = sql
	}
	owners.Arg = types.NewSlice(uuid)
	owners.Result = types.NewSlice(types.NewStruct([]*types.Var{field("ID", uuid), field("UserID", uuid)}, nil))
	insert := method{Query: Query{Name: "InsertEmails", Kind: ":copyfrom",
		SQL: `INSERT INTO emails (id, campaign_id, created_at) VALUES (@id, @campaign_id, @created_at)`}}
	insert.Arg = types.NewSlice(types.NewStruct([]*types.Var{field("ID", uuid), field("CampaignID", uuid), field("CreatedAt", types.Typ[types.Int64])}, nil))
	insert.Result = types.Typ[types.Int64]
	ms := []method{insert, owners}
	for i := range ms {
		ms[i].stmt = mustParse(t, ms[i].SQL)
		if ms[i].Tables = Analyze(ms[i].stmt, schema); len(ms[i].Writes) > 0 {
			ms[i].ScopeWrites = WriteScopes(ms[i].stmt, ms[i].Kind, ms[i].Tables, schema, ms[i].usable)
		}
	}
	return ms
}

// pathWrite describes what the COPY does to the path scope of emails.
func pathWrite(t *testing.T, m method) string {
	t.Helper()
	for _, w := range m.ScopeWrites {
		if w.Scope.Name() == "emails.campaign_id>campaigns.user_id" {
			return describeWrite(w)
		}
	}
	t.Fatalf("%s bumps no path scope", m.Name)
	return ""
}

func TestResolverIsNamedByItsAnnotation(t *testing.T) {
	schema := readScopeSchema(t)
	tests := []struct {
		name     string
		annotate bool
		want     string
	}{
		{"annotated: looked up", true, "emails.campaign_id>campaigns.user_id: each row's @campaign_id (user_id looked up from campaign_id through ListOwners)"},
		{"the same shape without the annotation is not used", false, "emails.campaign_id>campaigns.user_id: table-wide (its rows' campaigns.user_id is not known)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := resolverMethods(t, schema, tt.annotate, "")
			if err := applyResolvers(ms, schema); err != nil {
				t.Fatal(err)
			}
			if got := pathWrite(t, ms[0]); got != tt.want {
				t.Fatalf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAnnotatedResolverOfAnotherShapeFailsGeneration(t *testing.T) {
	schema := readScopeSchema(t)
	for _, sql := range []string{
		`SELECT id, user_id FROM campaigns WHERE user_id = @u`,
		`SELECT id, user_id, name FROM campaigns WHERE id = ANY(@ids::uuid[])`,
		`SELECT id AS k, user_id FROM campaigns WHERE id = ANY(@ids::uuid[])`,
		`SELECT id, user_id FROM campaigns WHERE id = ANY(@ids::uuid[]) LIMIT 5`,
	} {
		err := applyResolvers(resolverMethods(t, schema, true, sql), schema)
		if err == nil || !strings.Contains(err.Error(), "annotated as a resolver") {
			t.Errorf("%s: err = %v, want the shape refused", sql, err)
		}
	}
}
