package dbroute

import "github.com/replyrocket/replyrocket/db/dbmeta"

// primaryReads are reads kept on the primary on purpose. The API-key
// lookup authorises every request: a key revoked by an admin (who is not
// the key's user, so no read-your-writes marker applies) must stop working
// at once, not after a replica's lag; and the cache, which serves nearly
// every lookup, then reloads a revoked key from the primary too.
// FindOwnedEmails answers a repeated tracking event with its email right
// after the batch that applied the first one committed, whichever users
// the batch held (no one marker covers it): a replica may not have it yet.
var primaryReads = map[string]bool{"GetAPIKeyByHash": true, "FindOwnedEmails": true}

// ReplicaReads are the sqlc queries a replica may serve (Options.ReadOnly):
// the read-only ones as the generator derived them from their SQL
// (dbmeta.ReadOnly), but primaryReads.
func ReplicaReads() []string {
	var out []string
	for _, name := range dbmeta.ReadOnly() {
		if !primaryReads[name] {
			out = append(out, name)
		}
	}
	return out
}
