package objects

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/pitcrew/pitcrew/internal/mysql/ddl"
)

// Plan is what Create will make on the target, checked by Check.
type Plan struct {
	Source    *Catalog
	Selection Selection
	Scope     Scope
	objects   []Object  // to create (target names), in order
	accounts  []Account // to create
	grants    []Account // whose grants to apply
	Skipped   []string  // already on the target with the same definition
}

// TargetScope is the scope as the target sees it: its database names, no
// renames.
func (s Scope) TargetScope() Scope {
	t := Scope{Ours: s.Ours}
	for _, db := range s.Schemas {
		t.Schemas = append(t.Schemas, s.database(db))
	}
	return t
}

// forTarget returns the object as it is created on the target: target
// names, and the view's text rebuilt with them.
func (s Scope) forTarget(o Object) (Object, error) {
	if !s.renamed(o.Schema) && (o.Kind != Views || s.Table == nil) {
		return o, nil
	}
	switch o.Kind {
	case Views:
		to, name := s.table(o.Schema, o.Name)
		if to == o.Schema && name == o.Name && !s.renamed(o.Schema) {
			return o, nil
		}
		info, err := ddl.Analyze(o.Schema, o.Create, 0)
		if err != nil {
			return o, fmt.Errorf("%s is in a renamed database and its definition cannot be rebuilt with the new names (%v): create it on the target by hand and load with --objects without views", o.ID(), err)
		}
		text, err := info.Rename(func(r ddl.Ref) ddl.Ref {
			sc, t := s.table(r.Schema, r.Table)
			return ddl.Ref{Schema: sc, Table: t}
		}, s.database)
		if err != nil {
			return o, fmt.Errorf("%s: %w", o.ID(), err)
		}
		o.Schema, o.Name, o.Create = to, name, text
		return o, nil
	default:
		return o, fmt.Errorf("%s is in database %s, which routing renames to %s: its body may name the source's tables, which pitcrew cannot rewrite; create it on the target by hand, and load with --objects without %s", o.ID(), o.Schema, s.database(o.Schema), o.Kind)
	}
}

