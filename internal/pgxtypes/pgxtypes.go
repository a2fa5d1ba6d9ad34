// Package pgxtypes teaches every pgx connection of the app the Go types its
// queries use beyond pgx's own.
package pgxtypes

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
)

// Register adds google/uuid's UUID to a connection's type map. Without it,
// pgx encodes a uuid.UUID through its driver.Valuer — a string it then
// parses and plans again on every value — which made the UUID columns most
// of the client's cost of a bulk COPY.
//
// Arrays of them ([]uuid.UUID, the event batches' unnest arguments) get
// uuid[] as their default type: in QueryExecModeExec (DB_PGBOUNCER) no
// statement is described, so pgx must find the type from the Go value.
func Register(tm *pgtype.Map) {
	pgxuuid.Register(tm)
	tm.RegisterDefaultPgType([]uuid.UUID{}, "_uuid")
}

// AfterConnect is Register in the shape of pgxpool.Config.AfterConnect.
func AfterConnect(_ context.Context, conn *pgx.Conn) error {
	Register(conn.TypeMap())
	return nil
}
