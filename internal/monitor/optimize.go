package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/monitor/sqlguard"
)

// Dexter's bars: an index is suggested only when the plan's cost starts at
// least this high and drops by at least this share.
const (
	minInitialCost = 100
	minCostDrop    = 0.5
)

// Advice methods.
const (
	MethodHypoPG    = "hypopg"
	MethodHeuristic = "pg_stats_heuristic"
)

// OptimizeRequest is the body of POST /db-monitor/optimize-query.
type OptimizeRequest struct {
	SQL string `json:"sql" required:"true" description:"One SELECT; $1… for parameters."`
}

// IndexAdvice is one candidate index and what was found about it.
type IndexAdvice struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	// Suggested: worth creating (verified: cost bars met; heuristic: the
	// estimate says it is selective).
	Suggested bool   `json:"suggested"`
	Reason    string `json:"reason"`
	// Verified with a hypothetical index (hypopg): costs and plan use are
	// measured, not guessed.
	Verified   bool            `json:"verified"`
	CostBefore *float64        `json:"cost_before,omitempty"`
	CostAfter  *float64        `json:"cost_after,omitempty"`
	SavingPct  *float64        `json:"saving_pct,omitempty"`
	UsedByPlan *bool           `json:"used_by_plan,omitempty"`
	EstRows    *float64        `json:"estimated_rows,omitempty"`
	Statements []string        `json:"statements"`
	Plan       json.RawMessage `json:"hypothetical_plan,omitempty"`
}

// Optimization is the answer of POST /db-monitor/optimize-query.
type Optimization struct {
	Method      string        `json:"method"`
	Verified    bool          `json:"verified"`
	Note        string        `json:"note"`
	GenericPlan bool          `json:"generic_plan"`
	CostBefore  *float64      `json:"cost_before,omitempty"`
	Suggestions []IndexAdvice `json:"suggestions"`
	Candidates  []IndexAdvice `json:"candidates"`
	Skipped     []IndexAdvice `json:"covered_by_existing_index"`
}

// table is a resolved table of the query with what advice needs about it.
type table struct {
	ref         tableRef
	qualified   string // schema.name, quoted as needed
	oid         uint32
	partitioned bool
	rows        float64
	columns     map[string]bool
	leading     [][]string // each valid index's leading plain columns
	leaves      []string   // leaf partitions (qualified), for a partitioned table
}

