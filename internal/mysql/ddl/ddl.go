// Package ddl understands the statements a binlog carries as text: which
// databases and tables each touches, whether it changes table definitions,
// and, for routing, the same statement with other names. It parses with the
// TiDB parser (literals kept as written, values.go); a table statement the
// parser rejects is read by a lighter reader that only names its tables
// (light.go), and what that reader said is checked on the target after the
// statement ran. It never guesses: a statement neither can place is an
// error, and no input makes it panic.
package ddl

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/mysql"
)

// Ref is a table, schema-qualified.
type Ref struct{ Schema, Table string }

func (r Ref) String() string { return r.Schema + "." + r.Table }

// Info is what a statement touches.
type Info struct {
	Tables    []Ref    // tables named, with the session's default schema filled in
	Databases []string // databases created, altered or dropped
	// TableDDL: the statement changes table definitions (create, alter,
	// drop, rename, truncate, indexes, database drops).
	TableDDL bool
	// Other: a statement that defines no table (routines, triggers,
	// events, views, accounts, grants, maintenance): applied as written.
	Other bool
	// Approx: the parser rejected the statement and the light reader named
	// its tables; Expect then says what the target's catalogue must show
	// once it ran. Complete: every table it names is in Tables (false when
	// a SELECT inside may read others).
	Approx   bool
	Complete bool
	Expect   []Expect
	// Versioned: the statement makes a table system-versioned (WITH
	// SYSTEM VERSIONING, ADD SYSTEM VERSIONING, PERIOD FOR SYSTEM_TIME).
	Versioned bool

	stmt    ast.StmtNode // nil unless the original text parsed
	schema  string
	sqlMode uint64
}

// Expect is what the target's catalogue shows after a statement read by
// the light reader ran: the table (a database when Table is "") exists,
// or is gone.
type Expect struct {
	Ref
	Exists bool
}

// sql_mode bits the parser reads by (the same in MySQL, MariaDB and TiDB,
// as the query event logs them).
const (
	modeANSIQuotes         = 1 << 2
	modeNoBackslashEscapes = 1 << 20
	parseModes             = 1<<0 | 1<<1 | modeANSIQuotes | 1<<3 | modeNoBackslashEscapes | 1<<29 // REAL_AS_FLOAT, PIPES_AS_CONCAT, ANSI_QUOTES, IGNORE_SPACE, NO_BACKSLASH_ESCAPES, HIGH_NOT_PRECEDENCE
)

// ErrUnparsed: the statement may change tables but cannot be parsed.
var ErrUnparsed = errors.New("cannot parse the statement to know which tables it changes")

// mariadbOnly rewrites MariaDB syntax the TiDB parser lacks into forms that
// name the same objects, for analysis only (the original text is applied).
var mariadbOnly = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\bPERSISTENT\b`), "STORED"},
	{regexp.MustCompile(`(?i)\bINVISIBLE\b`), ""},
	{regexp.MustCompile(`(?i)^(\s*(?:/\*.*?\*/\s*)*)CREATE\s+OR\s+REPLACE\s+TABLE\b`), "${1}CREATE TABLE"},
}

// otherRe matches statements that define no table.
var otherRe = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*(?:` +
	`(?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:SQL\s+SECURITY\s+\w+\s+)?(?:AGGREGATE\s+)?(?:TRIGGER|PROCEDURE|FUNCTION|EVENT|VIEW|USER|ROLE|SERVER|SEQUENCE)\b` +
	`|GRANT\b|REVOKE\b|SET\s+PASSWORD\b|SET\s+DEFAULT\s+ROLE\b|RENAME\s+USER\b|FLUSH\b|ANALYZE\b|OPTIMIZE\b|REPAIR\b|CHECK\b|INSTALL\b|UNINSTALL\b)`)

// versionedRe: what makes a table system-versioned.
var versionedRe = regexp.MustCompile(`(?is)\b(?:WITH\s+SYSTEM\s+VERSIONING|ADD\s+SYSTEM\s+VERSIONING|PERIOD\s+FOR\s+SYSTEM_TIME|GENERATED\s+ALWAYS\s+AS\s+ROW\s+(?:START|END))\b`)

