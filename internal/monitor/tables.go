package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IndexStat is one index of a table.
type IndexStat struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
	SizeBytes  int64  `json:"size_bytes"`
	Scans      int64  `json:"scans"`
	Valid      bool   `json:"valid"`
	Unique     bool   `json:"unique"`
	Primary    bool   `json:"primary"`
	// Unused: never scanned since statistics were reset, and enforcing no
	// constraint.
	Unused bool `json:"unused"`
}

// TableStat is the answer of GET /db-monitor/table-stats/{table_name}. For a
// partitioned table the figures are the totals of its partitions, which are
// listed with their own figures.
type TableStat struct {
	Name            string      `json:"name"`
	Kind            string      `json:"kind"`
	Bounds          string      `json:"bounds,omitempty"`
	EstimatedRows   int64       `json:"estimated_rows"`
	TotalBytes      int64       `json:"total_bytes"`
	TableBytes      int64       `json:"table_bytes"`
	IndexBytes      int64       `json:"index_bytes"`
	ToastBytes      int64       `json:"toast_bytes"`
	SeqScans        int64       `json:"seq_scans"`
	IdxScans        int64       `json:"idx_scans"`
	Inserted        int64       `json:"rows_inserted"`
	Updated         int64       `json:"rows_updated"`
	Deleted         int64       `json:"rows_deleted"`
	LiveRows        int64       `json:"live_rows"`
	DeadRows        int64       `json:"dead_rows"`
	LastVacuum      *time.Time  `json:"last_vacuum"`
	LastAutovacuum  *time.Time  `json:"last_autovacuum"`
	LastAnalyze     *time.Time  `json:"last_analyze"`
	LastAutoanalyze *time.Time  `json:"last_autoanalyze"`
	Indexes         []IndexStat `json:"indexes"`
	Partitions      []TableStat `json:"partitions,omitempty"`

	oid uint32
}

// MaxTableName bounds the name accepted (PostgreSQL's identifiers are at
// most 63 bytes; a schema-qualified, quoted name a little more).
const MaxTableName = 300

// TableStats reports one table. The name is resolved by the catalog
// (to_regclass, as a bound parameter), never interpolated into SQL; an
// unknown name, or one that is not a table, is ErrNotFound.
func (m *Monitor) TableStats(ctx context.Context, name string) (*TableStat, error) {
	if name == "" || len(name) > MaxTableName {
		return nil, &Error{Kind: ErrNotFound}
	}
	var oid *uint32
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`, name).Scan(&oid)
	})
	switch err := classify(err); {
	case errors.Is(err, pgx.ErrNoRows), errors.Is(err, ErrQueryFailed):
		// A malformed name makes to_regclass raise rather than return NULL:
		// to the client that is the same unknown table.
		return nil, &Error{Kind: ErrNotFound, Err: err}
	case err != nil:
		return nil, fmt.Errorf("look up table: %w", err)
	}
	if oid == nil {
		return nil, &Error{Kind: ErrNotFound}
	}
	oids := []uint32{*oid}
	var parts []uint32
	err = m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT relid::oid FROM pg_partition_tree($1) WHERE relid <> $1 ORDER BY relid::regclass::text`, *oid)
		if err != nil {
			return err
		}
		parts, err = pgx.CollectRows(rows, pgx.RowTo[uint32])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", classify(err))
	}
	oids = append(oids, parts...)
	stats, err := m.relationStats(ctx, oids)
	if err != nil {
		return nil, err
	}
	if err := m.attachIndexes(ctx, oids, stats); err != nil {
		return nil, err
	}
	root := stats[*oid]
	if len(parts) > 0 {
		root.Partitions = []TableStat{}
		for _, p := range parts {
			root.Partitions = append(root.Partitions, *stats[p])
		}
		root.addTotals()
	}
	return root, nil
}

