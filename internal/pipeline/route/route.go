// Package route decides what of a source transaction reaches the target
// and under which names: include/exclude patterns over schema.table, and
// renames of databases and tables. Row events and DDL are treated alike;
// names inside DDL are rewritten through the parser's AST. Pure: no I/O.
//
// Online schema change tools' shadow tables (gh-ost _t_gho/_t_ghc/_t_del,
// pt-online-schema-change _t_new/_t_old) follow their table: included when
// it is, renamed with it.
package route

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/ddl"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Rules configure routing. Patterns are schema.table with shell globs
// (`shop.*`, `*.audit_?`); a bare schema means schema.*.
type Rules struct {
	Include         []string          `yaml:"include"`          // default: everything
	Exclude         []string          `yaml:"exclude"`          // wins over include
	RenameDatabases map[string]string `yaml:"rename_databases"` // source name -> target name
	RenameTables    map[string]string `yaml:"rename_tables"`    // source schema.table -> target schema.table
}

// Empty reports whether the rules change nothing.
func (r Rules) Empty() bool {
	return len(r.Include) == 0 && len(r.Exclude) == 0 && len(r.RenameDatabases) == 0 && len(r.RenameTables) == 0
}

// Validate checks patterns and renames.
func (r Rules) Validate() error {
	for _, p := range append(append([]string{}, r.Include...), r.Exclude...) {
		if _, err := path.Match(pattern(p), "x.y"); err != nil {
			return fmt.Errorf("route: pattern %q: %w", p, err)
		}
	}
	for from, to := range r.RenameTables {
		if !strings.Contains(from, ".") || !strings.Contains(to, ".") {
			return fmt.Errorf("route: rename_tables %q: %q: write both as schema.table", from, to)
		}
	}
	return nil
}

func pattern(p string) string {
	if !strings.Contains(p, ".") {
		return p + ".*"
	}
	return p
}

// Router applies Rules to transactions.
type Router struct {
	rules Rules
}

// New returns a router (rules must be valid).
func New(r Rules) *Router { return &Router{rules: r} }

var shadow = regexp.MustCompile(`^_(.+)_(gho|ghc|del|new|old)$`)

// base is the table a shadow table belongs to, and the shadow's suffix.
func base(table string) (string, string) {
	if m := shadow.FindStringSubmatch(table); m != nil {
		return m[1], m[2]
	}
	return table, ""
}

func matches(patterns []string, schema, table string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(pattern(p)), strings.ToLower(schema+"."+table)); ok {
			return true
		}
	}
	return false
}

// Included reports whether schema.table is replicated.
func (r *Router) Included(schema, table string) bool {
	b, _ := base(table)
	if matches(r.rules.Exclude, schema, b) {
		return false
	}
	return len(r.rules.Include) == 0 || matches(r.rules.Include, schema, b)
}

// DatabaseIncluded reports whether some table of the database may be
// replicated.
func (r *Router) DatabaseIncluded(schema string) bool {
	for _, p := range r.rules.Exclude {
		if strings.EqualFold(pattern(p), schema+".*") {
			return false
		}
	}
	if len(r.rules.Include) == 0 {
		return true
	}
	for _, p := range r.rules.Include {
		db, _, _ := strings.Cut(pattern(p), ".")
		if ok, _ := path.Match(strings.ToLower(db), strings.ToLower(schema)); ok {
			return true
		}
	}
	return false
}

// Origin maps a target table back to the source's name for it (renames
// reversed); ok is false when the channel does not replicate it. With
// table "", a database: ok when some of its tables may be replicated.
func (r *Router) Origin(schema, table string) (srcSchema, srcTable string, ok bool) {
	srcSchema, srcTable = schema, table
	renamed := false
	for from, to := range r.rules.RenameTables {
		if table != "" && strings.EqualFold(to, schema+"."+table) {
			srcSchema, srcTable, _ = strings.Cut(from, ".")
			renamed = true
		}
	}
	if !renamed {
		for from, to := range r.rules.RenameDatabases {
			if to == schema {
				srcSchema = from
			}
		}
	}
	if table == "" {
		return srcSchema, "", r.DatabaseIncluded(srcSchema)
	}
	return srcSchema, srcTable, r.Included(srcSchema, srcTable)
}

// Database maps a database name.
func (r *Router) Database(schema string) string {
	if to, ok := r.rules.RenameDatabases[schema]; ok {
		return to
	}
	return schema
}

// Table maps a table name (a shadow table follows its base table).
func (r *Router) Table(ref ddl.Ref) ddl.Ref {
	b, suffix := base(ref.Table)
	if to, ok := r.rules.RenameTables[ref.Schema+"."+b]; ok {
		s, t, _ := strings.Cut(to, ".")
		if suffix != "" {
			t = "_" + t + "_" + suffix
		}
		return ddl.Ref{Schema: s, Table: t}
	}
	return ddl.Ref{Schema: r.Database(ref.Schema), Table: ref.Table}
}

