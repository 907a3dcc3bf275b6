package objects

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"slices"
	"sort"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// systemUsers are the servers' own accounts (MariaDB, MySQL, RDS), never
// carried: the target has its own.
var systemUsers = []string{"root", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema",
	"rdsadmin", "rdsrepladmin", "rdsproxyadmin", "rds_superuser_role", "PUBLIC", ""}

func (s Scope) ours(user string) bool {
	return slices.Contains(systemUsers, user) || slices.Contains(s.Ours, user)
}

// findAccounts lists the accounts that hold a privilege on a replicated
// database (or a table, column or routine in one), the definers of objs,
// and the roles those hold, recursively.
func findAccounts(ctx context.Context, db *sql.DB, scope Scope, objs []Object) ([]Account, error) {
	seen := map[string]bool{}
	var out []Account
	roles := map[string]bool{}
	if names, err := conn.Strings(ctx, db, "SELECT User FROM mysql.user WHERE is_role = 'Y'"); err == nil {
		for _, n := range names {
			roles[n] = true
		}
	}
	add := func(user, host string) {
		if scope.ours(user) {
			return
		}
		a := Account{User: user, Host: host, Role: roles[user] && host == ""}
		if !seen[a.Name()] {
			seen[a.Name()] = true
			out = append(out, a)
		}
	}
	match := make([]string, 0, len(scope.Schemas))
	var args []any
	for _, s := range scope.Schemas {
		match = append(match, "? LIKE Db")
		args = append(args, s)
	}
	where := "(" + strings.Join(match, " OR ") + ")"
	for _, t := range []string{"mysql.db", "mysql.tables_priv", "mysql.columns_priv", "mysql.procs_priv"} {
		rows, err := db.QueryContext(ctx, "SELECT DISTINCT User, Host FROM "+t+" WHERE "+where+" ORDER BY 1, 2", args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var u, h string
			if err := rows.Scan(&u, &h); err != nil {
				rows.Close()
				return nil, err
			}
			add(u, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for _, o := range objs {
		u, h := splitDefiner(unquoteDefiner(o.Definer))
		var n int
		// Only definers that exist here: one that does not is reported by Check.
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?", u, h).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			add(u, h)
		}
	}
	// Roles held by what is carried (MariaDB: roles_mapping; MySQL: role_edges).
	mapping := "SELECT User, Host, Role, '' FROM mysql.roles_mapping"
	if _, err := db.ExecContext(ctx, "DO (SELECT 1 FROM mysql.roles_mapping LIMIT 1)"); err != nil {
		mapping = "SELECT TO_USER, TO_HOST, FROM_USER, FROM_HOST FROM mysql.role_edges"
	}
	type edge struct{ u, h, ru, rh string }
	var edges []edge
	rows, err := db.QueryContext(ctx, mapping)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e edge
		if err := rows.Scan(&e.u, &e.h, &e.ru, &e.rh); err != nil {
			rows.Close()
			return nil, err
		}
		edges = append(edges, e)
	}
	rows.Close()
	for changed := true; changed; {
		changed = false
		for _, e := range edges {
			holder := Account{User: e.u, Host: e.h, Role: roles[e.u] && e.h == ""}
			if seen[holder.Name()] {
				role := Account{User: e.ru, Host: e.rh, Role: roles[e.ru] && e.rh == ""}
				if !seen[role.Name()] && !scope.ours(e.ru) {
					add(e.ru, e.rh)
					changed = true
				}
			}
		}
	}
	// Roles first: a user's grants may name them.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Role && !out[j].Role })
	return out, nil
}

func unquoteDefiner(d string) string {
	return strings.NewReplacer("`@`", "@", "``", "`", "`", "").Replace(d)
}

// noSuchAccount: SHOW CREATE USER / SHOW GRANTS for an account that is not
// there (1133 ER_PASSWORD_NO_MATCH, 1141 ER_NONEXISTING_GRANT).
func noSuchAccount(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1133 || me.Number == 1141)
}

// readAccount reads an account's definition and its grants for the scope;
// false when the server has no such account.
func readAccount(ctx context.Context, db *sql.DB, a Account, scope Scope) (Account, bool, error) {
	if a.Role {
		a.Create = "CREATE ROLE " + a.Name()
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = '' AND is_role = 'Y'", a.User).Scan(&n); err != nil {
			return a, false, err
		}
		if n == 0 {
			return a, false, nil
		}
	} else {
		var text string
		if err := db.QueryRowContext(ctx, "SHOW CREATE USER "+a.Name()).Scan(&text); err != nil {
			if noSuchAccount(err) {
				return a, false, nil
			}
			return a, false, err
		}
		a.Create = text
	}
	lines, err := conn.Strings(ctx, db, "SHOW GRANTS FOR "+a.Name())
	if err != nil {
		if noSuchAccount(err) {
			return a, false, nil
		}
		return a, false, err
	}
	a.Grants = nil
	for _, l := range lines {
		if g, ok := scope.grant(l); ok {
			a.Grants = append(a.Grants, g)
		}
	}
	return a, true, nil
}

