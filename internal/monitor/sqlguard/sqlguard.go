// Package sqlguard decides whether SQL sent to the monitor's EXPLAIN
// endpoints is a single read-only SELECT. It parses with PostgreSQL's own
// parser (pg_query_go), so what it checks is exactly what the server would
// run, and walks the whole tree, so nothing hides in a subquery or CTE.
//
// The guard is one layer of several: the statement also runs in a READ ONLY
// transaction that is always rolled back, under statement and lock timeouts.
package sqlguard

import (
	"errors"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Reasons a statement is refused. Their texts are fixed and safe to show to
// clients: they never echo the submitted SQL.
var (
	ErrSyntax          = errors.New("the SQL could not be parsed")
	ErrNotOneStatement = errors.New("exactly one statement is allowed")
	ErrNotSelect       = errors.New("only SELECT statements are allowed")
	ErrSelectInto      = errors.New("SELECT INTO is not allowed")
	ErrLocking         = errors.New("FOR UPDATE / FOR SHARE locking clauses are not allowed")
	ErrModifyingCTE    = errors.New("data-modifying statements are not allowed, including inside WITH")
	ErrDeniedFunction  = errors.New("the query calls a function that is not allowed")
	ErrTooLong         = errors.New("the SQL is too long")
	ErrNotCanonical    = errors.New("the SQL does not survive a round trip through the parser; write it more plainly")
)

var reasons = []error{
	ErrSyntax, ErrNotOneStatement, ErrNotSelect, ErrSelectInto,
	ErrLocking, ErrModifyingCTE, ErrDeniedFunction, ErrTooLong, ErrNotCanonical,
}

// Reason returns the fixed, client-safe text of the refusal err carries,
// and false when err is not one of the guard's refusals. Callers show it
// without knowing the list of reasons.
func Reason(err error) (string, bool) {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return r.Error(), true
		}
	}
	return "", false
}

// MaxLength bounds the SQL text accepted, so parsing stays cheap.
const MaxLength = 100_000

// deniedExact are functions refused by exact name: they sleep, read or write
// server files, change settings, signal backends, take locks, consume
// sequences or transaction ids, or run SQL given as a string (which would
// bypass this guard).
var deniedExact = map[string]bool{
	"set_config": true, "pg_terminate_backend": true, "pg_cancel_backend": true,
	"pg_reload_conf": true, "pg_rotate_logfile": true, "pg_read_file": true,
	"pg_read_binary_file": true, "pg_stat_file": true, "pg_file_write": true,
	"pg_file_rename": true, "pg_file_unlink": true, "pg_logdir_ls": true,
	"nextval": true, "setval": true, "currval": true, "lastval": true,
	"pg_notify": true, "pg_switch_wal": true, "pg_create_restore_point": true,
	"pg_promote": true, "pg_log_backend_memory_contexts": true,
	"pg_export_snapshot": true, "pg_import_system_collations": true,
	"pg_logical_emit_message": true, "pg_current_xact_id": true,
	"query_to_xml": true, "query_to_xmlschema": true, "query_to_xml_and_xmlschema": true,
	"cursor_to_xml": true, "cursor_to_xmlschema": true, "table_to_xml": true,
	"table_to_xmlschema": true, "table_to_xml_and_xmlschema": true,
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
	"ts_stat": true, "pg_stat_statements_reset": true, "loread": true, "lowrite": true,
}

// deniedPrefixes are function families refused by name prefix.
var deniedPrefixes = []string{
	"dblink", "pg_sleep", "lo_", "pg_ls_", "pg_advisory", "pg_try_advisory",
	"txid_", "pg_stat_reset", "pg_replication_", "pg_create_", "pg_drop_",
	"pg_wal_replay_", "pg_backup_", "pg_start_backup", "pg_stop_backup",
	"hypopg", "pg_read_",
}

// Checked is a statement that passed the guard.
type Checked struct {
	// SQL is the statement deparsed from the checked tree: running it rather
	// than the submitted text rules out any difference between what was
	// checked and what runs.
	SQL string
	// Params is the highest $n placeholder used (0 when there is none).
	Params int
	// Stmt is the checked SELECT, for callers that read its clauses.
	Stmt *pg_query.SelectStmt
}

// Check parses sql and returns it when it is exactly one plain SELECT.
//
// The text returned is the deparsed tree, and it is checked again: the
// deparser does not always print what the parser reads back (it prints
// "SELECT(A(0!0)$1)" as "SELECT $1::a()", which does not parse), so the
// statement that runs is accepted only when it is itself a checked SELECT
// that deparses to the same text.
func Check(sql string) (*Checked, error) {
	if len(sql) > MaxLength {
		return nil, ErrTooLong
	}
	first, err := check(sql)
	if err != nil {
		return nil, err
	}
	again, err := check(first.SQL)
	if err != nil || again.SQL != first.SQL || again.Params != first.Params {
		return nil, ErrNotCanonical
	}
	return again, nil
}

// check parses, walks and deparses sql once.
func check(sql string) (*Checked, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, ErrSyntax
	}
	if len(tree.Stmts) != 1 {
		return nil, ErrNotOneStatement
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return nil, ErrNotSelect
	}
	w := walker{}
	w.walk(tree.Stmts[0].GetStmt().ProtoReflect())
	if w.err != nil {
		return nil, w.err
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return nil, ErrSyntax
	}
	return &Checked{SQL: out, Params: w.maxParam, Stmt: sel}, nil
}

// walker visits every message in the tree through protobuf reflection, so a
// node type added by a future parser version is still visited.
type walker struct {
	err      error
	maxParam int
}

func (w *walker) walk(m protoreflect.Message) {
	if w.err != nil || !m.IsValid() {
		return
	}
	if err := w.visit(m.Interface()); err != nil {
		w.err = err
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && w.err == nil; i++ {
				w.walk(l.Get(i).Message())
			}
		case fd.IsMap():
			// The parse tree has no maps.
		case fd.Message() != nil:
			w.walk(v.Message())
		}
		return w.err == nil
	})
}

func (w *walker) visit(msg any) error {
	switch n := msg.(type) {
	case *pg_query.SelectStmt:
		if n.GetIntoClause() != nil {
			return ErrSelectInto
		}
		if len(n.GetLockingClause()) > 0 {
			return ErrLocking
		}
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
		return ErrModifyingCTE
	case *pg_query.FuncCall:
		if Denied(funcName(n)) {
			return ErrDeniedFunction
		}
	case *pg_query.ParamRef:
		// $0 parses but is no parameter PostgreSQL accepts; past 65535 the
		// protocol cannot bind it.
		if n.GetNumber() < 1 || n.GetNumber() > 65535 {
			return ErrSyntax
		}
		if int(n.GetNumber()) > w.maxParam {
			w.maxParam = int(n.GetNumber())
		}
	}
	return nil
}

// funcName is the function's unqualified name, lower-cased: a schema prefix
// (pg_catalog.pg_sleep) must not get around the deny-list.
func funcName(f *pg_query.FuncCall) string {
	parts := f.GetFuncname()
	if len(parts) == 0 {
		return ""
	}
	return strings.ToLower(parts[len(parts)-1].GetString_().GetSval())
}

// Denied reports whether a function of this name is refused.
func Denied(name string) bool {
	name = strings.ToLower(name)
	if deniedExact[name] {
		return true
	}
	for _, p := range deniedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
