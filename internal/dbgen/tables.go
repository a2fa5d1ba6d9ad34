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

// Schema is what the generator needs from the migrations: which tables are
// partitioned (a relation named <parent>_p<digits> or <parent>_default is
// rolled up to <parent>, which is how the schema names the partitions it
// creates at run time), and which foreign keys make a write to one table
// change rows of another.
type Schema struct {
	Partitioned map[string]bool
	// OnDelete and OnUpdate map a referenced table to the tables whose rows
	// a DELETE or UPDATE of it changes (ON ... CASCADE, SET NULL, SET
	// DEFAULT).
	OnDelete map[string][]string
	OnUpdate map[string][]string
	// Columns are each table's columns, in declaration order.
	Columns map[string][]string
	// Types are each column's SQL type name ("uuid", "text", "int8").
	Types map[string]map[string]string
	// FKs are the single-column foreign keys (keys.go).
	FKs []ForeignKey
	// keyCols are the columns that lead a key, an index or a foreign key;
	// primary the primary key's first column.
	keyCols map[string][]string
	primary map[string]string
	// Triggers are the triggers of the migrations (triggers.go), functions
	// the text of each CREATE FUNCTION by name, and triggerWrites what each
	// trigger's function writes, by "table.trigger".
	Triggers      []Trigger
	functions     map[string]string
	triggerWrites map[string][]TriggerWrite
}

// NewSchema returns an empty schema.
func NewSchema() *Schema {
	return &Schema{
		Partitioned: map[string]bool{}, OnDelete: map[string][]string{}, OnUpdate: map[string][]string{}, Columns: map[string][]string{},
		Types: map[string]map[string]string{}, keyCols: map[string][]string{}, primary: map[string]string{},
		functions: map[string]string{}, triggerWrites: map[string][]TriggerWrite{},
	}
}

var partitionName = regexp.MustCompile(`^(.+)_(p[0-9]+|default)$`)

func (s *Schema) parent(name string) string {
	if s == nil {
		return name
	}
	if m := partitionName.FindStringSubmatch(name); m != nil && s.Partitioned[m[1]] {
		return m[1]
	}
	return name
}

// Read adds the partitioned tables and foreign keys created by the
// statements in src (the goose migrations), and its triggers. A goose
// migration's Down section is left out: it undoes the Up.
func (s *Schema) Read(src string) error {
	src = gooseUp(src)
	tree, err := parseTree(src)
	if err != nil {
		return fmt.Errorf("parse schema: %w", err)
	}
	walk(tree, func(key string, v map[string]any) bool {
		if key != "CreateStmt" && key != "AlterTableStmt" {
			return true
		}
		rel, ok := v["relation"].(map[string]any)
		if !ok {
			return true
		}
		child := relName(rel)
		if _, ok := v["partspec"]; ok && key == "CreateStmt" {
			s.Partitioned[child] = true
		}
		walk(v, func(key string, c map[string]any) bool {
			if key == "ColumnDef" {
				if col, _ := c["colname"].(string); col != "" {
					s.Columns[child] = appendNew(s.Columns[child], col)
				}
				return true
			}
			if key != "Constraint" || c["contype"] != "CONSTR_FOREIGN" {
				return true
			}
			pk, ok := c["pktable"].(map[string]any)
			if !ok {
				return true
			}
			parent := relName(pk)
			if changesRows(c["fk_del_action"]) {
				s.OnDelete[parent] = appendNew(s.OnDelete[parent], child)
			}
			if changesRows(c["fk_upd_action"]) {
				s.OnUpdate[parent] = appendNew(s.OnUpdate[parent], child)
			}
			return true
		})
		return true
	})
	s.readKeys(tree)
	s.resolveFKs()
	s.readTriggers(src, tree)
	return s.analyzeTriggers()
}

var gooseDown = regexp.MustCompile(`(?m)^--\s*\+goose\s+Down\b`)

// gooseUp is a migration without its Down section.
func gooseUp(src string) string {
	if loc := gooseDown.FindStringIndex(src); loc != nil {
		return src[:loc[0]]
	}
	return src
}

// changesRows reports whether a foreign key action modifies the
// referencing rows: c(ascade), n (set null), d (set default); a (no
// action) and r (restrict) only refuse.
func changesRows(action any) bool {
	a, _ := action.(string)
	return a == "c" || a == "n" || a == "d"
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// closure adds to writes every table reached from t through edges.
func closure(t string, edges map[string][]string, writes map[string]bool) {
	for _, child := range edges[t] {
		if !writes[child] {
			writes[child] = true
			closure(child, edges, writes)
		}
	}
}

// Analyze derives the tables sql reads and writes. INSERT, UPDATE, DELETE,
// MERGE, COPY FROM and TRUNCATE targets are writes, also inside CTEs (a
// data-modifying CTE makes the whole statement a write); every other
// relation in FROM, JOIN, subqueries and CTE bodies is a read. A DELETE or
// UPDATE also writes the tables its foreign keys cascade to.
func Analyze(sql string, schema *Schema) (Tables, error) {
	tree, err := parseTree(sql)
	if err != nil {
		return Tables{}, err
	}
	ctes := cteNames(tree)
	reads, writes := map[string]bool{}, map[string]bool{}
	name := func(rel map[string]any) (string, bool) { return schema.relTable(rel, ctes) }
	walk(tree, func(key string, v map[string]any) bool {
		switch key {
		case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt":
			if rel, ok := v["relation"].(map[string]any); ok {
				if n, ok := name(rel); ok {
					writes[n] = true
					if schema != nil && (key == "DeleteStmt" || key == "MergeStmt") {
						closure(n, schema.OnDelete, writes)
					}
					if schema != nil && (key == "UpdateStmt" || key == "MergeStmt") {
						closure(n, schema.OnUpdate, writes)
					}
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
							// TRUNCATE ... CASCADE empties the referencing tables.
							if b, _ := v["behavior"].(string); b == "DROP_CASCADE" && schema != nil {
								closure(n, schema.OnDelete, writes)
							}
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
	if schema != nil {
		for _, ev := range schema.triggerEvents(statementEvents(tree, schema, ctes)) {
			writes[ev.table] = true
		}
	}
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

// relTable is the table a RangeVar names — a partition's parent for a
// partition — and false when it names one of the statement's CTEs instead
// (an unqualified name that ctes holds).
func (s *Schema) relTable(rel map[string]any, ctes map[string]bool) (string, bool) {
	ns, _ := rel["schemaname"].(string)
	n := relName(rel)
	if ns == "" && ctes[n] {
		return "", false
	}
	return s.parent(n), true
}
