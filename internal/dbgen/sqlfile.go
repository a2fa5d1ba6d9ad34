// Package dbgen generates the caching Querier decorator (db/dbcache) from
// the sqlc queries: which queries are cached and for how long comes from
// their "-- cache:" annotations, which tables each reads and writes from
// parsing their SQL, and the exact Go types from the generated db package.
package dbgen

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	// lines right after the name line.
	Cached bool
	TTL    time.Duration
	SWR    time.Duration
}

// Pos is "file:line" of the query, for errors.
func (q Query) Pos() string { return fmt.Sprintf("%s:%d", q.File, q.Line) }

// ReadQueryDir parses every .sql file of dir, in name order.
func ReadQueryDir(dir string) ([]Query, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(files)
	var all []Query
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read queries: %w", err)
		}
		qs, err := ParseQueries(filepath.Join(filepath.Base(dir), filepath.Base(f)), string(src))
		if err != nil {
			return nil, err
		}
		all = append(all, qs...)
	}
	return all, nil
}

// ParseQueries splits one sqlc query file into its queries.
func ParseQueries(file, src string) ([]Query, error) {
	var (
		out  []Query
		cur  *Query
		body []string
		done bool // the current statement's terminating ';' was seen
	)
	finish := func() {
		if cur != nil {
			cur.SQL = strings.TrimSpace(strings.Join(body, "\n"))
			out = append(out, *cur)
		}
		cur, body, done = nil, nil, false
	}
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if rest, ok := strings.CutPrefix(trimmed, "-- name:"); ok {
			finish()
			f := strings.Fields(rest)
			if len(f) != 2 || !strings.HasPrefix(f[1], ":") {
				return nil, fmt.Errorf("%s:%d: want \"-- name: Name :kind\", got %q", file, line, trimmed)
			}
			cur = &Query{Name: f[0], Kind: f[1], File: file, Line: line}
			continue
		}
		if cur == nil || done {
			continue
		}
		if rest, ok := strings.CutPrefix(trimmed, "-- cache:"); ok {
			if len(body) > 0 {
				return nil, fmt.Errorf("%s:%d: %s: the cache annotation must come before the SQL", file, line, cur.Name)
			}
			if err := parseAnnotation(cur, rest); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", file, line, cur.Name, err)
			}
			continue
		}
		if strings.HasPrefix(trimmed, "--") || (trimmed == "" && len(body) == 0) {
			continue
		}
		body = append(body, text)
		if strings.HasSuffix(trimmed, ";") {
			done = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	finish()
	return out, nil
}

func parseAnnotation(q *Query, s string) error {
	if q.Cached {
		return fmt.Errorf("second cache annotation")
	}
	q.Cached = true
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("cache annotation: %q is not key=value", kv)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("cache annotation: %s=%q is not a duration", k, v)
		}
		switch k {
		case "ttl":
			q.TTL = d
		case "swr":
			q.SWR = d
		default:
			return fmt.Errorf("cache annotation: unknown key %q (want ttl, swr)", k)
		}
	}
	if q.TTL <= 0 {
		return fmt.Errorf("cache annotation: ttl must be set and positive")
	}
	return nil
}
