package dbroute

import (
	"slices"
	"testing"

	"github.com/replyrocket/replyrocket/db/dbmeta"
)

// The routing set comes from the generator's analysis: reads of tables
// that write nothing, minus the API-key lookup, which stays on the primary.
func TestReplicaReads(t *testing.T) {
	t.Parallel()
	got := map[string]bool{}
	for _, n := range ReplicaReads() {
		got[n] = true
	}
	for _, n := range []string{"GetCampaign", "ListCampaigns", "GetCampaignSummary", "GetUserStatistics", "ListCampaignEmails", "GetEmail"} {
		if !got[n] {
			t.Errorf("%s should be served by replicas", n)
		}
	}
	for _, n := range []string{"CreateCampaign", "MarkEmailOpened", "InsertEmails", "EnsureEmailPartitions", "TouchAPIKey", "DeleteCampaign", "GetAPIKeyByHash", "FindOwnedEmails"} {
		if got[n] {
			t.Errorf("%s must run on the primary", n)
		}
	}
}

// TestReplicaReadsKeepTheRule: the set is what internal/app derived before
// the metadata had its own package — a :one or :many that reads a table and
// writes none, but the primaryReads — query by query.
func TestReplicaReadsKeepTheRule(t *testing.T) {
	t.Parallel()
	got := ReplicaReads()
	for _, q := range dbmeta.Queries {
		want := (q.Kind == ":one" || q.Kind == ":many") && len(q.Writes) == 0 && len(q.Reads) > 0 && !primaryReads[q.Name]
		if slices.Contains(got, q.Name) != want {
			t.Errorf("%s (%s, reads %v, writes %v): on a replica = %v, want %v", q.Name, q.Kind, q.Reads, q.Writes, !want, want)
		}
	}
}

// A name in primaryReads that is not a read-only query keeps nothing on the
// primary: it is a typo or a renamed query.
func TestPrimaryReadsAreReadOnlyQueries(t *testing.T) {
	t.Parallel()
	for name := range primaryReads {
		if !slices.Contains(dbmeta.ReadOnly(), name) {
			t.Errorf("primaryReads names %s, which is not a read-only query in dbmeta.Queries", name)
		}
	}
}
