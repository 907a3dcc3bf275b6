// Package verify proves a copy: it compares tables between source and
// target in primary-key chunks, with checksums computed inside each
// database (no row leaves a server unless its chunk differs), comparing
// values, not bytes, so a changed collation or character set is no false
// difference. It works while replication runs: a chunk that differs is read
// again once the engine has applied past the source position the chunk was
// read at, and only a difference that stays is reported. checksum.Tables is the
// quick whole-table check (counts and CHECKSUM TABLE) for tests and tools.
package verify

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
)

// column is one compared column.
type column struct {
	name, dataType string
}

// table is what verify knows about one table.
type table struct {
	srcSchema, srcName string // on the source
	tgtSchema, tgtName string // on the target (routing may rename)
	cols               []column
	key                []string // identifying columns: primary key or unique NOT NULL key
}

func (t table) src() string { return conn.QuoteName(t.srcSchema) + "." + conn.QuoteName(t.srcName) }
func (t table) tgt() string { return conn.QuoteName(t.tgtSchema) + "." + conn.QuoteName(t.tgtName) }

// valueExpr renders a column as text that is equal exactly when the values
// are: strings in one character set (so latin1 'é' equals utf8mb4 'é'),
// binary as hex, floats with every digit, everything else as MySQL prints it.
func valueExpr(c column) string {
	q := conn.QuoteName(c.name)
	switch c.dataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json":
		return "CONVERT(" + q + " USING utf8mb4)"
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit", "geometry", "point", "linestring", "polygon":
		return "HEX(" + q + ")"
	case "float", "double":
		// FLOAT prints with 6 digits; through DOUBLE every bit shows.
		return "(" + q + " * 1e0)"
	case "timestamp":
		return "UNIX_TIMESTAMP(" + q + ")" // a moment, whatever the session's zone
	}
	return q
}

// rowExpr is one row's fingerprint: the values, NULLs marked, joined.
func (t table) rowExpr() string {
	parts := make([]string, 0, 2*len(t.cols))
	for _, c := range t.cols {
		parts = append(parts, "COALESCE("+valueExpr(c)+", '')", "ISNULL("+conn.QuoteName(c.name)+")")
	}
	return "CRC32(CONCAT_WS(_utf8mb4'\\x1f', " + strings.Join(parts, ", ") + "))"
}

func (t table) keyList() string { return schema.KeyList(t.key) }

func (t table) rangeWhere(lo, hi []any) (string, []any) { return schema.KeyRange(t.key, lo, hi) }

// describe reads a source table's columns and key; target names come from
// the caller (routing).
func describe(ctx context.Context, db *sql.DB, schemaName, name string) (table, error) {
	t := table{srcSchema: schemaName, srcName: name}
	cols, err := schema.WrittenColumns(ctx, db, schemaName, name)
	if err != nil {
		return t, err
	}
	if len(cols) == 0 {
		return t, fmt.Errorf("table %s.%s not found on the source", schemaName, name)
	}
	for _, c := range cols {
		t.cols = append(t.cols, column{name: c.Name, dataType: c.DataType})
	}
	t.key, err = schema.KeyColumns(ctx, db, schemaName, name)
	return t, err
}
