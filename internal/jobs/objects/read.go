package objects

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/stored"
)

// Read takes the catalogue of one server: the selected kinds in the
// scope's databases. accounts nil: the accounts are found (those with a
// privilege on a replicated database or an object in one, the roles they
// hold, and the definers of the objects read, less the servers' own and
// pitcrew's); otherwise exactly these are read (the target, with the
// source's list).
func Read(ctx context.Context, db *sql.DB, scope Scope, sel Selection, accounts []Account) (*Catalog, error) {
	c := &Catalog{}
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.auto_increment_increment, @@GLOBAL.auto_increment_offset").Scan(&c.Increment, &c.Offset); err != nil {
		return nil, err
	}
	if len(scope.Schemas) == 0 {
		return c, nil
	}
	in, args := inList(scope.Schemas)
	readers := []struct {
		kind Kind
		read func(context.Context, *sql.DB, string, []any, Scope) ([]Object, error)
	}{{Views, readViews}, {Routines, readRoutines}, {Triggers, readTriggers}, {Events, readEvents}}
	for _, r := range readers {
		if !sel[r.kind] {
			continue
		}
		objs, err := r.read(ctx, db, in, args, scope)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", r.kind, err)
		}
		c.Objects = append(c.Objects, objs...)
	}
	if sel[Counters] {
		var err error
		if c.Counters, err = readCounters(ctx, db, in, args, scope); err != nil {
			return nil, fmt.Errorf("reading AUTO_INCREMENT counters: %w", err)
		}
	}
	if sel[Users] {
		var err error
		if accounts == nil {
			if accounts, err = findAccounts(ctx, db, scope, c.Objects); err != nil {
				return nil, fmt.Errorf("finding the accounts of the replicated databases (the user needs SELECT on mysql.*, or leave users out with --objects): %w", err)
			}
		}
		for _, a := range accounts {
			got, ok, err := readAccount(ctx, db, a, scope)
			if err != nil {
				return nil, fmt.Errorf("reading account %s: %w", a.Name(), err)
			}
			if ok {
				c.Accounts = append(c.Accounts, got)
			}
		}
	}
	return c, nil
}

func inList(names []string) (string, []any) {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return "(" + strings.TrimSuffix(strings.Repeat("?,", len(names)), ",") + ")", args
}

// showCreate runs one SHOW CREATE and returns its row by column name.
func showCreate(ctx context.Context, db *sql.DB, q string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: no row", q)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, c := range cols {
		out[strings.ToLower(c)] = vals[i].String
	}
	return out, rows.Err()
}

// quoteDefiner turns information_schema's user@host into `user`@`host`.
func quoteDefiner(d string) string {
	i := strings.LastIndex(d, "@")
	if i < 0 {
		return quote(d) // a role
	}
	return quote(d[:i]) + "@" + quote(d[i+1:])
}

func splitDefiner(d string) (user, host string) {
	i := strings.LastIndex(d, "@")
	if i < 0 {
		return d, ""
	}
	return d[:i], d[i+1:]
}

type listed struct{ schema, name, table, typ, definer, extra, extra2 string }

func list(ctx context.Context, db *sql.DB, q string, args []any) ([]listed, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []listed
	for rows.Next() {
		var l listed
		if err := rows.Scan(&l.schema, &l.name, &l.table, &l.typ, &l.definer, &l.extra, &l.extra2); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func readViews(ctx context.Context, db *sql.DB, in string, args []any, scope Scope) ([]Object, error) {
	ls, err := list(ctx, db, "SELECT TABLE_SCHEMA, TABLE_NAME, '', 'VIEW', DEFINER, '', '' FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN "+in+" ORDER BY 1, 2", args)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, l := range ls {
		if !scope.included(l.schema, l.name) {
			continue
		}
		m, err := showCreate(ctx, db, "SHOW CREATE VIEW "+quote(l.schema)+"."+quote(l.name))
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Kind: Views, Schema: l.schema, Name: l.name, Create: m["create view"],
			Charset: m["character_set_client"], Collation: m["collation_connection"], Definer: quoteDefiner(l.definer)})
	}
	return out, nil
}