// Check reads the source's catalogue and the target, and refuses, before
// anything is written, what the target cannot take. Objects and accounts
// already on the target with the same definition are skipped (a resumed
// load); with another definition they are refused.
func Check(ctx context.Context, src, tgt *sql.DB, scope Scope, sel Selection) (*Plan, error) {
	cat, err := Read(ctx, src, scope, sel, nil)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	p := &Plan{Source: cat, Selection: sel, Scope: scope}
	have, err := Read(ctx, tgt, scope.TargetScope(), sel, mappedAccounts(cat.Accounts))
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	existing := map[string]Object{}
	for _, o := range have.Objects {
		existing[o.key()] = o
	}
	var errs []error
	for _, o := range cat.Objects {
		t, err := scope.forTarget(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e, ok := existing[t.key()]; ok {
			if sameObject(t, e) {
				p.Skipped = append(p.Skipped, t.ID())
				continue
			}
			errs = append(errs, fmt.Errorf("%s already exists on the target with another definition: drop it there (or leave %s out with --objects)", t.ID(), o.Kind))
			continue
		}
		p.objects = append(p.objects, t)
	}
	haveAcc := map[string]Account{}
	for _, a := range have.Accounts {
		haveAcc[a.key()] = a
	}
	for _, a := range cat.Accounts {
		if e, ok := haveAcc[a.key()]; ok {
			if e.Create != a.Create {
				errs = append(errs, fmt.Errorf("%s already exists on the target with another definition (password, plugin, TLS or limits): drop it there, or leave users out with --objects", a.describe()))
				continue
			}
			p.Skipped = append(p.Skipped, a.describe())
		} else {
			p.accounts = append(p.accounts, a)
		}
		p.grants = append(p.grants, a)
	}
	if len(errs) == 0 {
		errs = append(errs, p.checkTarget(ctx, tgt)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the target cannot take the source's objects (nothing was written): %w", err)
	}
	return p, nil
}

func mappedAccounts(as []Account) []Account {
	out := make([]Account, len(as))
	for i, a := range as {
		out[i] = Account{User: a.User, Host: a.Host, Role: a.Role}
	}
	return out
}

func sameObject(a, b Object) bool {
	return compared(a) == compared(b) && a.SQLMode == b.SQLMode && a.Definer == b.Definer
}

// checkTarget refuses what the target's settings and our privileges there
// cannot take.
func (p *Plan) checkTarget(ctx context.Context, tgt *sql.DB) []error {
	var errs []error
	var logBin, trust int
	var current string
	if err := tgt.QueryRowContext(ctx, "SELECT @@GLOBAL.log_bin, @@GLOBAL.log_bin_trust_function_creators, CURRENT_USER()").Scan(&logBin, &trust, &current); err != nil {
		return []error{err}
	}
	super, setUser := privileges(ctx, tgt)
	const trustFix = "set log_bin_trust_function_creators = 1 on the target (SET GLOBAL, or the RDS parameter group), or leave routines and triggers out with --objects"
	if logBin == 1 && trust == 0 {
		var unsafe, stored []string
		for _, o := range p.objects {
			if o.UnsafeFunction {
				unsafe = append(unsafe, o.ID())
			}
			if o.Kind == Routines || o.Kind == Triggers {
				stored = append(stored, o.ID())
			}
		}
		if len(unsafe) > 0 {
			errs = append(errs, fmt.Errorf("the target logs binary and log_bin_trust_function_creators is off, so it refuses functions declared neither DETERMINISTIC, NO SQL nor READS SQL DATA (%s): %s", strings.Join(unsafe, ", "), trustFix))
		} else if len(stored) > 0 && !super {
			errs = append(errs, fmt.Errorf("the target logs binary, log_bin_trust_function_creators is off and %s has no SUPER, so it may not create routines or triggers (%s): %s", current, strings.Join(first(stored, 5), ", "), trustFix))
		}
	}
	known := map[string]bool{}
	for _, a := range p.Source.Accounts {
		known[a.key()] = true
	}
	me := strings.ToLower(quoteDefiner(current))
	checked := map[string]bool{}
	for _, o := range p.objects {
		d := strings.ToLower(o.Definer)
		if checked[d] {
			continue
		}
		checked[d] = true
		if d != me && !super && !setUser {
			errs = append(errs, fmt.Errorf("%s has DEFINER=%s, and creating an object for another account needs SUPER or SET USER on the target, which %s lacks: grant it, or leave %s out with --objects", o.ID(), o.Definer, current, o.Kind))
			continue
		}
		if known[d] && p.Selection[Users] {
			continue
		}
		ok, err := accountExists(ctx, tgt, o.Definer)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking that the definer %s of %s exists on the target: %w", o.Definer, o.ID(), err))
			continue
		}
		if !ok {
			fix := "create it on the target (CREATE USER " + o.Definer + " ...), or carry users (--objects with users)"
			if p.Selection[Users] {
				fix = "it does not exist on the source either: create it on the target (CREATE USER " + o.Definer + " ...), or change the object's definer on the source"
			}
			errs = append(errs, fmt.Errorf("%s has DEFINER=%s, an account the target does not have and load does not carry: %s", o.ID(), o.Definer, fix))
		}
	}
	return errs
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return append(xs[:n:n], fmt.Sprintf("and %d more", len(xs)-n))
	}
	return xs
}

func privileges(ctx context.Context, db *sql.DB) (super, setUser bool) {
	lines, err := conn.Strings(ctx, db, "SHOW GRANTS")
	if err != nil {
		return false, false
	}
	for _, l := range lines {
		w := words(l)
		on := -1
		for i, x := range w {
			if strings.EqualFold(x, "ON") {
				on = i
				break
			}
		}
		if on < 0 || on+1 >= len(w) || w[on+1] != "*.*" {
			continue
		}
		privs := strings.ToUpper(strings.Join(w[1:on], " "))
		for _, p := range strings.Split(privs, ",") {
			switch strings.TrimSpace(p) {
			case "ALL PRIVILEGES", "SUPER":
				super = true
			case "SET USER", "SET_USER_ID", "SET_ANY_DEFINER":
				setUser = true
			}
		}
	}
	return super, setUser
}

func accountExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var s string
	err := db.QueryRowContext(ctx, "SHOW GRANTS FOR "+name).Scan(&s)
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if noSuchAccount(err) {
		return false, nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1064 { // a role name SHOW GRANTS does not take this way
		return true, nil
	}
	return false, err
}

// Len is how many objects and accounts Create will make.
func (p *Plan) Len() int { return len(p.objects) + len(p.accounts) }

