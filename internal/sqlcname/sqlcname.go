// Package sqlcname reads the name sqlc gives each generated statement. It
// imports nothing of the project, so the data layer (error tagging) and the
// observers beside it (per-query latency) can both use it without one
// depending on the other.
package sqlcname

import "strings"

// Of returns the sqlc query name from the "-- name: X :kind" comment that
// sqlc puts at the start of every statement it generates, or "" for SQL
// that did not come from sqlc.
func Of(sql string) string {
	const prefix = "-- name: "
	if !strings.HasPrefix(sql, prefix) {
		return ""
	}
	rest := sql[len(prefix):]
	end := strings.IndexAny(rest, " \n")
	if end < 0 {
		return rest
	}
	return rest[:end]
}
