package objects

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/pitcrew/pitcrew/conflict"
)

// Difference is one thing the target lacks or has otherwise than the
// source, with what to do about it.
type Difference struct {
	Kind   Kind   `json:"kind"`
	Object string `json:"object"`
	What   string `json:"what"`
	Fix    string `json:"fix"`
}

func (d Difference) String() string { return d.Object + ": " + d.What + "; fix: " + d.Fix }

// Report is what Verify found.
type Report struct {
	Equal       bool         `json:"equal"`
	Compared    map[Kind]int `json:"compared"` // per kind, how many the source has
	Differences []Difference `json:"differences,omitempty"`
}

// Verify compares the selected kinds (and, with Schemas, the replicated
// tables' definitions) between source and target. between, when set, runs
// after the source is read and before the target is: waiting there until
// the channel applied what the source had executed makes a counter the
// channel is still carrying no false difference while writes go on.
func Verify(ctx context.Context, src, tgt *sql.DB, scope Scope, sel Selection, between func(context.Context) error) (Report, error) {
	rep := Report{Compared: map[Kind]int{}}
	a, err := Read(ctx, src, scope, sel, nil)
	if err != nil {
		return rep, fmt.Errorf("source: %w", err)
	}
	if between != nil {
		if err := between(ctx); err != nil {
			return rep, err
		}
	}
	b, err := Read(ctx, tgt, scope.TargetScope(), sel, mappedAccounts(a.Accounts))
	if err != nil {
		return rep, fmt.Errorf("target: %w", err)
	}
	for _, o := range a.Objects {
		rep.Compared[o.Kind]++
	}
	if sel[Users] {
		rep.Compared[Users] = len(a.Accounts)
	}
	if sel[Counters] {
		rep.Compared[Counters] = len(a.Counters)
	}
	rep.Differences = Compare(a, b, scope, sel)
	if sel[Schemas] {
		n, diffs, err := compareTables(ctx, src, tgt, scope)
		if err != nil {
			return rep, err
		}
		rep.Compared[Schemas] = n
		rep.Differences = append(rep.Differences, diffs...)
	}
	rep.Equal = len(rep.Differences) == 0
	return rep, nil
}

// Compare says how the target's catalogue differs from the source's.
func Compare(src, tgt *Catalog, scope Scope, sel Selection) []Difference {
	var out []Difference
	have := map[string]Object{}
	for _, o := range tgt.Objects {
		have[o.key()] = o
	}
	expected := map[string]bool{}
	for _, so := range src.Objects {
		o, err := scope.forTarget(so)
		if err != nil {
			out = append(out, Difference{so.Kind, so.ID(), "cannot be carried", err.Error()})
			continue
		}
		expected[o.key()] = true
		t, ok := have[o.key()]
		recreate := fmt.Sprintf("create it on the target as SHOW CREATE %s %s.%s on the source prints it, with DEFINER %s (pitcrew verify --objects --repair does)", showWord(o), quote(so.Schema), quote(so.Name), so.Definer)
		if !ok {
			out = append(out, Difference{o.Kind, o.ID(), "missing on the target", recreate})
			continue
		}
		var what []string
		if compared(o) != compared(t) {
			what = append(what, "definition differs")
		}
		if o.Definer != t.Definer {
			what = append(what, fmt.Sprintf("definer %s on the source, %s on the target", o.Definer, t.Definer))
		}
		if o.SQLMode != t.SQLMode {
			what = append(what, fmt.Sprintf("sql_mode %q on the source, %q on the target", o.SQLMode, t.SQLMode))
		}
		if o.Charset != t.Charset || o.Collation != t.Collation {
			what = append(what, fmt.Sprintf("created under %s/%s on the source, %s/%s on the target", o.Charset, o.Collation, t.Charset, t.Collation))
		}
		if len(what) > 0 {
			out = append(out, Difference{o.Kind, o.ID(), strings.Join(what, "; "), "drop it on the target and " + recreate})
		}
		if o.Kind == Events && t.Status == "ENABLED" && o.Status != "SLAVESIDE_DISABLED" {
			what := "enabled on both sides: it would run twice"
			if o.Status == "DISABLED" {
				what = "disabled on the source but enabled on the target"
			}
			out = append(out, Difference{o.Kind, o.ID(), what, fmt.Sprintf("ALTER EVENT %s.%s DISABLE ON SLAVE on the side that is not the primary", quote(t.Schema), quote(t.Name))})
		}
	}
	for _, t := range tgt.Objects {
		if !expected[t.key()] && sel[t.Kind] {
			out = append(out, Difference{t.Kind, t.ID(), "only on the target", fmt.Sprintf("drop it on the target (DROP %s %s.%s) unless it is meant to be there, then accept the difference", showWord(t), quote(t.Schema), quote(t.Name))})
		}
	}
	if sel[Users] {
		out = append(out, compareAccounts(src.Accounts, tgt.Accounts)...)
	}
	if sel[Counters] {
		out = append(out, compareCounters(src, tgt, scope)...)
	}
	return out
}

