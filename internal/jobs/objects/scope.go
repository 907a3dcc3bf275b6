package objects

import (
	"context"
	"database/sql"
	"slices"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/ddl"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// RouteScope is what a load carries and `verify --objects` compares beside
// the tables: the source's databases that routing replicates (or, when
// tables were chosen, the schemas of those, in chosen), routing's names,
// and pitcrew's own accounts (ours) left out. progressSchema is pitcrew's
// schema on the servers, never carried.
func RouteScope(ctx context.Context, src *sql.DB, r *route.Router, ours []string, progressSchema string, chosen []string) (Scope, error) {
	s := Scope{
		Included: r.Included,
		Database: r.Database,
		Table: func(schema, table string) (string, string) {
			to := r.Table(ddl.Ref{Schema: schema, Table: table})
			return to.Schema, to.Table
		},
		Ours: ours,
	}
	if chosen != nil {
		for _, schema := range chosen {
			if !slices.Contains(s.Schemas, schema) {
				s.Schemas = append(s.Schemas, schema)
			}
		}
		return s, nil
	}
	names, err := conn.Strings(ctx, src, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', ?) ORDER BY 1", progressSchema)
	if err != nil {
		return s, err
	}
	for _, n := range names {
		if r.DatabaseIncluded(n) {
			s.Schemas = append(s.Schemas, n)
		}
	}
	return s, nil
}
