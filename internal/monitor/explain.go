package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replyrocket/replyrocket/internal/monitor/sqlguard"
)

// AnalyzeRequest is the body of POST /db-monitor/analyze-query.
type AnalyzeRequest struct {
	SQL     string `json:"sql" required:"true" description:"One SELECT; $1… for parameters."`
	Params  []any  `json:"params,omitempty" description:"Values of $1…, in order."`
	Analyze bool   `json:"analyze,omitempty" description:"EXPLAIN ANALYZE (needs MONITOR_ALLOW_ANALYZE)."`
}

// Analysis is the answer of POST /db-monitor/analyze-query.
type Analysis struct {
	Plan json.RawMessage `json:"plan"`
	// Analyzed: the query was executed (EXPLAIN ANALYZE) inside a READ
	// ONLY transaction that was rolled back.
	Analyzed bool `json:"analyzed"`
	// GenericPlan: the query has $n parameters and none were given, so
	// the plan is the generic one PostgreSQL would use for any values.
	GenericPlan     bool             `json:"generic_plan"`
	TotalCost       float64          `json:"total_cost"`
	ExecutionMs     *float64         `json:"execution_ms,omitempty"`
	Recommendations []Recommendation `json:"recommendations"`
}

// Recommendation is one finding in a plan, in plain words.
type Recommendation struct {
	Kind     string `json:"kind"`
	Node     string `json:"node"`
	Relation string `json:"relation,omitempty"`
	Message  string `json:"message"`
}

// Recommendation kinds.
const (
	RecSeqScan       = "seq_scan_large_table"
	RecMisestimate   = "row_estimate_off"
	RecSortSpill     = "sort_spill"
	RecHashSpill     = "hash_spill"
	RecNoPruning     = "partitions_not_pruned"
	RecNestedLoopBig = "nested_loop_many_rows"
)

// Thresholds for recommendations.
const (
	largeTableRows  = 10_000
	selectiveShare  = 0.1
	misestimateX    = 10
	misestimateMin  = 100
	nestedLoopOuter = 10_000
)

// invalid wraps a refusal of the request's SQL or params; reason is one of
// sqlguard's fixed messages (or this package's) and never echoes the SQL.
func invalid(reason error) error {
	return &Error{Kind: ErrInvalidQuery, Err: reason}
}

// Refusals of a request's params; fixed texts, safe to show.
var (
	ErrParamCount = errors.New("the number of params does not match the query's $n placeholders")
	ErrParamType  = errors.New("params must be strings, numbers, booleans or null")
)

// RefusalReason returns the fixed, client-safe text saying why a query
// was refused (ErrInvalidQuery): the guard's reason or a params problem.
// It is false for any other error, whose text must not reach a client.
func RefusalReason(err error) (string, bool) {
	if !errors.Is(err, ErrInvalidQuery) {
		return "", false
	}
	if r, ok := sqlguard.Reason(err); ok {
		return r, true
	}
	for _, r := range []error{ErrParamCount, ErrParamType} {
		if errors.Is(err, r) {
			return r.Error(), true
		}
	}
	return "", false
}

// AnalyzeQuery explains one SELECT. See sqlguard for what is accepted; the
// statement runs in a READ ONLY transaction that is always rolled back,
// under the explain timeout and the lock timeout.
func (m *Monitor) AnalyzeQuery(ctx context.Context, req AnalyzeRequest) (*Analysis, error) {
	if req.Analyze && !m.cfg.AllowAnalyze {
		return nil, &Error{Kind: ErrAnalyzeDisabled}
	}
	checked, err := sqlguard.Check(req.SQL)
	if err != nil {
		return nil, invalid(err)
	}
	generic := checked.Params > 0 && len(req.Params) == 0 && !req.Analyze
	if !generic && len(req.Params) != checked.Params {
		return nil, invalid(ErrParamCount)
	}
	args, err := paramArgs(req.Params)
	if err != nil {
		return nil, invalid(err)
	}
	plan, err := m.explain(ctx, checked, args, req.Analyze, generic, nil)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Plan: plan, Analyzed: req.Analyze, GenericPlan: generic}
	root, err := parsePlan(plan)
	if err != nil {
		return nil, &Error{Kind: ErrQueryFailed, Err: err}
	}
	a.TotalCost = root.Plan.TotalCost
	a.ExecutionMs = root.ExecutionTime
	a.Recommendations, err = m.recommend(ctx, root.Plan, req.Analyze)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// paramArgs turns JSON values into text the server parses by the type it
// infers for each placeholder, as psql would.
func paramArgs(params []any) ([]any, error) {
	args := make([]any, len(params))
	for i, p := range params {
		switch v := p.(type) {
		case nil:
			args[i] = nil
		case string:
			args[i] = v
		case bool:
			args[i] = v
		case float64, json.Number:
			args[i] = fmt.Sprint(v)
		default:
			return nil, ErrParamType
		}
	}
	return args, nil
}