func showWord(o Object) string {
	switch o.Kind {
	case Views:
		return "VIEW"
	case Routines:
		return o.Type
	case Triggers:
		return "TRIGGER"
	}
	return "EVENT"
}

func compareAccounts(src, tgt []Account) []Difference {
	var out []Difference
	have := map[string]Account{}
	for _, a := range tgt {
		have[a.key()] = a
	}
	for _, a := range src {
		t, ok := have[a.key()]
		if !ok {
			out = append(out, Difference{Users, a.describe(), "missing on the target", "run on the target: " + strings.Join(append([]string{redacted(a.Create)}, a.Grants...), "; ") + " (the password hash as SHOW CREATE USER on the source prints it; pitcrew verify --objects --repair does)"})
			continue
		}
		if a.Create != t.Create {
			out = append(out, Difference{Users, a.describe(), "account differs (password hash, plugin, TLS or limits)", "ALTER USER on the target to what SHOW CREATE USER " + a.Name() + " prints on the source"})
		}
		sg, tg := grantSet(a), grantSet(t)
		var missing, extra []string
		for _, g := range a.Grants {
			if !tg[g] {
				missing = append(missing, g)
			}
		}
		for _, g := range t.Grants {
			if !sg[g] {
				extra = append(extra, g)
			}
		}
		if len(missing) > 0 {
			out = append(out, Difference{Users, a.describe(), "grants missing on the target: " + fmtList(missing), "run them on the target (pitcrew verify --objects --repair does)"})
		}
		if len(extra) > 0 {
			out = append(out, Difference{Users, a.describe(), "grants only on the target: " + fmtList(extra), "REVOKE them on the target unless they are meant to be there"})
		}
	}
	return out
}

func redacted(create string) string {
	i := strings.Index(strings.ToUpper(create), " IDENTIFIED ")
	if i < 0 {
		return create
	}
	return create[:i] + " IDENTIFIED ..."
}

func compareCounters(src, tgt *Catalog, scope Scope) []Difference {
	var out []Difference
	have := map[string]int64{}
	for _, c := range tgt.Counters {
		have[strings.ToLower(c.Schema)+"."+c.Table] = c.Value
	}
	tOff := conflict.Offsets{Node: "target", Increment: tgt.Increment, Offset: tgt.Offset}
	sOff := conflict.Offsets{Node: "source", Increment: src.Increment, Offset: src.Offset}
	bidi := src.Increment > 1 || tgt.Increment > 1
	if bidi {
		if problems := conflict.Problems([]conflict.Offsets{sOff, tOff}); len(problems) > 0 {
			out = append(out, Difference{Counters, "auto_increment_increment/offset", conflict.Join(problems), "give each side its own offset: pitcrew bidi plan (source and target as the nodes)"})
		}
	}
	for _, c := range src.Counters {
		s, t := scope.table(c.Schema, c.Table)
		v, ok := have[strings.ToLower(s)+"."+t]
		if !ok {
			continue // the table itself is missing: the schema comparison says so
		}
		// The target's next id must not be one the source handed out: at
		// least the source's counter; both writable, on the target's own
		// offset and past the source's last id (the ids between are on the
		// source's offset, never the target's).
		next, floor := v, c.Value
		if bidi {
			next, floor = conflict.NextID(v, tOff), c.Value-int64(max(1, src.Increment))+1
		}
		if next < floor {
			at := fmt.Sprintf("AUTO_INCREMENT %d on the target", v)
			if bidi {
				at += fmt.Sprintf(" (next id %d on its offset)", next)
			}
			out = append(out, Difference{Counters, "table " + s + "." + t,
				fmt.Sprintf("%s, %d on the source: new rows on the target would take ids the source already handed out", at, c.Value),
				fmt.Sprintf("ALTER TABLE %s.%s AUTO_INCREMENT = %d on the target (pitcrew verify --objects --repair does)", quote(s), quote(t), c.Value)})
		}
	}
	return out
}