// Route filters and renames t in place. Every DDL is analysed, routing
// rules or not: one that cannot be placed is an error, never applied blind.
func (r *Router) Route(t *txn.Txn) error {
	kept := t.Events[:0]
	renamed := map[*txn.Table]*txn.Table{}
	for _, e := range t.Events {
		switch {
		case e.Rows != nil:
			tbl := e.Rows.Table
			if !r.Included(tbl.Schema, tbl.Name) {
				continue
			}
			if to := r.Table(ddl.Ref{Schema: tbl.Schema, Table: tbl.Name}); to.Schema != tbl.Schema || to.Table != tbl.Name {
				if renamed[tbl] == nil {
					c := *tbl
					c.Schema, c.Name = to.Schema, to.Table
					renamed[tbl] = &c
				}
				e.Rows.Table = renamed[tbl]
			}
		case e.Query != nil && !e.Query.Statement:
			keep, err := r.query(e.Query)
			if err != nil {
				return fmt.Errorf("GTID %s: %w: %.200q; to go past it: pitcrew skip --gtid %s (then apply what it should have done by hand)", t.GTID, err, ddl.Redact(e.Query.Text), t.GTID)
			}
			if !keep {
				continue
			}
		}
		kept = append(kept, e)
	}
	t.Events = kept
	return nil
}

// query decides a DDL statement: drop it, apply it (renamed), or refuse.
func (r *Router) query(q *txn.Query) (bool, error) {
	info, err := ddl.Analyze(q.Schema, q.Text, q.Session.SQLMode)
	if err != nil {
		return false, err
	}
	if info.Other && len(info.Tables) == 0 {
		if keep, err := r.placed(q); err != nil || !keep {
			return false, err
		}
		if len(r.rules.RenameDatabases) > 0 && q.Schema != r.Database(q.Schema) {
			q.Schema = r.Database(q.Schema)
		}
		return true, nil
	}
	in, out := 0, 0
	rename := false
	for _, ref := range info.Tables {
		if r.Included(ref.Schema, ref.Table) {
			in++
		} else {
			out++
		}
		if r.Table(ref) != ref {
			rename = true
		}
	}
	for _, db := range info.Databases {
		if r.DatabaseIncluded(db) {
			in++
		} else {
			out++
		}
		if r.Database(db) != db {
			rename = true
		}
	}
	switch {
	case in == 0 && out > 0:
		return false, nil
	case in > 0 && out > 0:
		return false, fmt.Errorf("the statement touches replicated and filtered tables at once (%v): pitcrew cannot apply half of it", info.Tables)
	case info.Versioned:
		return false, fmt.Errorf("the statement makes %v system-versioned: pitcrew writes rows as SQL and cannot write a versioned table's history rows (row_start/row_end) as the source logged them; exclude the table (route: exclude) and copy it another way, or keep it unversioned", info.Tables)
	}
	if info.Approx {
		// Named by the light reader: applied as written, or not at all.
		switch {
		case rename:
			return false, errors.New("the statement parses only approximately (syntax the parser lacks), so it cannot be rewritten with other names: apply it by hand on the target and skip it")
		case !info.Complete && !r.rules.Empty():
			return false, errors.New("the statement parses only approximately and may read tables it does not name (a SELECT inside), which routing cannot check: apply it by hand on the target and skip it")
		}
		q.Expect = q.Expect[:0]
		for _, x := range info.Expect {
			q.Expect = append(q.Expect, txn.Expect{Schema: x.Schema, Table: x.Table, Exists: x.Exists})
		}
	}
	if rename {
		text, err := info.Rename(r.Table, r.Database)
		if err != nil {
			return false, err
		}
		q.Text = text
	}
	q.Schema = r.Database(q.Schema)
	return true, nil
}

// placed filters a statement that defines no table by where it puts its
// object, as a table's DDL is filtered: a routine, event or trigger of a
// database that is not replicated (or of a filtered table), and a grant on
// one, are not applied. One that names a renamed database in its text is
// refused: pitcrew cannot rewrite a routine's body.
func (r *Router) placed(q *txn.Query) (bool, error) {
	p, ok := ddl.Place(q.Schema, q.Text, q.Session.SQLMode)
	if !ok || p.Database == "" {
		return true, nil
	}
	switch {
	case p.Table != "" && !p.Routine && !r.Included(p.Database, p.Table):
		return false, nil
	case !r.DatabaseIncluded(p.Database):
		return false, nil
	}
	// Unqualified, a renamed database is the session's: the statement runs
	// in it on the target as written. Qualified, or on a renamed table, the
	// text itself would have to change.
	renamed := p.Qualified && r.Database(p.Database) != p.Database
	if p.Table != "" && !p.Routine {
		renamed = renamed || r.Table(ddl.Ref{Schema: p.Database, Table: p.Table}).Table != p.Table
	}
	if renamed {
		return false, fmt.Errorf("the statement names %s, which routing renames, inside text pitcrew cannot rewrite: apply it by hand on the target with the new names and skip it", p.Database)
	}
	return true, nil
}