// words splits SQL at top-level spaces, keeping quoted names, strings and
// parenthesised lists whole.
func words(s string) []string {
	var out []string
	var b strings.Builder
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			b.WriteByte(ch)
			if ch == '\\' && quote != '`' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if ch == quote {
				quote = 0
			}
			continue
		case ch == '`' || ch == '\'' || ch == '"':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
		case (ch == ' ' || ch == '\n' || ch == '\t') && depth == 0:
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
			continue
		}
		b.WriteByte(ch)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// splitName splits `db`.`t` (or db.*) at its top-level dot.
func splitName(s string) (db, obj string) {
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '`':
			in = !in
		case s[i] == '.' && !in:
			return unquote(s[:i]), unquote(s[i+1:])
		}
	}
	return unquote(s), ""
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// likeMatch reports whether name matches a grant's database pattern
// (% and _ wildcards, \ escapes; MySQL compares grant names this way).
func likeMatch(pattern, name string) bool {
	var rec func(p, n string) bool
	rec = func(p, n string) bool {
		for len(p) > 0 {
			switch p[0] {
			case '%':
				for i := 0; i <= len(n); i++ {
					if rec(p[1:], n[i:]) {
						return true
					}
				}
				return false
			case '_':
				if len(n) == 0 {
					return false
				}
				p, n = p[1:], n[1:]
			case '\\':
				if len(p) > 1 {
					p = p[1:]
				}
				fallthrough
			default:
				if len(n) == 0 || !strings.EqualFold(p[:1], n[:1]) {
					return false
				}
				p, n = p[1:], n[1:]
			}
		}
		return len(n) == 0
	}
	return rec(pattern, name)
}

// grant keeps a SHOW GRANTS line that belongs to the scope, renamed for
// the target: global privileges, privileges on a replicated database or an
// object in one, role grants and the default role. The password, which
// MariaDB repeats on the USAGE line, is left out (CREATE USER carries it);
// a line granting USAGE alone says nothing CREATE USER does not.
func (s Scope) grant(line string) (string, bool) {
	w := words(line)
	if len(w) < 3 {
		return "", false
	}
	if strings.EqualFold(w[0], "SET") { // SET DEFAULT ROLE r FOR u
		return line, true
	}
	if !strings.EqualFold(w[0], "GRANT") {
		return "", false
	}
	on := slices.IndexFunc(w, func(x string) bool { return strings.EqualFold(x, "ON") })
	to := slices.IndexFunc(w, func(x string) bool { return strings.EqualFold(x, "TO") })
	if to < 0 {
		return "", false
	}
	if on < 0 || on > to { // GRANT role TO account
		return line, true
	}
	privs := strings.Join(w[1:on], " ")
	if strings.EqualFold(privs, "PROXY") {
		return "", false
	}
	level := w[to-1]
	db, obj := splitName(level)
	out := append([]string{}, w[:to-1]...)
	switch {
	case db == "*" && obj == "*":
		if strings.EqualFold(privs, "USAGE") {
			return "", false
		}
		out = append(out, level)
	case obj == "" && db == "*":
		return "", false
	default:
		if !slices.ContainsFunc(s.Schemas, func(x string) bool { return likeMatch(db, x) }) {
			return "", false
		}
		tdb := db
		if s.replicated(db) {
			tdb = s.database(db)
		}
		if obj == "*" {
			out = append(out, quote(tdb)+".*")
		} else {
			tobj := obj
			if !strings.EqualFold(w[to-2], "PROCEDURE") && !strings.EqualFold(w[to-2], "FUNCTION") && !strings.EqualFold(w[to-2], "PACKAGE") {
				tdb, tobj = s.table(db, obj)
			}
			out = append(out, quote(tdb)+"."+quote(tobj))
		}
	}
	rest := w[to:]
	for i := 0; i < len(rest); i++ {
		if strings.EqualFold(rest[i], "IDENTIFIED") {
			j := i + 1
			for j < len(rest) && !strings.EqualFold(rest[j], "WITH") && !strings.EqualFold(rest[j], "REQUIRE") {
				j++
			}
			rest = append(rest[:i:i], rest[j:]...)
			i--
		}
	}
	return strings.Join(append(out, rest...), " "), true
}

// describe is how an account appears in reports.
func (a Account) describe() string {
	if a.Role {
		return "role " + a.Name()
	}
	return "user " + a.Name()
}

func (a Account) key() string { return strings.ToLower(a.Name()) }

func grantSet(a Account) map[string]bool {
	m := map[string]bool{}
	for _, g := range a.Grants {
		m[g] = true
	}
	return m
}

func fmtList(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprint(strings.Join(xs, "; "))
}