// tableDef is what compareTables compares of one table.
type tableDef struct {
	options string
	columns map[string]string
	order   []string
	indexes map[string]string
	fks     map[string]string
}

func readTables(ctx context.Context, db *sql.DB, scope Scope, mapNames bool) (map[string]*tableDef, map[string]string, error) {
	in, args := inList(scope.Schemas)
	defs := map[string]*tableDef{}
	name := func(s, t string) string {
		if mapNames {
			s, t = scope.table(s, t)
		}
		return strings.ToLower(s) + "." + t
	}
	keep := func(s, t string) bool { return !mapNames || scope.included(s, t) }
	rows, err := db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, CONCAT_WS(' ', 'ENGINE=', IFNULL(ENGINE, ''), 'ROW_FORMAT=', IFNULL(ROW_FORMAT, ''), 'COLLATE=', IFNULL(TABLE_COLLATION, ''), 'OPTIONS=', IFNULL(CREATE_OPTIONS, ''), 'COMMENT=', QUOTE(TABLE_COMMENT))
FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN `+in, args...)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var s, t, o string
		if err := rows.Scan(&s, &t, &o); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if keep(s, t) {
			defs[name(s, t)] = &tableDef{options: o, columns: map[string]string{}, indexes: map[string]string{}, fks: map[string]string{}}
		}
	}
	rows.Close()
	each := func(q string, f func(d *tableDef, k, v string)) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s, t, k, v string
			if err := rows.Scan(&s, &t, &k, &v); err != nil {
				return err
			}
			if d := defs[name(s, t)]; d != nil {
				f(d, k, v)
			}
		}
		return rows.Err()
	}
	if err := each(`SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, CONCAT_WS(' ', COLUMN_TYPE,
  IF(IS_NULLABLE = 'YES', 'NULL', 'NOT NULL'), CONCAT('DEFAULT ', IFNULL(COLUMN_DEFAULT, 'none')),
  IFNULL(CONCAT('CHARACTER SET ', CHARACTER_SET_NAME, ' COLLATE ', COLLATION_NAME), ''), EXTRA,
  IFNULL(CONCAT('AS (', GENERATION_EXPRESSION, ')'), ''), IF(COLUMN_COMMENT = '', '', CONCAT('COMMENT ', QUOTE(COLUMN_COMMENT))))
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN `+in+` ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, func(d *tableDef, k, v string) {
		d.columns[k] = strings.Join(strings.Fields(v), " ")
		d.order = append(d.order, k)
	}); err != nil {
		return nil, nil, err
	}
	if err := each(`SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, CONCAT(IF(NON_UNIQUE = 0, 'UNIQUE ', ''), INDEX_TYPE, ' (',
  GROUP_CONCAT(CONCAT(COLUMN_NAME, IFNULL(CONCAT('(', SUB_PART, ')'), '')) ORDER BY SEQ_IN_INDEX SEPARATOR ', '), ')')
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN `+in+` GROUP BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE`, func(d *tableDef, k, v string) {
		d.indexes[k] = v
	}); err != nil {
		return nil, nil, err
	}
	if err := each(`SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CONCAT('REFERENCES ', REFERENCED_TABLE_NAME, ' ON UPDATE ', UPDATE_RULE, ' ON DELETE ', DELETE_RULE)
FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN `+in, func(d *tableDef, k, v string) {
		d.fks[k] = v
	}); err != nil {
		return nil, nil, err
	}
	dbs := map[string]string{}
	rows, err = db.QueryContext(ctx, "SELECT SCHEMA_NAME, CONCAT(DEFAULT_CHARACTER_SET_NAME, ' COLLATE ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN "+in, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var s, v string
		if err := rows.Scan(&s, &v); err != nil {
			return nil, nil, err
		}
		if mapNames {
			s = scope.database(s)
		}
		dbs[strings.ToLower(s)] = v
	}
	return defs, dbs, rows.Err()
}

