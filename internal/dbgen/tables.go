package dbgen

import (
	"fmt"
	"regexp"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Tables are the tables a statement reads and writes, normalised: no
// "public." prefix, partitions named as their parent, CTE names left out.
type Tables struct {
	Reads, Writes []string
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
	OnDelete, OnUpdate map[string][]string
	// Columns are each table's columns, in declaration order.
	Columns map[string][]string
	// Types are each column's SQL type name ("uuid", "text", "int8"), by
	// "table.column".
	Types map[string]string
	// FKs are the single-column foreign keys (keys.go).
	FKs []ForeignKey
	// keyCols are the columns that lead a key, an index or a foreign key;
	// primary the primary key's first column.
	keyCols map[string][]string
	primary map[string]string
	// Triggers are the triggers of the migrations (triggers.go), functions
	// the text of each CREATE FUNCTION by name.
	Triggers  []Trigger
	functions map[string]string
}

// NewSchema returns an empty schema.
func NewSchema() *Schema {
	return &Schema{
		Partitioned: map[string]bool{},
		OnDelete:    map[string][]string{},
		OnUpdate:    map[string][]string{},
		Columns:     map[string][]string{},
		Types:       map[string]string{},
		keyCols:     map[string][]string{},
		primary:     map[string]string{},
		functions:   map[string]string{},
	}
}

var partitionName = regexp.MustCompile(`^(.+)_(p[0-9]+|default)$`)

func (s *Schema) parent(name string) string {
	if m := partitionName.FindStringSubmatch(name); m != nil && s.Partitioned[m[1]] {
		return m[1]
	}
	return name
}

// Read adds the partitioned tables, columns, keys and foreign keys created
// by the statements in src (the goose migrations), and its triggers. A
// goose migration's Down section is left out: it undoes the Up.
func (s *Schema) Read(src string) error {
	if loc := gooseDown.FindStringIndex(src); loc != nil {
		src = src[:loc[0]]
	}
	tree, err := pg_query.Parse(src)
	if err != nil {
		return fmt.Errorf("parse schema: %w", err)
	}
	walk(tree, func(n proto.Message) bool {
		switch st := n.(type) {
		case *pg_query.CreateStmt:
			if st.GetPartspec() != nil {
				s.Partitioned[relName(st.GetRelation())] = true
			}
			s.readTableElts(relName(st.GetRelation()), st)
		case *pg_query.AlterTableStmt:
			s.readTableElts(relName(st.GetRelation()), st)
		case *pg_query.IndexStmt:
			if ps := st.GetIndexParams(); len(ps) > 0 && ps[0].GetIndexElem().GetName() != "" {
				s.addKey(relName(st.GetRelation()), ps[0].GetIndexElem().GetName())
			}
		}
		return true
	})
	// A foreign key that references a primary key implicitly names its
	// column once every table is known.
	for i, fk := range s.FKs {
		if fk.ParentCol == "" {
			s.FKs[i].ParentCol = s.primary[fk.Parent]
		}
	}
	return s.readTriggers(src, tree)
}

var gooseDown = regexp.MustCompile(`(?m)^--\s*\+goose\s+Down\b`)

// changesRows reports whether a foreign key action modifies the
// referencing rows: c(ascade), n (set null), d (set default); a (no
// action) and r (restrict) only refuse.
func changesRows(action string) bool {
	return action == "c" || action == "n" || action == "d"
}

// Analyze derives the tables sql reads and writes. INSERT, UPDATE, DELETE,
// MERGE, COPY FROM and TRUNCATE targets are writes, also inside CTEs (a
// data-modifying CTE makes the whole statement a write); every other
// relation in FROM, JOIN, subqueries and CTE bodies is a read. A DELETE or
// UPDATE also writes the tables its foreign keys cascade to, and a write
// the tables its triggers write.
func Analyze(q *parsed, schema *Schema) Tables {
	reads := map[string]bool{}
	for _, rv := range q.rels {
		if t, ok := schema.relTable(rv, q.ctes); ok {
			reads[t] = true
		}
	}
	evs := statementEvents(q, schema)
	return Tables{Reads: sortedKeys(reads), Writes: sortedKeys(eventTables(append(evs, schema.triggerEvents(evs, map[string]bool{})...)))}
}

// relTable is the table a RangeVar names — a partition's parent for a
// partition — and false when it names one of the statement's CTEs instead
// (an unqualified name that ctes holds).
func (s *Schema) relTable(rel *pg_query.RangeVar, ctes map[string]bool) (string, bool) {
	if rel == nil || rel.GetSchemaname() == "" && ctes[rel.GetRelname()] {
		return "", false
	}
	return s.parent(relName(rel)), true
}
