package dbmeta

import (
	"reflect"
	"slices"
	"testing"

	"github.com/replyrocket/replyrocket/db"
)

// Every method of db.Querier is described exactly once, nothing else is,
// and in name order: the generator joins both and a stale file would drift.
func TestQueriesListEveryQuerierMethodOnce(t *testing.T) {
	t.Parallel()
	querier := reflect.TypeFor[db.Querier]()
	seen := map[string]int{}
	var names []string
	for _, q := range Queries {
		seen[q.Name]++
		names = append(names, q.Name)
	}
	for i := 0; i < querier.NumMethod(); i++ {
		name := querier.Method(i).Name
		if seen[name] != 1 {
			t.Errorf("db.Querier.%s is listed %d times, want once", name, seen[name])
		}
		delete(seen, name)
	}
	for name := range seen {
		t.Errorf("%s is listed but is not a method of db.Querier", name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Queries are not in name order: %v", names)
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	tables := []string{"campaigns"}
	tests := []struct {
		name string
		q    Query
		want bool
	}{
		{"one reading a table", Query{Kind: ":one", Reads: tables}, true},
		{"many reading a table", Query{Kind: ":many", Reads: tables}, true},
		{"one that writes", Query{Kind: ":one", Reads: tables, Writes: tables}, false},
		{"many that only writes", Query{Kind: ":many", Writes: tables}, false},
		{"function call reading no table", Query{Kind: ":many"}, false},
		{"exec", Query{Kind: ":exec", Reads: tables}, false},
		{"execrows", Query{Kind: ":execrows", Reads: tables}, false},
		{"copyfrom", Query{Kind: ":copyfrom", Writes: tables}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.ReadOnly(); got != tt.want {
				t.Errorf("ReadOnly() = %v, want %v", got, tt.want)
			}
		})
	}
}

// The generated list classifies as the SQL reads: a query known to write
// or to call a function is never read-only, a plain read always is.
func TestReadOnlyOfTheQueries(t *testing.T) {
	t.Parallel()
	ro := ReadOnly()
	for _, name := range []string{"GetCampaign", "ListCampaigns", "GetAPIKeyByHash", "ListCampaignOwners"} {
		if !slices.Contains(ro, name) {
			t.Errorf("%s should be read-only", name)
		}
	}
	for _, name := range []string{"EnsureEmailPartitions", "MarkEmailOpened", "ApplyEmailEvents", "InsertEmails", "TouchAPIKey"} {
		if slices.Contains(ro, name) {
			t.Errorf("%s must not be read-only", name)
		}
	}
	if !slices.IsSorted(ro) {
		t.Errorf("ReadOnly() is not in name order: %v", ro)
	}
}