// Create makes the plan on the target in dependency order: accounts,
// views, routines, grants, triggers, events (disabled: the target is not
// the primary), then raises each AUTO_INCREMENT counter below the
// source's, read now (after the copy). Run it again after a failure: what
// is already there is skipped by the next Check.
func (p *Plan) Create(ctx context.Context, src, tgt *sql.DB) (created int, err error) {
	c, err := tgt.Conn(ctx)
	if err != nil {
		return 0, err
	}
	// The session's settings change per object: never hand it back.
	defer func() { _ = c.Raw(func(any) error { return driver.ErrBadConn }); c.Close() }()
	for _, a := range p.accounts {
		if _, err := c.ExecContext(ctx, a.Create); err != nil {
			return created, fmt.Errorf("creating %s on the target: %w%s", a.describe(), err, fix(err, Users))
		}
		created++
	}
	// Grants on tables and databases first: a view's definer needs them
	// for the view to be created; grants on views and routines after them.
	if err := p.grant(ctx, c, false); err != nil {
		return created, err
	}
	var views []Object
	for _, o := range p.objects {
		if o.Kind == Views {
			views = append(views, o)
		}
	}
	// A view may read another: create what can be, again while that helps.
	for len(views) > 0 {
		var again []Object
		var last error
		for _, o := range views {
			if err := exec(ctx, c, o); err != nil {
				if code(err) == 1146 {
					again, last = append(again, o), fmt.Errorf("creating %s on the target: %w%s", o.ID(), err, fix(err, Views))
					continue
				}
				return created, fmt.Errorf("creating %s on the target: %w%s", o.ID(), err, fix(err, Views))
			}
			created++
		}
		if len(again) == len(views) {
			return created, last
		}
		views = again
	}
	if err := p.createKind(ctx, c, Routines, &created); err != nil {
		return created, err
	}
	if err := p.grant(ctx, c, true); err != nil {
		return created, err
	}
	for _, k := range []Kind{Triggers, Events} {
		if err := p.createKind(ctx, c, k, &created); err != nil {
			return created, err
		}
	}
	if p.Selection[Counters] {
		n, err := RaiseCounters(ctx, src, tgt, p.Scope)
		created += n
		if err != nil {
			return created, err
		}
	}
	return created, nil
}

// grant applies the carried accounts' grants: those on views and
// routines (late) or all others.
func (p *Plan) grant(ctx context.Context, c *sql.Conn, late bool) error {
	if _, err := c.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
		return err
	}
	onObject := map[string]bool{}
	for _, o := range p.objects {
		if o.Kind == Views {
			onObject[strings.ToLower(quote(o.Schema)+"."+quote(o.Name))] = true
		}
	}
	for _, a := range p.grants {
		for _, g := range a.Grants {
			w := words(g)
			isLate := false
			for i, x := range w {
				if strings.EqualFold(x, "TO") && i > 0 {
					isLate = onObject[strings.ToLower(w[i-1])] || (i > 1 && (strings.EqualFold(w[i-2], "PROCEDURE") || strings.EqualFold(w[i-2], "FUNCTION")))
					break
				}
			}
			if isLate != late {
				continue
			}
			if _, err := c.ExecContext(ctx, g); err != nil {
				return fmt.Errorf("granting %s on the target (%s): %w%s", a.describe(), ddl.Redact(g), err, fix(err, Users))
			}
		}
	}
	return nil
}

func (p *Plan) createKind(ctx context.Context, c *sql.Conn, k Kind, created *int) error {
	for _, o := range p.objects {
		if o.Kind != k {
			continue
		}
		if err := exec(ctx, c, o); err != nil {
			return fmt.Errorf("creating %s on the target: %w%s", o.ID(), err, fix(err, k))
		}
		*created++
	}
	return nil
}

