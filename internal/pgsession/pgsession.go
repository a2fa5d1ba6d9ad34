// Package pgsession names PostgreSQL sessions by their purpose, so
// pg_stat_activity (and the monitor, which reads it) shows who holds which
// connection. Each pool's connections carry the pool's name as their
// application_name (api, background, replica-N); work that holds a
// connection for a purpose of its own (the monitor, a scheduled job) names
// it through its context for as long as it holds it, and the connection
// takes the pool's name back when it is released.
package pgsession

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pool names: what each pool of the application is for.
const (
	API        = "api"
	Background = "background"
)

// Replica is the name of the i-th read replica's pool (1-based), the same
// name the routing metrics use.
func Replica(i int) string { return fmt.Sprintf("replica-%d", i) }

// Session names: work that runs on a pool under a purpose of its own.
const (
	Monitor              = "monitor"
	PartitionMaintenance = "partition-maintenance"
	IdempotencyPurge     = "idempotency-purge"
	EventPurge           = "event-purge"
)

type nameKey struct{}

// With returns ctx naming the session of the connections acquired with it.
func With(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, nameKey{}, name)
}

// Name is the session name ctx carries, "" for none.
func Name(ctx context.Context) string {
	n, _ := ctx.Value(nameKey{}).(string)
	return n
}

// resetTimeout bounds giving a released connection its pool's name back;
// past it the connection is closed rather than pooled under a stale name.
const resetTimeout = 5 * time.Second

// setName sets the connection's application_name unless it already has
// it: the server reports the parameter on every change, so pgx knows the
// current value without asking. Simple protocol, since the statement is
// not worth a prepared statement (and PgBouncer's transaction mode keeps
// none).
func setName(ctx context.Context, conn *pgx.Conn, name string) error {
	if conn.PgConn().ParameterStatus("application_name") == name {
		return nil
	}
	_, err := conn.Exec(ctx, "SELECT set_config('application_name', $1, false)", pgx.QueryExecModeSimpleProtocol, name)
	if err != nil {
		return fmt.Errorf("set application_name %q: %w", name, err)
	}
	return nil
}

// Hooks are a pool's PrepareConn and AfterRelease for the pool name pool:
// an acquire whose context names a session renames the connection, and
// its release names it after the pool again. Work without a session name
// costs nothing: the names already match.
func Hooks(pool string) (prepare func(context.Context, *pgx.Conn) (bool, error), release func(*pgx.Conn) bool) {
	prepare = func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		name := Name(ctx)
		if name == "" {
			name = pool
		}
		if err := setName(ctx, conn, name); err != nil {
			// A connection whose state is unknown is not reused; the
			// acquire fails with the reason.
			return false, err
		}
		return true, nil
	}
	release = func(conn *pgx.Conn) bool {
		ctx, cancel := context.WithTimeout(context.Background(), resetTimeout)
		defer cancel()
		return setName(ctx, conn, pool) == nil
	}
	return prepare, release
}
