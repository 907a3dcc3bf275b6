// Package compare checks that tables hold the same rows on two servers with
// CHECKSUM TABLE and row counts, computed inside each server.
package compare

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pitcrew/pitcrew/internal/conn"
)

// Result is one table's comparison.
type Result struct {
	Table                    string
	SourceRows, TargetRows   int64
	SourceCheck, TargetCheck sql.NullInt64
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
	return fmt.Sprintf("%-32s rows %8d / %-8d checksum %10d / %-10d %s", r.Table, r.SourceRows, r.TargetRows, r.SourceCheck.Int64, r.TargetCheck.Int64, verdict)
}

// Tables compares schema.table for each table on both servers.
func Tables(ctx context.Context, src, tgt *sql.DB, schema string, tables []string) ([]Result, error) {
	var out []Result
	for _, t := range tables {
		name := conn.QuoteName(schema) + "." + conn.QuoteName(t)
		r := Result{Table: schema + "." + t}
		var err error
		if r.SourceRows, r.SourceCheck, err = one(ctx, src, name); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if r.TargetRows, r.TargetCheck, err = one(ctx, tgt, name); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Schema lists the base tables of a schema on db.
func Schema(ctx context.Context, db *sql.DB, schema string) ([]string, error) {
	return conn.Strings(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", schema)
}

func one(ctx context.Context, db *sql.DB, name string) (int64, sql.NullInt64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name).Scan(&n); err != nil {
		return 0, sql.NullInt64{}, err
	}
	var tbl string
	var sum sql.NullInt64
	if err := db.QueryRowContext(ctx, "CHECKSUM TABLE "+name).Scan(&tbl, &sum); err != nil {
		return 0, sql.NullInt64{}, err
	}
	return n, sum, nil
}
