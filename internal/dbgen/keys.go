package dbgen

import (
	"slices"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// What the scopes are made of, read from the migrations: each column's
// SQL type, the single-column foreign keys, and the columns that lead a
// key or an index.

// ForeignKey is a single-column foreign key: Child.ChildCol references
// Parent.ParentCol.
type ForeignKey struct {
	Child, ChildCol   string
	Parent, ParentCol string
	// OnDelete is pg_query's action letter: a (no action), r (restrict),
	// c (cascade), n (set null), d (set default).
	OnDelete string
}

// ScopeDef names rows of Table: those whose Column equals a value, or, for
// a path (Parent set), those whose Column equals Parent.ParentKey of a
// Parent row whose ParentColumn equals the value.
type ScopeDef struct {
	Table, Column                   string
	Parent, ParentKey, ParentColumn string
}

// Name is the scope's name in generated code, the cache and Redis:
// "emails.campaign_id", or "emails.campaign_id>campaigns.user_id" for a
// path (the join is on the foreign key).
func (s ScopeDef) Name() string {
	if s.Parent == "" {
		return s.Table + "." + s.Column
	}
	return s.Table + "." + s.Column + ">" + s.Parent + "." + s.ParentColumn
}

// IsPath reports whether the scope goes through a parent table.
func (s ScopeDef) IsPath() bool { return s.Parent != "" }

// readTableElts records the columns, their types, keys and foreign keys
// that a CREATE TABLE or ALTER TABLE of table defines.
func (s *Schema) readTableElts(table string, stmt proto.Message) {
	walk(stmt, func(n proto.Message) bool {
		switch n := n.(type) {
		case *pg_query.ColumnDef:
			col := n.GetColname()
			if col == "" {
				return true
			}
			s.Columns[table] = union(s.Columns[table], col)
			if name := last(strs(n.GetTypeName().GetNames())); name != "" {
				s.Types[table+"."+col] = name
			}
			for _, c := range n.GetConstraints() {
				s.readConstraint(table, []string{col}, c.GetConstraint())
			}
			return false
		case *pg_query.Constraint:
			s.readConstraint(table, nil, n)
			return false
		}
		return true
	})
}

// readConstraint records a key or foreign key; cols are the column of a
// column constraint, nil for a table constraint (which names its own).
func (s *Schema) readConstraint(table string, cols []string, c *pg_query.Constraint) {
	switch c.GetContype() {
	case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
		// A column constraint's own key list is empty.
		if keys := append(cols, strs(c.GetKeys())...); len(keys) > 0 {
			s.addKey(table, keys[0])
			if c.GetContype() == pg_query.ConstrType_CONSTR_PRIMARY {
				s.primary[table] = keys[0]
			}
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		parent := relName(c.GetPktable())
		if changesRows(c.GetFkDelAction()) {
			s.OnDelete[parent] = union(s.OnDelete[parent], table)
		}
		if changesRows(c.GetFkUpdAction()) {
			s.OnUpdate[parent] = union(s.OnUpdate[parent], table)
		}
		child, parentCols := append(cols, strs(c.GetFkAttrs())...), strs(c.GetPkAttrs())
		if len(child) != 1 || len(parentCols) > 1 {
			return // composite keys name no single scope
		}
		s.FKs = append(s.FKs, ForeignKey{Child: table, ChildCol: child[0], Parent: parent, ParentCol: last(parentCols), OnDelete: c.GetFkDelAction()})
		s.addKey(table, child[0])
	}
}

func (s *Schema) addKey(table, col string) { s.keyCols[table] = union(s.keyCols[table], col) }

// Scopes are the scopes of table, in order of preference for pinning a
// read: the primary key, the other key, index-leading and foreign-key
// columns in declaration order, then the paths through its foreign keys
// to each scope column of the parent. They come from the schema alone, so
// every deploy of the same schema names the same scopes.
func (s *Schema) Scopes(table string) []ScopeDef {
	var out []ScopeDef
	for _, col := range s.directScopeCols(table) {
		out = append(out, ScopeDef{Table: table, Column: col})
	}
	for _, fk := range s.FKs {
		if fk.Child != table || fk.ParentCol == "" {
			continue
		}
		for _, pc := range s.directScopeCols(fk.Parent) {
			if pc != fk.ParentCol {
				out = append(out, ScopeDef{Table: table, Column: fk.ChildCol, Parent: fk.Parent, ParentKey: fk.ParentCol, ParentColumn: pc})
			}
		}
	}
	return out
}

func (s *Schema) directScopeCols(table string) []string {
	pk := s.primary[table]
	cols := slices.DeleteFunc(slices.Clone(s.keyCols[table]), func(c string) bool { return scopeType(s.Types[table+"."+c]) == "" })
	sort.SliceStable(cols, func(i, j int) bool { return cols[i] == pk && cols[j] != pk })
	return cols
}

// AllScopes are the scopes of every table, by table name.
func (s *Schema) AllScopes() []ScopeDef {
	var out []ScopeDef
	for _, t := range sortedKeys(s.Columns) {
		out = append(out, s.Scopes(t)...)
	}
	return out
}

// valueType is the SQL type of the values a scope is pinned to.
func (s *Schema) valueType(sc ScopeDef) string {
	if sc.IsPath() {
		return s.Types[sc.Parent+"."+sc.ParentColumn]
	}
	return s.Types[sc.Name()]
}

// scopeType classifies a SQL type by how its values hash: "bytes16"
// (uuid), "text", "bytes" (bytea), "int"; "" for types no scope is made of
// (times and floats have more than one spelling of equal values).
func scopeType(sqlType string) string { return scopeTypes[strings.ToLower(sqlType)] }

var scopeTypes = map[string]string{
	"uuid": "bytes16", "bytea": "bytes",
	"text": "text", "varchar": "text", "citext": "text", "bpchar": "text",
	"int2": "int", "int4": "int", "int8": "int", "smallint": "int", "integer": "int", "bigint": "int", "serial": "int", "bigserial": "int",
}
