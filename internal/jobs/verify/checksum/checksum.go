// Package checksum is verify's quick whole-table check (the tests', the sandbox's and
// the benchmarks' proof that a copy is equal): CHECKSUM TABLE and row
// counts, computed inside each server (verify.Run is the chunked
// comparison that finds the rows that differ). It needs nothing but
// connections, so the test servers (testenv) can use it.
//
// CHECKSUM TABLE reads the stored record, and a VIRTUAL column's place in
// it holds whatever the last read left there (MariaDB does not compute
// virtual columns for it): the same rows give different checksums from
// server to server. Tables with virtual columns (a long unique key's
// hidden DB_ROW_HASH_n is one) are summed over their stored columns'
// values instead, on both servers alike.
package checksum

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Result is one table's whole-table check.
type Result struct {
	Table                    string
	SourceRows, TargetRows   int64
	SourceCheck, TargetCheck sql.NullInt64
	// Values: the checks are sums over the stored columns' values, not
	// CHECKSUM TABLE (the table has virtual columns).
	Values bool
}

// Equal reports whether counts and checksums agree.
func (r Result) Equal() bool {
	return r.SourceRows == r.TargetRows && r.SourceCheck == r.TargetCheck
}

func (r Result) String() string {
	verdict := "EQUAL"
	if !r.Equal() {
		verdict = "DIFFERENT"
	}
	what := "checksum"
	if r.Values {
		what = "values  "
	}
	return fmt.Sprintf("%-32s rows %8d / %-8d %s %10d / %-10d %s", r.Table, r.SourceRows, r.TargetRows, what, r.SourceCheck.Int64, r.TargetCheck.Int64, verdict)
}

// Tables compares schema.table for each table on both servers by count
// and checksum. Whether a table is summed by values is read from src, and
// both sides are then read the same way.
func Tables(ctx context.Context, src, tgt *sql.DB, schema string, tables []string) ([]Result, error) {
	var out []Result
	for _, t := range tables {
		name := conn.QuoteName(schema) + "." + conn.QuoteName(t)
		r := Result{Table: schema + "." + t}
		sum, err := checkOf(ctx, src, schema, t)
		if err != nil {
			return nil, fmt.Errorf("source: %s: %w", r.Table, err)
		}
		r.Values = sum != checksumTable
		if r.SourceRows, r.SourceCheck, err = one(ctx, src, name, sum); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if r.TargetRows, r.TargetCheck, err = one(ctx, tgt, name, sum); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// BaseTables lists the base tables of a schema on db.
func BaseTables(ctx context.Context, db *sql.DB, schema string) ([]string, error) {
	return conn.Strings(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", schema)
}

const checksumTable = "CHECKSUM TABLE"

// checkOf is the query that sums a table: CHECKSUM TABLE, or, for a table
// with virtual columns (declared, or the hidden one of a long unique key:
// a HASH unique index outside MEMORY), a SELECT over the stored columns.
func checkOf(ctx context.Context, db *sql.DB, schema, table string) (string, error) {
	var virtual int
	err := db.QueryRowContext(ctx, `SELECT
  (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE '%VIRTUAL%') +
  (SELECT COUNT(*) FROM information_schema.STATISTICS s JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME)
   WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 AND s.INDEX_TYPE = 'HASH' AND t.ENGINE NOT IN ('MEMORY', 'HEAP'))`,
		schema, table, schema, table).Scan(&virtual)
	if err != nil || virtual == 0 {
		return checksumTable, err
	}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA NOT LIKE '%VIRTUAL%' ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var vals []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return "", err
		}
		vals = append(vals, valueText(name, typ))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return valueSum(vals), nil
}

// valueText is a column's value as text that is equal exactly when the
// stored values are: floats with every digit, TIMESTAMPs as moments
// (whatever the session's zone), NULL apart from the string 'NULL'.
func valueText(name, dataType string) string {
	q := conn.QuoteName(name)
	switch dataType {
	case "float", "double":
		q = "(" + q + " * 1e0)"
	case "timestamp":
		q = "UNIX_TIMESTAMP(" + q + ")"
	}
	return "CAST(QUOTE(" + q + ") AS BINARY)" // bytes: columns of different charsets never clash
}

// valueSum is a SELECT list that sums a table's rows, given each column
// as text: order-free, duplicates counted, as an integer that fits a
// BIGINT. Two halves of each row's MD5 sum separately, so a false
// equality needs two coinciding sums.
func valueSum(cols []string) string {
	row := "CONCAT_WS(',', " + strings.Join(cols, ", ") + ")"
	half := func(from int) string {
		return "SUM(CAST(CONV(SUBSTRING(MD5(" + row + "), " + fmt.Sprint(from) + ", 15), 16, 10) AS UNSIGNED))"
	}
	return "COALESCE(CAST(CONV(SUBSTRING(MD5(CONCAT(" + half(1) + ", ':', " + half(17) + ")), 1, 15), 16, 10) AS SIGNED), 0)"
}

func one(ctx context.Context, db *sql.DB, name, sum string) (int64, sql.NullInt64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name).Scan(&n); err != nil {
		return 0, sql.NullInt64{}, err
	}
	var check sql.NullInt64
	if sum != checksumTable {
		if err := db.QueryRowContext(ctx, "SELECT "+sum+" FROM "+name).Scan(&check); err != nil {
			return 0, sql.NullInt64{}, err
		}
		return n, check, nil
	}
	var tbl string
	if err := db.QueryRowContext(ctx, "CHECKSUM TABLE "+name).Scan(&tbl, &check); err != nil {
		return 0, sql.NullInt64{}, err
	}
	return n, check, nil
}