// compareTables compares the replicated tables' definitions: columns
// (type, nullability, default, character set and collation, generation,
// comment), indexes, foreign keys' rules, table options, and each
// database's character set.
func compareTables(ctx context.Context, src, tgt *sql.DB, scope Scope) (int, []Difference, error) {
	a, adb, err := readTables(ctx, src, scope, true)
	if err != nil {
		return 0, nil, fmt.Errorf("source: reading table definitions: %w", err)
	}
	b, bdb, err := readTables(ctx, tgt, scope.TargetScope(), false)
	if err != nil {
		return 0, nil, fmt.Errorf("target: reading table definitions: %w", err)
	}
	var out []Difference
	alter := func(t string) string {
		return "make the target's table match the source's (compare SHOW CREATE TABLE on both; ALTER TABLE " + t + " on the target)"
	}
	for db, v := range adb {
		if w, ok := bdb[db]; !ok {
			out = append(out, Difference{Schemas, "database " + db, "missing on the target", "CREATE DATABASE " + quote(db) + " CHARACTER SET " + v + " on the target, or pitcrew load"})
		} else if v != w {
			out = append(out, Difference{Schemas, "database " + db, "default character set " + v + " on the source, " + w + " on the target", "ALTER DATABASE " + quote(db) + " CHARACTER SET " + v + " on the target"})
		}
	}
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s, t := a[n], b[n]
		obj := "table " + n
		if t == nil {
			out = append(out, Difference{Schemas, obj, "missing on the target", "create it on the target as SHOW CREATE TABLE prints it on the source (pitcrew load does)"})
			continue
		}
		var what []string
		if s.options != t.options {
			what = append(what, fmt.Sprintf("options %q on the source, %q on the target", s.options, t.options))
		}
		for _, c := range s.order {
			switch tc, ok := t.columns[c]; {
			case !ok:
				what = append(what, "column "+c+" missing on the target")
			case tc != s.columns[c]:
				what = append(what, fmt.Sprintf("column %s: %s on the source, %s on the target", c, s.columns[c], tc))
			}
		}
		for _, c := range t.order {
			if _, ok := s.columns[c]; !ok {
				what = append(what, "column "+c+" only on the target")
			}
		}
		if strings.Join(orderOf(s, t), ",") != strings.Join(orderOf(t, s), ",") {
			what = append(what, "columns in another order: "+strings.Join(s.order, ", ")+" on the source, "+strings.Join(t.order, ", ")+" on the target")
		}
		what = append(what, diffMaps("index", s.indexes, t.indexes)...)
		what = append(what, diffMaps("foreign key", s.fks, t.fks)...)
		if len(what) > 0 {
			out = append(out, Difference{Schemas, obj, strings.Join(what, "; "), alter(n)})
		}
	}
	return len(a), out, nil
}

// orderOf is a's columns that b has too, in a's order.
func orderOf(a, b *tableDef) []string {
	var out []string
	for _, c := range a.order {
		if _, ok := b.columns[c]; ok {
			out = append(out, c)
		}
	}
	if a.order == nil {
		return nil
	}
	return out
}

func diffMaps(what string, a, b map[string]string) []string {
	var out []string
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		switch {
		case !bok:
			out = append(out, fmt.Sprintf("%s %s %s missing on the target", what, k, av))
		case !aok:
			out = append(out, fmt.Sprintf("%s %s %s only on the target", what, k, bv))
		case av != bv:
			out = append(out, fmt.Sprintf("%s %s: %s on the source, %s on the target", what, k, av, bv))
		}
	}
	return out
}
