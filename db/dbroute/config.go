// Package dbroute spreads the data layer's statements over the primary and
// its streaming read replicas: reads that write nothing (known per sqlc
// query from the generator's analysis of the SQL, db/dbmeta) go to a
// healthy replica that has replayed everything the reading user wrote;
// writes, and all of a transaction, go to the primary. No handler chooses a database.
package dbroute

import "time"

// Config is the read-replica configuration, read once at start by
// internal/config, which declares the variables named below.
type Config struct {
	// ReplicaURLs (DATABASE_REPLICA_URLS, comma-separated) are the
	// replicas' connection strings. None: everything uses DATABASE_URL.
	ReplicaURLs []string
	// ReplicaPoolSize (DB_REPLICA_POOL_SIZE) overrides each replica pool's
	// DB_POOL_SIZE; 0 sizes replica pools like the primary's.
	ReplicaPoolSize int
	// MaxLag (DB_REPLICA_MAX_LAG, a duration) is how far behind the
	// primary a replica may fall before it leaves rotation.
	MaxLag time.Duration
	// CheckEvery is how often each replica's health is checked.
	CheckEvery time.Duration
}

// DefaultMaxLag is DB_REPLICA_MAX_LAG's default.
const DefaultMaxLag = 10 * time.Second

// DefaultCheckEvery is a few checks a second: a dead replica leaves
// rotation within about that long (a failed read also takes it out at once).
const DefaultCheckEvery = 250 * time.Millisecond