// explain runs EXPLAIN (FORMAT JSON) of a checked statement and returns its
// JSON. With generic, the statement is PREPAREd and the generic plan
// explained with NULL arguments (PostgreSQL 15 has no EXPLAIN GENERIC_PLAN;
// this is how Dexter does it). before, when set, runs first in the same
// transaction (optimize-query creates its hypothetical indexes there), and
// cleanup on the connection afterwards.
func (m *Monitor) explain(ctx context.Context, checked *sqlguard.Checked, args []any, analyze, generic bool, before func(context.Context, pgx.Tx) error, cleanup ...func(context.Context, *pgx.Conn) error) (json.RawMessage, error) {
	opts := "FORMAT JSON"
	if analyze {
		opts = "ANALYZE, BUFFERS, FORMAT JSON"
	}
	var plan json.RawMessage
	after := cleanup
	var name string
	if generic {
		var b [8]byte
		_, _ = rand.Read(b[:])
		name = "monitor_explain_" + hex.EncodeToString(b[:])
		after = append(after, func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, "DEALLOCATE "+name)
			var nf *pgconn.PgError
			if errors.As(err, &nf) && nf.Code == "26000" {
				// Never prepared (the transaction failed first).
				return nil
			}
			return err
		})
	}
	err := m.readOnly(ctx, m.cfg.ExplainTimeout, func(ctx context.Context, tx pgx.Tx) error {
		if before != nil {
			if err := before(ctx, tx); err != nil {
				return err
			}
		}
		if !generic {
			q := append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
			return tx.QueryRow(ctx, "EXPLAIN ("+opts+") "+checked.SQL, q...).Scan(&plan)
		}
		// The statement name is generated here; the SQL is the deparsed,
		// checked statement.
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "PREPARE "+name+" AS "+checked.SQL); err != nil {
			return err
		}
		nulls := strings.TrimSuffix(strings.Repeat("NULL, ", checked.Params), ", ")
		return tx.QueryRow(ctx, "EXPLAIN ("+opts+") EXECUTE "+name+"("+nulls+")").Scan(&plan)
	}, after...)
	if err != nil {
		return nil, classify(err)
	}
	return plan, nil
}

// planNode is the part of EXPLAIN's JSON the recommendations read.
type planNode struct {
	NodeType        string     `json:"Node Type"`
	RelationName    string     `json:"Relation Name"`
	Alias           string     `json:"Alias"`
	ParentRel       string     `json:"Parent Relationship"`
	TotalCost       float64    `json:"Total Cost"`
	PlanRows        float64    `json:"Plan Rows"`
	ActualRows      *float64   `json:"Actual Rows"`
	ActualLoops     *float64   `json:"Actual Loops"`
	Filter          string     `json:"Filter"`
	RowsRemoved     *float64   `json:"Rows Removed by Filter"`
	SortSpaceType   string     `json:"Sort Space Type"`
	SortSpaceUsed   float64    `json:"Sort Space Used"`
	HashBatches     float64    `json:"Hash Batches"`
	OrigHashBatches float64    `json:"Original Hash Batches"`
	SubplansRemoved float64    `json:"Subplans Removed"`
	IndexName       string     `json:"Index Name"`
	Plans           []planNode `json:"Plans"`
}

type planRoot struct {
	Plan          planNode `json:"Plan"`
	ExecutionTime *float64 `json:"Execution Time"`
}

func parsePlan(raw json.RawMessage) (*planRoot, error) {
	var roots []planRoot
	if err := json.Unmarshal(raw, &roots); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("decode plan: %d plans, want 1", len(roots))
	}
	return &roots[0], nil
}

func (n *planNode) walk(fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}

// rows is the node's row count: actual (per loop) when analyzed.
func (n *planNode) rows() float64 {
	if n.ActualRows != nil {
		return *n.ActualRows
	}
	return n.PlanRows
}

// relInfo is what the catalog says about a relation named in a plan.
type relInfo struct {
	rows       float64
	parent     string // the partitioned table it is a partition of
	partitions int    // for a partitioned table, how many partitions it has
	partKey    string
}