// addTotals sums the leaf partitions' figures into a partitioned table,
// whose own statistics are empty: PostgreSQL keeps them per partition.
func (t *TableStat) addTotals() {
	// ANALYZE gives the parent an estimate of its own; the sum of the
	// partitions' is what the partition list shows, so it is the one used.
	t.EstimatedRows = 0
	for _, p := range t.Partitions {
		if p.Kind != "table" {
			continue
		}
		t.EstimatedRows += p.EstimatedRows
		t.TotalBytes += p.TotalBytes
		t.TableBytes += p.TableBytes
		t.IndexBytes += p.IndexBytes
		t.ToastBytes += p.ToastBytes
		t.SeqScans += p.SeqScans
		t.IdxScans += p.IdxScans
		t.Inserted += p.Inserted
		t.Updated += p.Updated
		t.Deleted += p.Deleted
		t.LiveRows += p.LiveRows
		t.DeadRows += p.DeadRows
	}
}

func (m *Monitor) relationStats(ctx context.Context, oids []uint32) (map[uint32]*TableStat, error) {
	out := make(map[uint32]*TableStat, len(oids))
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
SELECT c.oid, c.oid::regclass::text,
       CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END,
       coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
       greatest(c.reltuples, 0)::int8,
       pg_total_relation_size(c.oid), pg_table_size(c.oid), pg_indexes_size(c.oid),
       CASE WHEN c.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(c.reltoastrelid) END,
       coalesce(s.seq_scan, 0), coalesce(s.idx_scan, 0),
       coalesce(s.n_tup_ins, 0), coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_del, 0),
       coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0),
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze
FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.oid = ANY($1::oid[])`, oids)
		if err != nil {
			return err
		}
		var t TableStat
		_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.Name, &t.Kind, &t.Bounds, &t.EstimatedRows,
			&t.TotalBytes, &t.TableBytes, &t.IndexBytes, &t.ToastBytes, &t.SeqScans, &t.IdxScans,
			&t.Inserted, &t.Updated, &t.Deleted, &t.LiveRows, &t.DeadRows,
			&t.LastVacuum, &t.LastAutovacuum, &t.LastAnalyze, &t.LastAutoanalyze}, func() error {
			cp := t
			cp.TableBytes -= cp.ToastBytes
			cp.Indexes = []IndexStat{}
			out[cp.oid] = &cp
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read table statistics: %w", classify(err))
	}
	for _, o := range oids {
		if out[o] == nil {
			// Dropped between the lookup and now.
			return nil, &Error{Kind: ErrNotFound}
		}
	}
	return out, nil
}

func (m *Monitor) attachIndexes(ctx context.Context, oids []uint32, stats map[uint32]*TableStat) error {
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// A partitioned index has no storage or scans of its own: its size
		// and scans are those of its partitions' indexes.
		rows, err := tx.Query(ctx, `
SELECT i.indrelid, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
       i.indisvalid, i.indisunique, i.indisprimary,
       (SELECT coalesce(sum(pg_relation_size(t.relid)), 0)::int8 FROM pg_partition_tree(i.indexrelid) t),
       (SELECT coalesce(sum(s.idx_scan), 0)::int8 FROM pg_partition_tree(i.indexrelid) t
          JOIN pg_stat_all_indexes s ON s.indexrelid = t.relid)
FROM pg_index i WHERE i.indrelid = ANY($1::oid[])
ORDER BY 2`, oids)
		if err != nil {
			return err
		}
		var table uint32
		var x IndexStat
		_, err = pgx.ForEachRow(rows, []any{&table, &x.Name, &x.Definition, &x.Valid, &x.Unique, &x.Primary, &x.SizeBytes, &x.Scans}, func() error {
			x.Unused = x.Scans == 0 && !x.Unique && !x.Primary
			if t := stats[table]; t != nil {
				t.Indexes = append(t.Indexes, x)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("read index statistics: %w", classify(err))
	}
	return nil
}