// exec creates one object in the session it was defined in. An enabled
// event is created DISABLE ON SLAVE, as a native replica marks it.
func exec(ctx context.Context, c *sql.Conn, o Object) error {
	text := o.Create
	if o.Kind == Events && o.Status == "ENABLED" {
		var ok bool
		if text, ok = withStatus(text, "DISABLE ON SLAVE"); !ok {
			return fmt.Errorf("cannot find the status in SHOW CREATE EVENT's text, so the event cannot be created disabled: create it by hand, disabled")
		}
	}
	set := []string{"SET NAMES utf8mb4"}
	if o.Charset != "" {
		set = append(set, fmt.Sprintf("SET character_set_client = %s, character_set_results = %s, collation_connection = %s", o.Charset, o.Charset, o.Collation))
	}
	set = append(set, "SET sql_mode = '"+strings.ReplaceAll(o.SQLMode, "'", "")+"'")
	if o.TimeZone != "" {
		set = append(set, "SET time_zone = '"+strings.ReplaceAll(o.TimeZone, "'", "")+"'")
	}
	set = append(set, "USE "+quote(o.Schema))
	for _, q := range append(set, text) {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func code(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// fix says what to do about a server error while creating k.
func fix(err error, k Kind) string {
	switch code(err) {
	case 1418, 1419:
		return ": set log_bin_trust_function_creators = 1 on the target (SET GLOBAL, or the RDS parameter group) and run load again"
	case 1227:
		return ": the target user needs SUPER or SET USER to create objects for another definer; grant it and run load again, or leave " + string(k) + " out with --objects"
	case 1146:
		return ": it reads a table or view the target does not have (not replicated?): include it in the route, or leave views out with --objects"
	case 1044, 1045, 1142, 1143, 1410:
		return ": the target user may not grant this (it needs the privilege itself, WITH GRANT OPTION): grant it, and run load again, or leave users out with --objects"
	case 1049:
		return ": the database is not on the target"
	}
	return ""
}

// RaiseCounters sets every replicated table's AUTO_INCREMENT on the target
// to the source's where the target's is lower (rows copied or applied
// raise it only to their highest id, not past ids the source handed out
// and then deleted or rolled back). It returns how many it raised.
func RaiseCounters(ctx context.Context, src, tgt *sql.DB, scope Scope) (int, error) {
	in, args := inList(scope.Schemas)
	if len(scope.Schemas) == 0 {
		return 0, nil
	}
	want, err := readCounters(ctx, src, in, args, scope)
	if err != nil {
		return 0, fmt.Errorf("reading the source's AUTO_INCREMENT counters: %w", err)
	}
	ts := scope.TargetScope()
	tin, targs := inList(ts.Schemas)
	have, err := readCounters(ctx, tgt, tin, targs, ts)
	if err != nil {
		return 0, fmt.Errorf("reading the target's AUTO_INCREMENT counters: %w", err)
	}
	cur := map[string]int64{}
	for _, c := range have {
		cur[strings.ToLower(c.Schema)+"."+c.Table] = c.Value
	}
	n := 0
	for _, c := range want {
		s, t := scope.table(c.Schema, c.Table)
		v, ok := cur[strings.ToLower(s)+"."+t]
		if !ok || v >= c.Value {
			continue
		}
		if _, err := tgt.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s.%s AUTO_INCREMENT = %d", quote(s), quote(t), c.Value)); err != nil {
			return n, fmt.Errorf("raising the AUTO_INCREMENT of %s.%s on the target to %d: %w", s, t, c.Value, err)
		}
		n++
	}
	return n, nil
}

// Repair makes the target's objects what the source's are: objects whose
// definition differs are dropped and created again, accounts whose
// definition differs are altered to the source's (password hash
// included), missing objects, accounts and grants are created, counters
// raised. It never drops what exists only on the target, never revokes a
// grant, and leaves tables' definitions and events' status (which side
// runs them) to the operator. It returns how many things it changed.
func Repair(ctx context.Context, src, tgt *sql.DB, scope Scope, sel Selection) (int, error) {
	a, err := Read(ctx, src, scope, sel, nil)
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	b, err := Read(ctx, tgt, scope.TargetScope(), sel, mappedAccounts(a.Accounts))
	if err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	have := map[string]Object{}
	for _, o := range b.Objects {
		have[o.key()] = o
	}
	n := 0
	for _, so := range a.Objects {
		o, err := scope.forTarget(so)
		if err != nil {
			return n, err
		}
		if t, ok := have[o.key()]; ok && !sameObject(o, t) {
			q := fmt.Sprintf("DROP %s %s.%s", showWord(t), quote(t.Schema), quote(t.Name))
			if _, err := tgt.ExecContext(ctx, q); err != nil {
				return n, fmt.Errorf("%s on the target: %w", q, err)
			}
			n++
		}
	}
	haveAcc := map[string]Account{}
	for _, x := range b.Accounts {
		haveAcc[x.key()] = x
	}
	for _, x := range a.Accounts {
		if t, ok := haveAcc[x.key()]; ok && t.Create != x.Create && !x.Role && strings.HasPrefix(x.Create, "CREATE USER") {
			if _, err := tgt.ExecContext(ctx, "ALTER"+strings.TrimPrefix(x.Create, "CREATE")); err != nil {
				return n, fmt.Errorf("ALTER USER %s on the target: %w", x.Name(), err)
			}
			n++
		}
	}
	p, err := Check(ctx, src, tgt, scope, sel)
	if err != nil {
		return n, err
	}
	m, err := p.Create(ctx, src, tgt)
	return n + m, err
}