func readRoutines(ctx context.Context, db *sql.DB, in string, args []any, _ Scope) ([]Object, error) {
	ls, err := list(ctx, db, `SELECT ROUTINE_SCHEMA, ROUTINE_NAME, '', ROUTINE_TYPE, DEFINER, IS_DETERMINISTIC, SQL_DATA_ACCESS
FROM information_schema.ROUTINES WHERE ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') AND ROUTINE_SCHEMA IN `+in+" ORDER BY 1, 4, 2", args)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, l := range ls {
		m, err := showCreate(ctx, db, "SHOW CREATE "+l.typ+" "+quote(l.schema)+"."+quote(l.name))
		if err != nil {
			return nil, err
		}
		text := m["create "+strings.ToLower(l.typ)]
		if text == "" {
			return nil, fmt.Errorf("SHOW CREATE %s %s.%s shows no definition: the user may not read it (grant SELECT ON mysql.proc, or SHOW CREATE ROUTINE on MariaDB 11, or leave routines out with --objects)", l.typ, l.schema, l.name)
		}
		out = append(out, Object{Kind: Routines, Type: l.typ, Schema: l.schema, Name: l.name, Create: text,
			SQLMode: m["sql_mode"], Charset: m["character_set_client"], Collation: m["collation_connection"], Definer: quoteDefiner(l.definer),
			UnsafeFunction: l.typ == "FUNCTION" && l.extra == "NO" && l.extra2 != "NO SQL" && l.extra2 != "READS SQL DATA"})
	}
	return out, nil
}

func readTriggers(ctx context.Context, db *sql.DB, in string, args []any, scope Scope) ([]Object, error) {
	// In ACTION_ORDER: creating them in this order keeps the order in
	// which triggers of the same timing and event fire.
	ls, err := list(ctx, db, `SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, 'TRIGGER', DEFINER, CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION), ACTION_STATEMENT
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN `+in+` ORDER BY TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`, args)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, l := range ls {
		if !scope.included(l.schema, l.table) {
			continue
		}
		m, err := showCreate(ctx, db, "SHOW CREATE TRIGGER "+quote(l.schema)+"."+quote(l.name))
		if err != nil {
			return nil, err
		}
		body, _ := stored.Unguard(l.extra2)
		out = append(out, Object{Kind: Triggers, Schema: l.schema, Name: l.name, Table: l.table, Create: m["sql original statement"],
			Body:    l.extra + " ON " + l.table + " " + body,
			SQLMode: m["sql_mode"], Charset: m["character_set_client"], Collation: m["collation_connection"], Definer: quoteDefiner(l.definer)})
	}
	return out, nil
}

func readEvents(ctx context.Context, db *sql.DB, in string, args []any, _ Scope) ([]Object, error) {
	ls, err := list(ctx, db, "SELECT EVENT_SCHEMA, EVENT_NAME, '', 'EVENT', DEFINER, STATUS, '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN "+in+" ORDER BY 1, 2", args)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, l := range ls {
		m, err := showCreate(ctx, db, "SHOW CREATE EVENT "+quote(l.schema)+"."+quote(l.name))
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Kind: Events, Schema: l.schema, Name: l.name, Create: m["create event"], Status: l.extra,
			SQLMode: m["sql_mode"], TimeZone: m["time_zone"], Charset: m["character_set_client"], Collation: m["collation_connection"], Definer: quoteDefiner(l.definer)})
	}
	return out, nil
}

func readCounters(ctx context.Context, db *sql.DB, in string, args []any, scope Scope) ([]Counter, error) {
	// MySQL 8 caches information_schema.TABLES for a day by default.
	_, _ = db.ExecContext(ctx, "SET SESSION information_schema_stats_expiry = 0")
	rows, err := db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND AUTO_INCREMENT IS NOT NULL AND TABLE_SCHEMA IN "+in+" ORDER BY 1, 2", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Counter
	for rows.Next() {
		var c Counter
		if err := rows.Scan(&c.Schema, &c.Table, &c.Value); err != nil {
			return nil, err
		}
		if scope.included(c.Schema, c.Table) {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

// statusRe finds an event's status in SHOW CREATE EVENT's text (it follows
// ON COMPLETION [NOT] PRESERVE, before any COMMENT and the body).
var statusRe = regexp.MustCompile(`(?is)^(.*?\bON\s+COMPLETION\s+(?:NOT\s+)?PRESERVE\s+)(ENABLE|DISABLE\s+ON\s+(?:SLAVE|REPLICA)|DISABLE)\b`)

// withStatus returns an event's CREATE text with another status.
func withStatus(create, status string) (string, bool) {
	m := statusRe.FindStringSubmatchIndex(create)
	if m == nil {
		return create, false
	}
	return create[:m[3]] + status + create[m[5]:], true
}

// compared is what is compared of an object's definition.
func compared(o Object) string {
	switch o.Kind {
	case Events:
		return eventBody(o.Create)
	case Triggers:
		return o.Body
	}
	return o.Create
}

// eventBody is the event's text without its status, for comparing.
func eventBody(create string) string {
	s, _ := withStatus(create, "<status>")
	return s
}
