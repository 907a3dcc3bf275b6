package verify

import (
	"context"
	"database/sql"
	"path"
	"slices"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/ddl"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// Replicated lists the source's replicated tables (base tables that
// routing includes, outside the servers' own schemas and pitcrew's, ours)
// with their target names, in name order. patterns, when not empty, is a
// comma-separated list of schema.table globs (a bare schema means
// schema.*) that narrows the list.
func Replicated(ctx context.Context, src *sql.DB, r *route.Router, patterns, ours string) ([]Table, error) {
	names, err := conn.Strings(ctx, src, `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES
WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', ?)
ORDER BY 1`, ours)
	if err != nil {
		return nil, err
	}
	var want []string
	for _, p := range strings.Split(patterns, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.Contains(p, ".") {
				p += ".*"
			}
			want = append(want, p)
		}
	}
	var out []Table
	for _, n := range names {
		schema, table, _ := strings.Cut(n, ".")
		if !r.Included(schema, table) {
			continue
		}
		if len(want) > 0 && !slices.ContainsFunc(want, func(p string) bool { ok, _ := path.Match(p, n); return ok }) {
			continue
		}
		to := r.Table(ddl.Ref{Schema: schema, Table: table})
		out = append(out, Table{SourceSchema: schema, SourceName: table, TargetSchema: to.Schema, TargetName: to.Table})
	}
	return out, nil
}