// Analyze parses one statement run with defaultSchema as the session's
// database, under the source session's sql_mode (ANSI_QUOTES and
// PIPES_AS_CONCAT change how it parses). It never panics: a parser panic
// is an error like any statement it cannot read.
func Analyze(defaultSchema, text string, sqlMode uint64) (info Info, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = Info{}, fmt.Errorf("%w: the parser failed on it (%v)", ErrUnparsed, r)
		}
	}()
	info = Info{schema: defaultSchema, sqlMode: sqlMode}
	info.Versioned = versionedRe.MatchString(text)
	p := parser.New()
	p.SetSQLMode(mysql.SQLMode(sqlMode & parseModes))
	stmts, _, err := p.Parse(text, "", "")
	if err == nil && len(stmts) == 1 {
		info.stmt = stmts[0]
		info.collect(stmts[0])
		return info, nil
	}
	norm := text
	for _, r := range mariadbOnly {
		norm = r.re.ReplaceAllString(norm, r.with)
	}
	if stmts, _, err2 := p.Parse(norm, "", ""); err2 == nil && len(stmts) == 1 {
		info.collect(stmts[0])
		return info, nil
	}
	if otherRe.MatchString(text) {
		info.Other = true
		return info, nil
	}
	if li, ok := light(defaultSchema, text, sqlMode); ok {
		li.Versioned, li.sqlMode = info.Versioned, sqlMode
		return li, nil
	}
	if err == nil {
		err = fmt.Errorf("%d statements in one event", len(stmts))
	}
	return info, fmt.Errorf("%w: %v", ErrUnparsed, err)
}

func (i *Info) collect(stmt ast.StmtNode) {
	switch s := stmt.(type) {
	case *ast.CreateDatabaseStmt:
		i.Databases = append(i.Databases, s.Name.O)
	case *ast.AlterDatabaseStmt:
		i.Databases = append(i.Databases, s.Name.O)
	case *ast.DropDatabaseStmt:
		i.Databases = append(i.Databases, s.Name.O)
		i.TableDDL = true
	case *ast.CreateTableStmt, *ast.AlterTableStmt, *ast.DropTableStmt, *ast.RenameTableStmt,
		*ast.TruncateTableStmt, *ast.CreateIndexStmt, *ast.DropIndexStmt:
		i.TableDDL = true
	case *ast.CreateViewStmt, *ast.CreateSequenceStmt, *ast.DropSequenceStmt, *ast.CreateUserStmt,
		*ast.GrantStmt, *ast.RevokeStmt, *ast.DropUserStmt, *ast.AlterUserStmt:
		i.Other = true
	case *ast.ProcedureInfo, *ast.DropProcedureStmt:
		// A routine: placed by its own name (Place), not by the tables
		// its body reads.
		i.Other, i.Complete = true, true
		return
	}
	v := &names{schema: i.schema}
	stmt.Accept(v)
	i.Tables = v.refs
	i.Complete = true
}

// names collects table names from an AST.
type names struct {
	schema string
	refs   []Ref
	rename func(*ast.TableName)
}

func (v *names) Enter(n ast.Node) (ast.Node, bool) {
	if t, ok := n.(*ast.TableName); ok {
		s := t.Schema.O
		if s == "" {
			s = v.schema
		}
		v.refs = append(v.refs, Ref{Schema: s, Table: t.Name.O})
		if v.rename != nil {
			v.rename(t)
		}
	}
	return n, false
}

func (v *names) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// Rename returns the statement with every table and database name mapped,
// rebuilt from the AST (never by string replacement). It fails when the
// original text did not parse: a statement pitcrew cannot rebuild exactly
// is not rewritten.
func (i Info) Rename(table func(Ref) Ref, database func(string) string) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("rebuilding the statement failed (%v): apply it by hand on the target and skip it", r)
		}
	}()
	if i.stmt == nil {
		return "", errors.New("the statement parses only approximately (MariaDB syntax the parser lacks), so it cannot be rewritten with other names: apply it by hand on the target and skip it")
	}
	v := &names{schema: i.schema, rename: func(t *ast.TableName) {
		s := t.Schema.O
		if s == "" {
			s = i.schema
		}
		to := table(Ref{Schema: s, Table: t.Name.O})
		// Always qualify: the target session's default database is the
		// source's name, which may itself be renamed.
		t.Schema, t.Name = ast.NewCIStr(to.Schema), ast.NewCIStr(to.Table)
	}}
	i.stmt.Accept(v)
	switch s := i.stmt.(type) {
	case *ast.CreateDatabaseStmt:
		s.Name = ast.NewCIStr(database(s.Name.O))
	case *ast.AlterDatabaseStmt:
		s.Name = ast.NewCIStr(database(s.Name.O))
	case *ast.DropDatabaseStmt:
		s.Name = ast.NewCIStr(database(s.Name.O))
	}
	var b strings.Builder
	flags := format.DefaultRestoreFlags
	if i.sqlMode&modeNoBackslashEscapes == 0 {
		flags |= format.RestoreStringEscapeBackslash // a backslash in a value reads back as itself
	}
	if err := i.stmt.Restore(format.NewRestoreCtx(flags, &b)); err != nil {
		return "", fmt.Errorf("rebuilding the statement: %w", err)
	}
	return b.String(), nil
}
