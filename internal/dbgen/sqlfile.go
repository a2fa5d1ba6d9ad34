// Package dbgen generates the caching Querier decorator (db/dbcache) from
// the sqlc queries: which queries are cached and for how long comes from
// their "-- cache:" annotations, which tables each reads and writes from
// parsing their SQL, and the exact Go types from the generated db package.
package dbgen

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Query is one sqlc query as written in queries/*.sql.
type Query struct {
	Name string
	Kind string // :one, :many, :exec, :execrows, :copyfrom, ...
	SQL  string // the statement, comment lines removed
	File string
	Line int // of the "-- name:" line
	// Cached is set by a "-- cache: ttl=5m [swr=1m]" line among the comment
	// lines right after the name line (before the SQL).
	Cached bool
	TTL    time.Duration
	SWR    time.Duration
	// Resolver is set by "-- cache: resolver": the query maps a parent's
	// key to a path scope's column for writes that know only the key
	// (resolve.go).
	Resolver bool
}

// Pos is "file:line" of the query, for errors.
func (q Query) Pos() string { return fmt.Sprintf("%s:%d", q.File, q.Line) }

// ReadQueryDir parses every .sql file of dir, in name order.
func ReadQueryDir(dir string) ([]Query, error) {
	var all []Query
	err := readFiles(filepath.Join(dir, "*.sql"), func(path, src string) error {
		qs, err := ParseQueries(filepath.Join(filepath.Base(dir), filepath.Base(path)), src)
		all = append(all, qs...)
		return err
	})
	return all, err
}

// readFiles calls fn with the path and text of each file matching
// pattern, in name order (filepath.Glob sorts).
func readFiles(pattern string, fn func(path, src string) error) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Errorf("list %s: %w", pattern, err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		if err := fn(f, string(src)); err != nil {
			return err
		}
	}
	return nil
}

// ParseQueries splits one sqlc query file into its queries.
func ParseQueries(file, src string) ([]Query, error) {
	var out []Query
	done := false // the current statement's terminating ';' was seen
	for i, text := range strings.Split(src, "\n") {
		line, text := i+1, strings.TrimSuffix(text, "\r")
		trimmed := strings.TrimSpace(text)
		if rest, ok := strings.CutPrefix(trimmed, "-- name:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || !strings.HasPrefix(f[1], ":") {
				return nil, fmt.Errorf("%s:%d: want \"-- name: Name :kind\", got %q", file, line, trimmed)
			}
			out, done = append(out, Query{Name: f[0], Kind: f[1], File: file, Line: line}), false
			continue
		}
		if len(out) == 0 || done {
			continue
		}
		annotation, isAnnotation := strings.CutPrefix(trimmed, "-- cache:")
		switch cur := &out[len(out)-1]; {
		case isAnnotation && cur.SQL != "":
			return nil, fmt.Errorf("%s:%d: %s: the cache annotation must come before the SQL", file, line, cur.Name)
		case isAnnotation:
			if err := parseAnnotation(cur, annotation); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", file, line, cur.Name, err)
			}
		case strings.HasPrefix(trimmed, "--") || trimmed == "" && cur.SQL == "":
		default:
			cur.SQL += text + "\n"
			done = strings.HasSuffix(trimmed, ";")
		}
	}
	for i := range out {
		out[i].SQL = strings.TrimSpace(out[i].SQL)
	}
	return out, nil
}

func parseAnnotation(q *Query, s string) error {
	if q.Cached || q.Resolver {
		return fmt.Errorf("second cache annotation")
	}
	durations := map[string]*time.Duration{"ttl": &q.TTL, "swr": &q.SWR}
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		switch d, err := time.ParseDuration(v); {
		case kv == "resolver":
			q.Resolver = true
		case !ok:
			return fmt.Errorf("cache annotation: %q is not key=value or resolver", kv)
		case durations[k] == nil:
			return fmt.Errorf("cache annotation: unknown key %q (want ttl, swr, resolver)", k)
		case err != nil || d < 0:
			return fmt.Errorf("cache annotation: %s=%q is not a duration", k, v)
		default:
			*durations[k] = d
		}
	}
	switch {
	case q.Resolver && (q.TTL != 0 || q.SWR != 0):
		return fmt.Errorf("cache annotation: a resolver runs after writes and is not cached: no ttl or swr")
	case !q.Resolver && q.TTL <= 0:
		return fmt.Errorf("cache annotation: ttl must be set and positive")
	}
	q.Cached = !q.Resolver
	return nil
}

// annotationDoc matches a cache annotation that sqlc copied into the Go
// documentation of a query (it copies every comment line of a query).
var annotationDoc = regexp.MustCompile(`(?m)^[ \t]*// cache:[^\n]*\n`)

// StripAnnotationDocs removes the copied cache annotations from sqlc's
// output in dir: they are instructions to dbgen, not documentation of
// db.Querier. With check it only reports the files that still hold one.
func StripAnnotationDocs(dir string, check bool) error {
	return readFiles(filepath.Join(dir, "*.go"), func(f, src string) error {
		switch {
		case !strings.Contains(src, "Code generated by sqlc") || !annotationDoc.MatchString(src):
			return nil
		case check:
			return fmt.Errorf("%s documents cache annotations: run go run ./cmd/dbgen", f)
		}
		if err := os.WriteFile(f, []byte(annotationDoc.ReplaceAllString(src, "")), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f, err)
		}
		return nil
	})
}