// OptimizeQuery suggests indexes for one SELECT: candidates from its WHERE,
// JOIN and ORDER BY columns, minus those an existing index already leads
// with, each verified alone with a hypothetical index when hypopg is
// installed, else estimated from pg_stats and labelled unverified.
func (m *Monitor) OptimizeQuery(ctx context.Context, req OptimizeRequest) (*Optimization, error) {
	checked, err := sqlguard.Check(req.SQL)
	if err != nil {
		return nil, invalid(err)
	}
	shape := shapeOf(checked.Stmt)
	tables, err := m.loadTables(ctx, shape.tables)
	if err != nil {
		return nil, err
	}
	colsByTable := map[int]map[string]bool{}
	for i, t := range tables {
		if t != nil {
			colsByTable[i] = t.columns
		}
	}
	out := &Optimization{Suggestions: []IndexAdvice{}, Candidates: []IndexAdvice{}, Skipped: []IndexAdvice{}, GenericPlan: checked.Params > 0}
	var cands []IndexAdvice
	for i, uses := range shape.resolve(colsByTable) {
		t := tables[i]
		for _, cols := range candidateColumns(uses) {
			a := IndexAdvice{Table: t.qualified, Columns: cols, Statements: createStatements(t, cols)}
			if t.coveredBy(cols) {
				a.Reason = "an existing valid index already leads with these columns"
				out.Skipped = append(out.Skipped, a)
				continue
			}
			cands = append(cands, a)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Table < cands[j].Table })

	hypo := m.hypoStatus(ctx)
	if hypo.Available && !m.cfg.HypoPGDisabled {
		out.Method, out.Verified = MethodHypoPG, true
		out.Note = "each candidate was tested alone as a hypothetical index (hypopg); suggested only when the plan cost drops by at least 50 % from at least 100"
		if err := m.verify(ctx, checked, tables, cands, out); err != nil {
			return nil, err
		}
	} else {
		out.Method = MethodHeuristic
		reason := hypo.Reason
		if m.cfg.HypoPGDisabled {
			reason = "hypopg is disabled by MONITOR_HYPOPG_DISABLED"
		}
		out.Note = "UNVERIFIED: " + reason + "; candidates were estimated from pg_stats selectivity (PgHero's method) and no plan was checked. " + hypo.Enable
		if err := m.estimate(ctx, tables, cands, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// verify measures every candidate with hypopg.
func (m *Monitor) verify(ctx context.Context, checked *sqlguard.Checked, tables []*table, cands []IndexAdvice, out *Optimization) error {
	generic := checked.Params > 0
	basePlan, err := m.explain(ctx, checked, nil, false, generic, nil)
	if err != nil {
		return err
	}
	base, err := parsePlan(basePlan)
	if err != nil {
		return &Error{Kind: ErrQueryFailed, Err: err}
	}
	before := base.Plan.TotalCost
	out.CostBefore = &before
	byName := map[string]*table{}
	for _, t := range tables {
		if t != nil {
			byName[t.qualified] = t
		}
	}
	for _, c := range cands {
		t := byName[c.Table]
		var hypoNames []string
		create := func(ctx context.Context, tx pgx.Tx) error {
			for _, target := range t.hypoTargets() {
				var name string
				// The statement is built from catalog names, quoted.
				stmt := fmt.Sprintf("CREATE INDEX ON %s USING btree (%s)", target, quoteCols(c.Columns))
				if err := tx.QueryRow(ctx, "SELECT indexname FROM hypopg_create_index($1)", stmt).Scan(&name); err != nil {
					return err
				}
				hypoNames = append(hypoNames, name)
			}
			return nil
		}
		plan, err := m.explainWithHypo(ctx, checked, generic, create)
		if errors.Is(err, ErrQueryFailed) {
			// One candidate PostgreSQL cannot build (a type without a btree
			// operator class) says so; the others are still tried.
			c.Reason = "hypopg could not create this index (SQLSTATE " + SQLState(err) + "): the column's type may have no btree operator class"
			out.Candidates = append(out.Candidates, c)
			continue
		}
		if err != nil {
			return err
		}
		p, err := parsePlan(plan)
		if err != nil {
			return &Error{Kind: ErrQueryFailed, Err: err}
		}
		after := p.Plan.TotalCost
		used := usesIndex(p.Plan, hypoNames)
		saving := 0.0
		if before > 0 {
			saving = 100 * (before - after) / before
		}
		c.Verified = true
		c.CostBefore, c.CostAfter, c.UsedByPlan = &before, &after, &used
		c.SavingPct = ptr(math.Round(saving*10) / 10)
		switch {
		case !used:
			c.Reason = "the planner does not use this index"
		case before < minInitialCost:
			c.Reason = fmt.Sprintf("the query already costs %.1f, under %d: not worth an index", before, minInitialCost)
		case after > before*(1-minCostDrop):
			c.Reason = fmt.Sprintf("cost drops only %.1f %%, under 50 %%", saving)
		default:
			c.Suggested = true
			c.Reason = fmt.Sprintf("cost drops %.1f %% (%.1f → %.1f) and the plan uses the index", saving, before, after)
			c.Plan = plan
		}
		out.Candidates = append(out.Candidates, c)
	}
	for _, c := range out.Candidates {
		if c.Suggested {
			out.Suggestions = append(out.Suggestions, c)
		}
	}
	sort.SliceStable(out.Suggestions, func(i, j int) bool { return *out.Suggestions[i].SavingPct > *out.Suggestions[j].SavingPct })
	return nil
}

// explainWithHypo explains with hypothetical indexes made by create, and
// drops them afterwards: hypopg keeps them for the session, which a
// rollback does not end.
func (m *Monitor) explainWithHypo(ctx context.Context, checked *sqlguard.Checked, generic bool, create func(context.Context, pgx.Tx) error) (json.RawMessage, error) {
	return m.explain(ctx, checked, nil, false, generic, create, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SELECT hypopg_reset()")
		return err
	})
}

func usesIndex(n planNode, names []string) bool {
	found := false
	n.walk(func(p *planNode) {
		for _, name := range names {
			if p.IndexName == name {
				found = true
			}
		}
	})
	return found
}

func ptr[T any](v T) *T { return &v }

// hypoTargets are the relations a hypothetical index goes on. hypopg does
// not take partitioned tables, and the planner picks indexes per partition
// anyway, so a partitioned table gets one on each leaf partition.
func (t *table) hypoTargets() []string {
	if t.partitioned {
		return t.leaves
	}
	return []string{t.qualified}
}

func (t *table) coveredBy(cols []string) bool {
	for _, lead := range t.leading {
		if len(lead) < len(cols) {
			continue
		}
		match := true
		for i := range cols {
			if lead[i] != cols[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func quoteCols(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// indexName makes a name in PostgreSQL's style, within its 63-byte limit.
func indexName(table string, cols []string) string {
	base := table
	if i := strings.LastIndex(base, "."); i >= 0 {
		base = base[i+1:]
	}
	base = strings.Trim(base, `"`)
	n := base + "_" + strings.Join(cols, "_") + "_idx"
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// createStatements is how to build the index without blocking writes.
// CREATE INDEX CONCURRENTLY fails on a partitioned table, so there the
// index is created ON ONLY the parent (invalid until complete), built
// concurrently on each partition, and each partition's index attached; the
// parent's index turns valid when the last one is attached.
func createStatements(t *table, cols []string) []string {
	name := indexName(t.qualified, cols)
	if !t.partitioned {
		return []string{fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s (%s);", pgx.Identifier{name}.Sanitize(), t.qualified, quoteCols(cols))}
	}
	out := []string{fmt.Sprintf("CREATE INDEX %s ON ONLY %s (%s);", pgx.Identifier{name}.Sanitize(), t.qualified, quoteCols(cols))}
	for _, leaf := range t.leaves {
		pname := indexName(leaf, cols)
		out = append(out,
			fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s (%s);", pgx.Identifier{pname}.Sanitize(), leaf, quoteCols(cols)),
			fmt.Sprintf("ALTER INDEX %s ATTACH PARTITION %s;", pgx.Identifier{name}.Sanitize(), pgx.Identifier{pname}.Sanitize()))
	}
	return out
}

// loadTables resolves the query's tables in the catalog; a name that is not
// a table (a CTE, a view, a function) comes back nil.
func (m *Monitor) loadTables(ctx context.Context, refs []tableRef) ([]*table, error) {
	out := make([]*table, len(refs))
	for i, r := range refs {
		t := &table{ref: r, columns: map[string]bool{}}
		found := false
		err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
			var oid *uint32
			err := tx.QueryRow(ctx, `
SELECT c.oid, c.oid::regclass::text, c.relkind = 'p', greatest(c.reltuples, 0)::float8
FROM pg_class c
WHERE c.oid = to_regclass(CASE WHEN $1 = '' THEN quote_ident($2) ELSE quote_ident($1) || '.' || quote_ident($2) END)
  AND c.relkind IN ('r', 'p')`, r.schema, r.name).Scan(&oid, &t.qualified, &t.partitioned, &t.rows)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			found, t.oid = true, *oid
			rows, err := tx.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, t.oid)
			if err != nil {
				return err
			}
			var col string
			if _, err := pgx.ForEachRow(rows, []any{&col}, func() error { t.columns[col] = true; return nil }); err != nil {
				return err
			}
			// Leading plain columns of each valid index, up to the first
			// expression (indkey 0).
			rows, err = tx.Query(ctx, `
SELECT array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= coalesce((SELECT min(o) - 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY z(n, o) WHERE n = 0), 1000)
             ORDER BY k.ord)
FROM pg_index i WHERE i.indrelid = $1 AND i.indisvalid AND i.indpred IS NULL`, t.oid)
			if err != nil {
				return err
			}
			var lead []string
			if _, err := pgx.ForEachRow(rows, []any{&lead}, func() error { t.leading = append(t.leading, lead); return nil }); err != nil {
				return err
			}
			if !t.partitioned {
				return nil
			}
			rows, err = tx.Query(ctx, `
SELECT relid::regclass::text, (SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = relid)
FROM pg_partition_tree($1) WHERE isleaf ORDER BY 1`, t.oid)
			if err != nil {
				return err
			}
			var leaf string
			var n float64
			t.rows = 0
			_, err = pgx.ForEachRow(rows, []any{&leaf, &n}, func() error {
				t.leaves = append(t.leaves, leaf)
				t.rows += n
				return nil
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", r.name, classify(err))
		}
		if found {
			out[i] = t
		}
	}
	return out, nil
}

// hypoStatus says whether hypothetical indexes can be used here.
func (m *Monitor) hypoStatus(ctx context.Context) ExtensionStatus {
	var installed, available bool
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg'),
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')`).Scan(&installed, &available)
	})
	switch {
	case err != nil:
		return ExtensionStatus{Reason: "could not read the installed extensions: " + kindText(err)}
	case installed:
		return ExtensionStatus{Available: true}
	case available:
		return ExtensionStatus{Reason: "the hypopg extension is not created in this database",
			Enable: "Run CREATE EXTENSION hypopg in this database (it needs CREATE on the database) to have each suggestion verified."}
	}
	return ExtensionStatus{Reason: "the hypopg extension is not installed on the server",
		Enable: "Install it (Debian: apt install postgresql-15-hypopg) and run CREATE EXTENSION hypopg to have each suggestion verified."}
}

// colStat is pg_stats' view of one column.
type colStat struct {
	nullFrac, nDistinct float64
}

// estimate is PgHero's method: from pg_stats, the rows an equality on each
// column leaves, most selective first; an index is suggested when it would
// leave at most a tenth of a table of at least largeTableRows/10 rows.
func (m *Monitor) estimate(ctx context.Context, tables []*table, cands []IndexAdvice, out *Optimization) error {
	byName := map[string]*table{}
	for _, t := range tables {
		if t != nil {
			byName[t.qualified] = t
		}
	}
	stats := map[string]map[string]colStat{}
	for name, t := range byName {
		s, err := m.columnStats(ctx, t)
		if err != nil {
			return err
		}
		stats[name] = s
	}
	for _, c := range cands {
		t := byName[c.Table]
		rows := t.rows
		known := true
		for _, col := range c.Columns {
			st, ok := stats[c.Table][col]
			if !ok {
				known = false
				break
			}
			rows *= selectivity(st, t.rows)
		}
		switch {
		case !known:
			c.Reason = "no pg_stats for these columns yet: run ANALYZE " + c.Table
		case t.rows < largeTableRows/10:
			c.Reason = fmt.Sprintf("the table has only ~%.0f rows: a sequential scan is cheap", t.rows)
		case rows > t.rows*selectiveShare:
			c.EstRows = ptr(math.Round(rows))
			c.Reason = fmt.Sprintf("an equality here would still leave ~%.0f of ~%.0f rows: not selective", rows, t.rows)
		default:
			c.EstRows = ptr(math.Round(rows))
			c.Suggested = true
			c.Reason = fmt.Sprintf("estimated from pg_stats: ~%.0f of ~%.0f rows match an equality (unverified)", rows, t.rows)
		}
		out.Candidates = append(out.Candidates, c)
		if c.Suggested {
			out.Suggestions = append(out.Suggestions, c)
		}
	}
	sort.SliceStable(out.Suggestions, func(i, j int) bool { return *out.Suggestions[i].EstRows < *out.Suggestions[j].EstRows })
	return nil
}

// selectivity is the share of rows an equality on the column keeps.
func selectivity(s colStat, rows float64) float64 {
	nd := s.nDistinct
	if nd < 0 { // a negative n_distinct is a fraction of the rows
		nd = -nd * rows
	}
	if nd < 1 {
		nd = 1
	}
	return (1 - s.nullFrac) / nd
}

func (m *Monitor) columnStats(ctx context.Context, t *table) (map[string]colStat, error) {
	out := map[string]colStat{}
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// A partitioned table's statistics are the inherited ones (ANALYZE
		// on the parent); a plain table's are not.
		rows, err := tx.Query(ctx, `
SELECT s.attname, s.null_frac::float8, s.n_distinct::float8
FROM pg_stats s
JOIN pg_class c ON c.relname = s.tablename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
WHERE c.oid = $1 AND s.inherited = $2`, t.oid, t.partitioned)
		if err != nil {
			return err
		}
		var name string
		var s colStat
		_, err = pgx.ForEachRow(rows, []any{&name, &s.nullFrac, &s.nDistinct}, func() error {
			out[name] = s
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read pg_stats of %s: %w", t.qualified, classify(err))
	}
	return out, nil
}
