// Package schema holds the goose migrations. They are embedded so that the
// binary migrates its own database, and sqlc reads the same files.
package schema

import "embed"

// FS holds every migration, at the top level as goose's Provider expects.
//
//go:embed *.sql
var FS embed.FS
