package dbgen

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Tables are the tables a statement reads and writes, normalised: no
// "public." prefix, partitions named as their parent, CTE names left out.
type Tables struct {
	Reads  []string
	Writes []string
}

// Partitioned is the set of partitioned tables of the schema; a relation
// named <parent>_p<digits> or <parent>_default is rolled up to <parent>,
// which is how the schema names the partitions it creates at run time.
type Partitioned map[string]bool

var partitionName = regexp.MustCompile(`^(.+)_(p[0-9]+|default)$`)

func (p Partitioned) parent(name string) string {
	if m := partitionName.FindStringSubmatch(name); m != nil && p[m[1]] {
		return m[1]
	}
	return name
}

// ReadSchema finds the partitioned tables created by the statements in
// src (the goose migrations).
func ReadSchema(src string, into Partitioned) error {
	tree, err := parseTree(src)
	if err != nil {
		return fmt.Errorf("parse schema: %w", err)
	}
	walk(tree, func(key string, v map[string]any) bool {
		if key != "CreateStmt" {
			return true
		}
		if _, ok := v["partspec"]; ok {
			if rel, ok := v["relation"].(map[string]any); ok {
				into[relName(rel)] = true
			}
		}
		return true
	})
	return nil
}

// Analyze derives the tables sql reads and writes. INSERT, UPDATE, DELETE,
// MERGE, COPY FROM and TRUNCATE targets are writes, also inside CTEs (a
// data-modifying CTE makes the whole statement a write); every other
// relation in FROM, JOIN, subqueries and CTE bodies is a read.
func Analyze(sql string, parts Partitioned) (Tables, error) {
	tree, err := parseTree(sql)
	if err != nil {
		return Tables{}, err
	}
	ctes := map[string]bool{}
	walk(tree, func(key string, v map[string]any) bool {
		if key == "CommonTableExpr" {
			if n, ok := v["ctename"].(string); ok {
				ctes[n] = true
			}
		}
		return true
	})
	reads, writes := map[string]bool{}, map[string]bool{}
	name := func(rel map[string]any) (string, bool) {
		schema, _ := rel["schemaname"].(string)
		n := relName(rel)
		if schema == "" && ctes[n] {
			return "", false
		}
		return parts.parent(n), true
	}
	walk(tree, func(key string, v map[string]any) bool {
		switch key {
		case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt":
			if rel, ok := v["relation"].(map[string]any); ok {
				if n, ok := name(rel); ok {
					writes[n] = true
				}
			}
		case "CopyStmt":
			if rel, ok := v["relation"].(map[string]any); ok {
				if n, ok := name(rel); ok {
					if from, _ := v["is_from"].(bool); from {
						writes[n] = true
					} else {
						reads[n] = true
					}
				}
			}
		case "TruncateStmt":
			rels, _ := v["relations"].([]any)
			for _, r := range rels {
				if w, ok := r.(map[string]any); ok {
					if rel, ok := w["RangeVar"].(map[string]any); ok {
						if n, ok := name(rel); ok {
							writes[n] = true
						}
					}
				}
			}
			return false
		case "RangeVar":
			if n, ok := name(v); ok {
				reads[n] = true
			}
		}
		return true
	})
	return Tables{Reads: sorted(reads), Writes: sorted(writes)}, nil
}

// relName is a RangeVar's name, schema-qualified unless in public.
func relName(rel map[string]any) string {
	n, _ := rel["relname"].(string)
	if s, _ := rel["schemaname"].(string); s != "" && s != "public" {
		return s + "." + n
	}
	return n
}

func parseTree(sql string) (any, error) {
	js, err := pg_query.ParseToJSON(sql)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return nil, fmt.Errorf("decode parse tree: %w", err)
	}
	return tree, nil
}

// walk calls fn for every object under a key of the JSON parse tree, in a
// fixed order; fn returning false skips the object's children.
func walk(node any, fn func(key string, v map[string]any) bool) {
	switch n := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			child := n[k]
			if obj, ok := child.(map[string]any); ok && !fn(k, obj) {
				continue
			}
			walk(child, fn)
		}
	case []any:
		for _, c := range n {
			walk(c, fn)
		}
	}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