func (m *Monitor) relations(ctx context.Context, names []string) (map[string]relInfo, error) {
	out := make(map[string]relInfo, len(names))
	if len(names) == 0 {
		return out, nil
	}
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
SELECT n.name, greatest(c.reltuples, 0)::float8, coalesce(p.relname, ''),
       coalesce((SELECT count(*) FROM pg_inherits i WHERE i.inhparent = p.oid), 0)::int,
       coalesce(pg_get_partkeydef(p.oid), '')
FROM unnest($1::text[]) AS n(name)
JOIN pg_class c ON c.oid = to_regclass(quote_ident(n.name))
LEFT JOIN pg_inherits ih ON ih.inhrelid = c.oid
LEFT JOIN pg_class p ON p.oid = ih.inhparent AND p.relkind = 'p'`, names)
		if err != nil {
			return err
		}
		var name string
		var r relInfo
		_, err = pgx.ForEachRow(rows, []any{&name, &r.rows, &r.parent, &r.partitions, &r.partKey}, func() error {
			out[name] = r
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read relations of the plan: %w", classify(err))
	}
	return out, nil
}

func (m *Monitor) recommend(ctx context.Context, root planNode, analyzed bool) ([]Recommendation, error) {
	var names []string
	seen := map[string]bool{}
	root.walk(func(n *planNode) {
		if n.RelationName != "" && !seen[n.RelationName] {
			seen[n.RelationName] = true
			names = append(names, n.RelationName)
		}
	})
	rels, err := m.relations(ctx, names)
	if err != nil {
		return nil, err
	}
	return recommendations(root, rels, analyzed), nil
}

func recommendations(root planNode, rels map[string]relInfo, analyzed bool) []Recommendation {
	out := []Recommendation{}
	add := func(kind string, n *planNode, rel, format string, a ...any) {
		out = append(out, Recommendation{Kind: kind, Node: n.NodeType, Relation: rel, Message: fmt.Sprintf(format, a...)})
	}
	root.walk(func(n *planNode) {
		switch n.NodeType {
		case "Seq Scan":
			r := rels[n.RelationName]
			if n.Filter != "" && r.rows >= largeTableRows && n.rows() < r.rows*selectiveShare {
				add(RecSeqScan, n, n.RelationName,
					"sequential scan of %s reads all ~%.0f rows to keep ~%.0f (filter %s): an index on the filtered columns would read only those; ask optimize-query which one",
					n.RelationName, r.rows, n.rows(), n.Filter)
			}
		case "Sort":
			if n.SortSpaceType == "Disk" {
				add(RecSortSpill, n, "", "sort spilled %.0f kB to disk: raise work_mem for this query, or add an index that returns rows in the ORDER BY order", n.SortSpaceUsed)
			}
		case "Hash":
			if n.HashBatches > 1 || n.OrigHashBatches > 1 {
				add(RecHashSpill, n, "", "hash table split into %.0f batches on disk: raise work_mem, or filter the hashed side earlier", max(n.HashBatches, n.OrigHashBatches))
			}
		case "Append", "Merge Append":
			noPruning(n, rels, add)
		case "Nested Loop":
			if len(n.Plans) > 0 {
				outer := &n.Plans[0]
				loops := outer.rows()
				if outer.ActualLoops != nil {
					loops *= *outer.ActualLoops
				}
				if loops >= nestedLoopOuter {
					add(RecNestedLoopBig, n, "", "nested loop runs its inner side %.0f times: index the inner table's join column, or check the row estimates (a hash join would read it once)", loops)
				}
			}
		}
		if analyzed && n.ActualRows != nil {
			actual, planned := *n.ActualRows, n.PlanRows
			hi, lo := max(actual, planned), max(min(actual, planned), 1)
			if hi >= misestimateMin && hi/lo >= misestimateX {
				rel := n.RelationName
				add(RecMisestimate, n, rel, "%s estimated %.0f rows but found %.0f (%.0f× off): run ANALYZE%s, and for correlated columns create extended statistics",
					n.NodeType, planned, actual, hi/lo, onRel(rel))
			}
		}
	})
	return out
}

func onRel(rel string) string {
	if rel == "" {
		return " on the tables involved"
	}
	return " " + rel
}

// noPruning flags an Append that scans every partition of a partitioned
// table with more than one partition.
func noPruning(n *planNode, rels map[string]relInfo, add func(string, *planNode, string, string, ...any)) {
	if n.SubplansRemoved > 0 {
		return
	}
	scanned := map[string]int{}
	var parts []string
	for i := range n.Plans {
		if r, ok := rels[n.Plans[i].RelationName]; ok && r.parent != "" {
			if scanned[r.parent] == 0 {
				parts = append(parts, r.parent)
			}
			scanned[r.parent]++
		}
	}
	for _, parent := range parts {
		var total int
		var key string
		for name, r := range rels {
			if r.parent == parent && name != "" {
				total, key = r.partitions, r.partKey
				break
			}
		}
		if total > 1 && scanned[parent] >= total {
			add(RecNoPruning, n, parent, "all %d partitions of %s are scanned: add a condition on its partition key (%s) so the planner can skip partitions", total, parent, key)
		}
	}
}
