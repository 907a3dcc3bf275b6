package corpus

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// autoIncRe is the counter in SHOW CREATE TABLE, compared on its own.
var autoIncRe = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// compareAll compares every case's database on pitcrew's target with the
// native replica's; diffs name the case and what differs.
func compareAll(ctx context.Context, env *Env, cases []Case, gens []*Gen) (diffs, notes []string, tables int, err error) {
	for i, c := range cases {
		g := gens[i]
		var excl []string
		for _, x := range c.Exclude {
			excl = append(excl, fmt.Sprintf(x, g.Name))
		}
		rt := route.New(route.Rules{Exclude: excl})
		d, nt, n, err := compareDB(ctx, env.Nat, env.Tgt, g.Name, rt)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("case %s: %w", c.Name, err)
		}
		notes = append(notes, nt...)
		tables += n
		for _, s := range d {
			diffs = append(diffs, c.Name+": "+s)
		}
	}
	return diffs, notes, tables, nil
}

type tableInfo struct {
	kind    string
	autoInc sql.NullInt64
}

func listTables(ctx context.Context, db *sql.DB, schema string, rt *route.Router) (map[string]tableInfo, error) {
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME, TABLE_TYPE, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]tableInfo{}
	for rows.Next() {
		var name string
		var ti tableInfo
		if err := rows.Scan(&name, &ti.kind, &ti.autoInc); err != nil {
			return nil, err
		}
		if rt.Included(schema, name) {
			out[name] = ti
		}
	}
	return out, rows.Err()
}

// compareDB compares one database: the set of tables, and each table's
// definition, counter, rows and checksum; then triggers, events and
// routines.
func compareDB(ctx context.Context, nat, tgt *sql.DB, schema string, rt *route.Router) (diffs, notes []string, n int, err error) {
	a, err := listTables(ctx, nat, schema, rt)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("native replica: %w", err)
	}
	b, err := listTables(ctx, tgt, schema, rt)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("target: %w", err)
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s is on pitcrew's target only", schema, name))
		}
	}
	for name, ta := range a {
		tb, ok := b[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s is missing on pitcrew's target", schema, name))
			continue
		}
		n++
		full := conn.QuoteName(schema) + "." + conn.QuoteName(name)
		da, err := showCreate(ctx, nat, full, ta.kind)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("native replica: %w", err)
		}
		db, err := showCreate(ctx, tgt, full, tb.kind)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("target: %w", err)
		}
		if autoIncRe.ReplaceAllString(da, "") != autoIncRe.ReplaceAllString(db, "") {
			diffs = append(diffs, fmt.Sprintf("%s: definitions differ:\n  native: %s\n  pitcrew: %s", full, oneLine(da), oneLine(db)))
		}
		if ta.autoInc != tb.autoInc {
			diffs = append(diffs, fmt.Sprintf("%s: AUTO_INCREMENT %v (native) / %v (pitcrew)", full, ta.autoInc.Int64, tb.autoInc.Int64))
		}
		if ta.kind == "VIEW" {
			continue
		}
		res, err := checksum.Tables(ctx, nat, tgt, schema, []string{name})
		if err != nil {
			return nil, nil, 0, err
		}
		if !res[0].Equal() {
			diffs = append(diffs, fmt.Sprintf("%s: rows %d (native) / %d (pitcrew), checksum %d / %d", full, res[0].SourceRows, res[0].TargetRows, res[0].SourceCheck.Int64, res[0].TargetCheck.Int64))
		}
	}
	for _, q := range []struct{ what, sql string }{
		{"triggers", "SELECT CONCAT_WS(' ', TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME"},
		{"events", "SELECT CONCAT_WS(' ', EVENT_NAME, STATUS, EVENT_TYPE, INTERVAL_VALUE, INTERVAL_FIELD, EVENT_DEFINITION) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME"},
		{"routines", "SELECT CONCAT_WS(' ', ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME"},
	} {
		x, err := conn.Strings(ctx, nat, q.sql, schema)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("native replica: %w", err)
		}
		y, err := conn.Strings(ctx, tgt, q.sql, schema)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("target: %w", err)
		}
		if strings.Join(x, "\n") != strings.Join(y, "\n") {
			diffs = append(diffs, fmt.Sprintf("%s: %s differ:\n  native: %q\n  pitcrew: %q", schema, q.what, x, y))
		}
	}
	return diffs, notes, n, nil
}

func showCreate(ctx context.Context, db *sql.DB, full, kind string) (string, error) {
	what := "TABLE"
	switch kind {
	case "VIEW":
		what = "VIEW"
	case "SEQUENCE":
		what = "SEQUENCE"
	}
	rows, err := db.QueryContext(ctx, "SHOW CREATE "+what+" "+full)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		return "", fmt.Errorf("SHOW CREATE %s %s: no row", what, full)
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	return string(vals[1]), rows.Err()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
