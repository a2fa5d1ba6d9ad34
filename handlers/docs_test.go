package handlers

import (
	"strings"
	"testing"

	"github.com/replyrocket/replyrocket/internal/doccheck"
)

// Every route the documents (README.md, CONTRIBUTING.md, docs/) name in
// code is in the route table, with the table's parameter names: a doc's
// `/db-monitor/table-stats/{table}` fails while the route says
// {table_name}. A literal segment (`/api/v1/campaigns/$ID/summary`)
// matches a parameter, and a prefix of routes (`/api/v1`) names them.
func TestDocumentedRoutesExist(t *testing.T) {
	files, err := doccheck.Files("..")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := doccheck.Load("..", files)
	if err != nil {
		t.Fatal(err)
	}
	mentions := doccheck.Routes(docs)
	if len(mentions) < 20 {
		t.Fatalf("only %d route mentions found: the scan is broken", len(mentions))
	}
	for _, m := range mentions {
		if !documentedRouteExists(m.Name) {
			t.Errorf("%s: no such route in the route table", m)
		}
	}
}

func documentedRouteExists(p string) bool {
	if p == dashboardPath || p == pprofPrefix || strings.HasPrefix(p, pprofPrefix+"/") {
		return true
	}
	for _, r := range docRoutes() {
		if routeMatches(r.path, p) {
			return true
		}
		// A prefix of routes ("every /api/v1 route") names them all.
		if strings.HasPrefix(r.path, p+"/") {
			return true
		}
	}
	return false
}

// routeMatches compares a table path with a documented one segment by
// segment: a parameter matches itself or any literal, never another
// parameter's name.
func routeMatches(table, doc string) bool {
	ts, ds := strings.Split(table, "/"), strings.Split(doc, "/")
	if len(ts) != len(ds) {
		return false
	}
	for i := range ts {
		switch {
		case ts[i] == ds[i]:
		case strings.HasPrefix(ts[i], "{") && !strings.HasPrefix(ds[i], "{") && ds[i] != "":
		default:
			return false
		}
	}
	return true
}

func TestRouteMatches(t *testing.T) {
	tests := []struct {
		table, doc string
		want       bool
	}{
		{"/api/v1/campaigns/{id}", "/api/v1/campaigns/{id}", true},
		{"/api/v1/campaigns/{id}", "/api/v1/campaigns/$CAMPAIGN", true},
		{"/db-monitor/table-stats/{table_name}", "/db-monitor/table-stats/{table}", false},
		{"/db-monitor/table-stats/{table_name}", "/db-monitor/table-stats/emails", true},
		{"/api/v1/campaigns/{id}", "/api/v1/campaigns", false},
		{"/api/v1/campaigns/{id}", "/api/v1/campaigns/", false},
		{"/api/v1/me", "/api/v1/you", false},
	}
	for _, doc := range []string{"/api/v1", "/db-monitor/", "/db-monitor/cache", "/debug/pprof/heap"} {
		if !documentedRouteExists(doc) {
			t.Errorf("%s: not found", doc)
		}
	}
	for _, doc := range []string{"/api/v", "/api/v1/nothing", "/db-monitor/table-stats/{table}", "/healthz"} {
		if documentedRouteExists(doc) {
			t.Errorf("%s: found", doc)
		}
	}
	for _, tt := range tests {
		if got := routeMatches(tt.table, tt.doc); got != tt.want {
			t.Errorf("routeMatches(%q, %q) = %v", tt.table, tt.doc, got)
		}
	}
}
