// Package dbmeta describes every sqlc query as cmd/dbgen derived it from
// its SQL and the migrations: its kind, the tables it reads and the tables
// it writes (with those its triggers write). Replica routing (db/dbroute)
// and the caching decorator (db/dbcache) both read it, so neither depends
// on the other for what a query does. The lists are generated into
// dbmeta.gen.go; this file holds what is not per query.
package dbmeta

// Query is one sqlc query, a method of db.Querier.
type Query struct {
	Name string
	// Kind is sqlc's command: ":one", ":many", ":exec", ":execrows" or
	// ":copyfrom".
	Kind string
	// Reads are the tables the statement reads; Writes those it writes,
	// and those the triggers of a written table write in turn.
	Reads  []string
	Writes []string
}

// ReadOnly reports whether q only reads: a :one or :many that reads tables
// and writes none. A query that reads no table (a function call such as
// ensure_email_partitions) is not read-only: what it does is unknown.
func (q Query) ReadOnly() bool {
	return (q.Kind == ":one" || q.Kind == ":many") && len(q.Writes) == 0 && len(q.Reads) > 0
}

// ReadOnly are the names of the read-only queries (Query.ReadOnly), in
// name order.
func ReadOnly() []string {
	var out []string
	for _, q := range Queries {
		if q.ReadOnly() {
			out = append(out, q.Name)
		}
	}
	return out
}
