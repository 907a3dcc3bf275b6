// Package objects carries and checks everything of a database that is not a
// table's rows: views, stored procedures and functions, triggers, events,
// the accounts and roles that use the replicated databases (with their
// password hashes and grants), and each table's AUTO_INCREMENT counter.
//
// Read takes a catalogue of them from a server (the source's decides which
// accounts matter); Create makes them on the target in dependency order:
// accounts, views (a view may read another), routines, grants (a grant on a
// view or routine needs it to exist), triggers, events, counters. Definers
// are kept as the source has them; Check refuses, before anything is
// written, what the target cannot take (a definer that exists nowhere,
// routines or triggers under binary logging without
// log_bin_trust_function_creators, a definer other than the loading user
// without SUPER / SET USER). Events are created DISABLE ON SLAVE
// (SLAVESIDE_DISABLED), as a native replica marks them: the target is not
// the primary yet. Compare says what differs between two catalogues (and
// the tables' definitions) and how to fix it.
package objects

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is one kind of object.
type Kind string

// The kinds, in the order they are created.
const (
	Users     Kind = "users" // accounts and roles with their grants
	Views     Kind = "views"
	Routines  Kind = "routines" // procedures and functions
	Triggers  Kind = "triggers"
	Events    Kind = "events"
	Counters  Kind = "auto_increment"
	Schemas   Kind = "schemas" // tables' definitions: compared only (load creates tables itself)
	kindsList      = "views,routines,triggers,events,users,auto_increment"
)

// AllKinds is what load carries by default.
var AllKinds = []Kind{Users, Views, Routines, Triggers, Events, Counters}

// Selection is the set of kinds to carry or compare.
type Selection map[Kind]bool

// ParseSelection reads a --objects value: "all" (the default), "none"
// (tables only), or a comma-separated list of kinds.
func ParseSelection(s string) (Selection, error) {
	sel := Selection{}
	switch strings.TrimSpace(s) {
	case "", "all":
		for _, k := range AllKinds {
			sel[k] = true
		}
		return sel, nil
	case "none":
		return sel, nil
	}
	for _, p := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(strings.ToLower(p)))
		if k == "" {
			continue
		}
		if !slices.Contains(AllKinds, k) {
			return nil, fmt.Errorf("--objects: unknown kind %q: use all, none, or a list of %s", p, kindsList)
		}
		sel[k] = true
	}
	return sel, nil
}

// Any reports whether the selection carries anything.
func (s Selection) Any() bool {
	for _, v := range s {
		if v {
			return true
		}
	}
	return false
}

// Scope is what the catalogue covers: the replicated databases and tables
// and their names on the target.
type Scope struct {
	// Schemas are the source's replicated databases.
	Schemas []string
	// Included reports whether a view, or a trigger's table, is replicated.
	Included func(schema, table string) bool
	// Database and Table map source names to target names (routing); nil
	// keeps them.
	Database func(string) string
	Table    func(schema, table string) (string, string)
	// Ours are account user names never carried (pitcrew's own: the
	// source's and the target's users), beside the servers' own accounts.
	Ours []string
}

func (s Scope) included(schema, table string) bool {
	return s.Included == nil || s.Included(schema, table)
}

func (s Scope) database(db string) string {
	if s.Database == nil {
		return db
	}
	return s.Database(db)
}

func (s Scope) table(schema, table string) (string, string) {
	if s.Table == nil {
		return s.database(schema), table
	}
	return s.Table(schema, table)
}

func (s Scope) renamed(schema string) bool { return s.database(schema) != schema }

func (s Scope) replicated(schema string) bool {
	return slices.ContainsFunc(s.Schemas, func(x string) bool { return strings.EqualFold(x, schema) })
}

// Object is one view, routine, trigger or event as SHOW CREATE prints it.
type Object struct {
	Kind   Kind
	Type   string // PROCEDURE, FUNCTION (routines)
	Schema string
	Name   string
	Table  string // a trigger's table
	Create string
	// The session the object was created in (SHOW CREATE's columns).
	SQLMode, Charset, Collation, TimeZone string
	Definer                               string // `user`@`host`
	Status                                string // events: ENABLED, DISABLED, SLAVESIDE_DISABLED
	// Body is what is compared of a trigger: table, timing, event and
	// body without pitcrew's guard (stored.Guard), which the target's
	// triggers carry while pitcrew applies.
	Body string
	// UnsafeFunction: a function with none of DETERMINISTIC, NO SQL,
	// READS SQL DATA, which binary logging refuses without
	// log_bin_trust_function_creators.
	UnsafeFunction bool
}

// ID names the object in reports: "view shop.v".
func (o Object) ID() string {
	k := strings.TrimSuffix(string(o.Kind), "s")
	if o.Type != "" {
		k = strings.ToLower(o.Type)
	}
	return k + " " + o.Schema + "." + o.Name
}

// key identifies the object across servers (target names).
func (o Object) key() string {
	return string(o.Kind) + "\x00" + o.Type + "\x00" + strings.ToLower(o.Schema) + "\x00" + o.Name
}

// Account is a user or role with what SHOW CREATE USER and SHOW GRANTS say.
type Account struct {
	User, Host string
	Role       bool
	Create     string   // CREATE USER ... (password hash, plugin, TLS, limits) or CREATE ROLE
	Grants     []string // GRANT lines for the replicated databases and global ones, renamed for the target
}

// Name is the account as SQL writes it: `app`@`%` (a role: `reader`).
func (a Account) Name() string {
	if a.Role {
		return quote(a.User)
	}
	return quote(a.User) + "@" + quote(a.Host)
}

func quote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Counter is a table's AUTO_INCREMENT counter.
type Counter struct {
	Schema, Table string // target names
	Value         int64
}

// Catalog is what Read found on one server.
type Catalog struct {
	Objects  []Object // views, routines, triggers, events
	Accounts []Account
	Counters []Counter
	// Increment and Offset are the server's auto_increment settings.
	Increment, Offset int
}

func (c *Catalog) of(k Kind) []Object {
	var out []Object
	for _, o := range c.Objects {
		if o.Kind == k {
			out = append(out, o)
		}
	}
	return out
}
