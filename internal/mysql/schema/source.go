package schema

import (
	"context"
	"database/sql"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Queryer is a *sql.DB, *sql.Conn or *sql.Tx.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Typed is a written (not generated) column and its DATA_TYPE.
type Typed struct {
	Name, DataType string
}

// WrittenColumns lists a table's non-generated columns in order.
func WrittenColumns(ctx context.Context, q Queryer, db, table string) ([]Typed, error) {
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND IS_GENERATED = 'NEVER' ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Typed
	for rows.Next() {
		var c Typed
		if err := rows.Scan(&c.Name, &c.DataType); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// KeyColumns returns the columns that identify a row: the primary key,
// else the first unique key whose columns are all NOT NULL; nil when the
// table has neither.
func KeyColumns(ctx context.Context, q Queryer, db, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.COLUMN_NAME FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.INDEX_NAME = (
  SELECT s2.INDEX_NAME FROM information_schema.STATISTICS s2
  WHERE s2.TABLE_SCHEMA = s.TABLE_SCHEMA AND s2.TABLE_NAME = s.TABLE_NAME AND s2.NON_UNIQUE = 0
  GROUP BY s2.INDEX_NAME HAVING SUM(s2.NULLABLE = 'YES') = 0
  ORDER BY s2.INDEX_NAME <> 'PRIMARY', s2.INDEX_NAME LIMIT 1)
ORDER BY s.SEQ_IN_INDEX`, db, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var key []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		key = append(key, k)
	}
	return key, rows.Err()
}

// KeyList is the key columns quoted and comma-separated.
func KeyList(key []string) string {
	q := make([]string, len(key))
	for i, k := range key {
		q[i] = conn.QuoteName(k)
	}
	return strings.Join(q, ", ")
}

// KeyRange is "(key) > (lo) AND (key) <= (hi)" with its arguments; a nil
// bound is open, and a table without a key is one range ("1").
func KeyRange(key []string, lo, hi []any) (string, []any) {
	if len(key) == 0 {
		return "1", nil
	}
	list := "(" + KeyList(key) + ")"
	ph := "(" + strings.TrimSuffix(strings.Repeat("?,", len(key)), ",") + ")"
	var conds []string
	var args []any
	if lo != nil {
		conds = append(conds, list+" > "+ph)
		args = append(args, lo...)
	}
	if hi != nil {
		conds = append(conds, list+" <= "+ph)
		args = append(args, hi...)
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), args
}

// Pair names a table on both sides: on the target a route may rename it.
// The jobs that copy and compare tables (load, verify) take a list of them.
type Pair struct {
	SourceSchema, SourceName string
	TargetSchema, TargetName string
}

// Source is the table's name on the source, schema.name.
func (p Pair) Source() string { return p.SourceSchema + "." + p.SourceName }
