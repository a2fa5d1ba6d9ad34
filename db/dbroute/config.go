// Package dbroute spreads the data layer's statements over the primary and
// its streaming read replicas: reads that write nothing (known per sqlc
// query from the generator's analysis of the SQL) go to a healthy replica
// that has replayed everything the reading user wrote; writes, and all of
// a transaction, go to the primary. No handler chooses a database.
package dbroute

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is the read-replica configuration, read once at start.
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

// ConfigFromEnv reads the replica variables through getenv. A bad value is
// an error naming the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{MaxLag: DefaultMaxLag, CheckEvery: DefaultCheckEvery}
	if v := strings.TrimSpace(getenv("DATABASE_REPLICA_URLS")); v != "" {
		for i, u := range strings.Split(v, ",") {
			u = strings.TrimSpace(u)
			if u == "" {
				return Config{}, fmt.Errorf("DATABASE_REPLICA_URLS: entry %d is empty", i+1)
			}
			if _, err := pgconn.ParseConfig(u); err != nil {
				// The parser's message may quote the password: say only where.
				return Config{}, fmt.Errorf("DATABASE_REPLICA_URLS: entry %d is not a PostgreSQL connection string", i+1)
			}
			c.ReplicaURLs = append(c.ReplicaURLs, u)
		}
	}
	if v := getenv("DB_REPLICA_POOL_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("DB_REPLICA_POOL_SIZE: want a whole number of at least 1, got %q", v)
		}
		c.ReplicaPoolSize = n
	}
	if v := getenv("DB_REPLICA_MAX_LAG"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("DB_REPLICA_MAX_LAG: want a positive duration such as 10s, got %q", v)
		}
		c.MaxLag = d
	}
	return c, nil
}
