// Package stored keeps the target's stored programs, triggers and events,
// from acting a second time on what pitcrew applies, as a native replica
// keeps them.
//
// Triggers. Row events already hold what the source's triggers did (an
// audit row, a NEW.v the trigger set); a trigger on the target fired by
// pitcrew's SQL would do it again: a duplicate AUTO_INCREMENT key, twice
// the rows, NEW.v doubled. pitcrew's sessions set @pitcrew_apply
// (SessionMarker), and every trigger the target shares with the source is
// guarded: its body wrapped as
//
//	IF @pitcrew_apply IS NULL THEN
//	<the original body>
//	; END IF
//
// so it fires for every other session (the application's writes, on both
// nodes of a bidirectional pair) and never for pitcrew's. A guard is put on
// and taken off with one CREATE OR REPLACE TRIGGER under the trigger's own
// definer, sql_mode and character sets, after the trigger it followed: one
// statement, so no write meets the table without its trigger, and taking it
// off gives back the body byte for byte. Triggers that are only on the target
// (the source has none of that name on that table with that body: an
// operator's own, such as an audit of what pitcrew applies) are left alone
// and fire for pitcrew's writes too.
//
// Events. A native replica marks the events it replicates
// SLAVESIDE_DISABLED (DISABLE ON SLAVE), so they run on the primary only;
// see events.go.
package stored

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// SessionMarker is what every session of pitcrew's that writes to a target
// runs: guarded triggers do not fire for it.
const SessionMarker = "SET @pitcrew_apply = 1"

const (
	guardHead = "IF @pitcrew_apply IS NULL THEN\n"
	guardTail = "\n; END IF"
)

// Guard wraps a trigger body so that it does not fire in pitcrew's
// sessions. The body's last line may be a -- comment: the tail starts a
// line of its own.
func Guard(body string) string { return guardHead + body + guardTail }

// Unguard returns the body Guard wrapped, and whether body was guarded.
func Unguard(body string) (string, bool) {
	if !strings.HasPrefix(body, guardHead) || !strings.HasSuffix(body, guardTail) || len(body) < len(guardHead)+len(guardTail) {
		return body, false
	}
	return body[len(guardHead) : len(body)-len(guardTail)], true
}

// Trigger is one trigger as information_schema.TRIGGERS shows it.
type Trigger struct {
	Schema, Name, Table string
	Timing, Event       string // BEFORE/AFTER, INSERT/UPDATE/DELETE
	Order               int
	Body                string // ACTION_STATEMENT
	Definer             string // user@host
	SQLMode             string
	Charset, Collation  string // character_set_client, collation_connection
}

// Guarded reports whether the trigger carries pitcrew's guard.
func (t Trigger) Guarded() bool { _, ok := Unguard(t.Body); return ok }

// Key names the trigger: schema.name (trigger names are unique per schema).
func (t Trigger) Key() string { return t.Schema + "." + t.Name }

// same reports whether t and o are one trigger's definition (by body, and
// where it fires), guarded or not.
func (t Trigger) same(o Trigger) bool {
	a, _ := Unguard(t.Body)
	b, _ := Unguard(o.Body)
	return strings.EqualFold(t.Name, o.Name) && strings.EqualFold(t.Table, o.Table) && t.Timing == o.Timing && t.Event == o.Event && a == b
}

// systemSchemas are never looked at.
var systemSchemas = []string{"mysql", "sys", "information_schema", "performance_schema"}

// Queryer is a *sql.DB or *sql.Conn.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ListTriggers reads every trigger outside the system schemas, in
// schema, table, timing, event and order.
func ListTriggers(ctx context.Context, db Queryer) ([]Trigger, error) {
	rows, err := db.QueryContext(ctx, `SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION,
  ACTION_ORDER, CONVERT(ACTION_STATEMENT USING utf8mb4), DEFINER, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')
ORDER BY TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`)
	if err != nil {
		return nil, fmt.Errorf("listing triggers: %w", err)
	}
	defer rows.Close()
	var out []Trigger
	for rows.Next() {
		var t Trigger
		if err := rows.Scan(&t.Schema, &t.Name, &t.Table, &t.Timing, &t.Event, &t.Order, &t.Body, &t.Definer, &t.SQLMode, &t.Charset, &t.Collation); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Names maps a target table to the source's name for it (routing renames
// reversed); ok is false for a table the channel does not replicate.
type Names func(schema, table string) (srcSchema, srcTable string, ok bool)

// Triggers is what a channel does with the triggers of its target.
type Triggers struct {
	db     *sql.DB
	prefix string
	// own: triggers only on the target when the channel started (an
	// operator's own), by Key; never guarded.
	own   map[string]bool
	state TriggerState
}

// State is what is in force now.
func (g *Triggers) State() TriggerState {
	return TriggerState{Guarded: slices.Clone(g.state.Guarded), Own: slices.Clone(g.state.Own)}
}

// TriggerState is what is in force on a target, for preflight and /status.
type TriggerState struct {
	Guarded []string `json:"guarded"` // schema.trigger: the source's, silent for pitcrew's writes
	Own     []string `json:"own"`     // only on the target: fire for pitcrew's writes too
}

// GuardTriggers guards every trigger of tgt that src has too (same schema
// and table as named there, name, timing, event and body), and every
// trigger already guarded; it leaves the others (the target's own) alone.
// prefix goes into each statement (the channel's origin marker, so a
// bidirectional peer drops it as an echo; see MarkDefinition).
func GuardTriggers(ctx context.Context, tgt, src *sql.DB, names Names, prefix string) (*Triggers, TriggerState, error) {
	g := &Triggers{db: tgt, prefix: prefix, own: map[string]bool{}}
	plan, state, err := Plan(ctx, tgt, src, names)
	if err != nil {
		return nil, state, err
	}
	for _, t := range plan.Own {
		g.own[t.Key()] = true
	}
	all, err := ListTriggers(ctx, tgt)
	if err != nil {
		return nil, state, err
	}
	for _, t := range plan.Guard {
		if err := replace(ctx, tgt, all, t, true, prefix); err != nil {
			return nil, state, err
		}
	}
	g.state = state
	return g, state, nil
}

// TriggerPlan is which triggers of a target a channel guards.
type TriggerPlan struct {
	Guard []Trigger // to guard now
	Kept  []Trigger // guarded already
	Own   []Trigger // the target's own: left alone
}

// Plan reads which triggers of tgt are the source's (guarded, or to be)
// and which are the target's own. It writes nothing (preflight runs it).
func Plan(ctx context.Context, tgt, src Queryer, names Names) (TriggerPlan, TriggerState, error) {
	var plan TriggerPlan
	var state TriggerState
	theirs, err := ListTriggers(ctx, tgt)
	if err != nil {
		return plan, state, fmt.Errorf("target: %w", err)
	}
	if len(theirs) == 0 {
		return plan, state, nil
	}
	ours, err := ListTriggers(ctx, src)
	if err != nil {
		return plan, state, fmt.Errorf("source: %w", err)
	}
	for _, t := range theirs {
		s, tbl, ok := names(t.Schema, t.Table)
		switch {
		case t.Guarded():
			plan.Kept = append(plan.Kept, t)
		case ok && slices.ContainsFunc(ours, func(o Trigger) bool {
			return strings.EqualFold(o.Schema, s) && t.same(Trigger{Name: o.Name, Table: tbl, Timing: o.Timing, Event: o.Event, Body: o.Body})
		}):
			plan.Guard = append(plan.Guard, t)
		default:
			plan.Own = append(plan.Own, t)
			state.Own = append(state.Own, t.Key())
			continue
		}
		state.Guarded = append(state.Guarded, t.Key())
	}
	return plan, state, nil
}

// AfterDDL guards the triggers a DDL from the stream created: every
// trigger of the target that is neither guarded nor the target's own.
// Cheap for other statements: it only looks when the text creates a
// trigger.
func (g *Triggers) AfterDDL(ctx context.Context, text string) error {
	if !CreatesTrigger(text) {
		return nil
	}
	all, err := ListTriggers(ctx, g.db)
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.Guarded() || g.own[t.Key()] {
			continue
		}
		if err := replace(ctx, g.db, all, t, true, g.prefix); err != nil {
			return err
		}
		g.state.Guarded = append(g.state.Guarded, t.Key())
	}
	return nil
}

// RestoreTriggers takes pitcrew's guard off every trigger of db, giving
// back each original definition; it returns the triggers restored.
func RestoreTriggers(ctx context.Context, db *sql.DB, prefix string) ([]string, error) {
	all, err := ListTriggers(ctx, db)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, t := range all {
		if !t.Guarded() {
			continue
		}
		if err := replace(ctx, db, all, t, false, prefix); err != nil {
			return done, err
		}
		done = append(done, t.Key())
	}
	return done, nil
}

// replace writes t again, guarded or not, in one CREATE OR REPLACE
// TRIGGER, in the session context it was created in (sql_mode, character
// sets, its schema as the default database), under its definer, after the
// trigger it followed (before the one it preceded, when first). The body is
// read again in that context, so its bytes are the server's own.
func replace(ctx context.Context, db *sql.DB, all []Trigger, t Trigger, guard bool, prefix string) error {
	for _, w := range []string{t.Charset, t.Collation, t.SQLMode} {
		if strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_,") != "" {
			return fmt.Errorf("trigger %s: unexpected session setting %q in information_schema.TRIGGERS", t.Key(), w)
		}
	}
	if guard {
		if err := needReplace(ctx, db); err != nil {
			return err
		}
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// The session's character set and sql_mode changed: never reuse it.
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		c.Close()
	}()
	setup := []string{
		"SET NAMES " + t.Charset + " COLLATE " + t.Collation,
		"SET SESSION sql_mode = '" + t.SQLMode + "'",
		"USE " + conn.QuoteName(t.Schema),
	}
	for _, s := range setup {
		if _, err := c.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("trigger %s: %s: %w", t.Key(), s, err)
		}
	}
	var body string
	if err := c.QueryRowContext(ctx, "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?", t.Schema, t.Name).Scan(&body); err != nil {
		return fmt.Errorf("trigger %s: reading its body: %w", t.Key(), err)
	}
	// The statement as the server keeps it: its names as first written
	// (s.t, `s`.`t` or t), the definer; the body at its end.
	var name, mode, original, cs, coll, dbColl string
	var created sql.NullString
	if err := c.QueryRowContext(ctx, "SHOW CREATE TRIGGER "+conn.QuoteName(t.Schema)+"."+conn.QuoteName(t.Name)).Scan(&name, &mode, &original, &cs, &coll, &dbColl, &created); err != nil {
		return fmt.Errorf("trigger %s: reading its definition: %w", t.Key(), err)
	}
	header, ok := strings.CutSuffix(original, body)
	if ok && len(header) > len("CREATE ") && strings.EqualFold(header[:len("CREATE ")], "CREATE ") {
		// Markers an earlier guard left in the head go: the original
		// comes back as it was.
		header = "CREATE OR REPLACE " + originRe.ReplaceAllString(header[len("CREATE "):], "")
	} else {
		header = "CREATE OR REPLACE"
		if user, host, ok := cutLast(t.Definer, "@"); ok {
			header += " DEFINER=" + conn.QuoteName(user) + "@" + conn.QuoteName(host)
		}
		header += " TRIGGER " + conn.QuoteName(t.Schema) + "." + conn.QuoteName(t.Name) + " " + t.Timing + " " + t.Event +
			" ON " + conn.QuoteName(t.Table) + " FOR EACH ROW "
	}
	body, _ = Unguard(body)
	if guard {
		body = Guard(body)
	}
	// Its place among the table's triggers of the same timing and event
	// (the server keeps the order, not the clause).
	q := header
	if !strings.HasSuffix(q, " ") {
		q += " "
	}
	for _, o := range all {
		if o.Schema == t.Schema && o.Table == t.Table && o.Timing == t.Timing && o.Event == t.Event {
			switch {
			case o.Order == t.Order-1:
				q += "FOLLOWS " + conn.QuoteName(o.Name) + " "
			case t.Order == 1 && o.Order == 2:
				q += "PRECEDES " + conn.QuoteName(o.Name) + " "
			}
		}
	}
	if _, err := c.ExecContext(ctx, MarkDefinition(q, prefix)+body); err != nil {
		fix := ""
		switch conn.Code(err) {
		case 1142, 1227, 1044:
			fix = ": grant the target user TRIGGER on the schema (and SUPER, or SET USER on MariaDB 10.5+, for a trigger another user defined)"
		}
		return fmt.Errorf("trigger %s: %w%s", t.Key(), err, fix)
	}
	return nil
}

// needReplace refuses a server without CREATE OR REPLACE TRIGGER (MySQL),
// where a trigger could only be swapped by a DROP and a CREATE that let
// writes in between miss it.
func needReplace(ctx context.Context, db *sql.DB) error {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return err
	}
	if !strings.Contains(strings.ToLower(version), "mariadb") {
		return fmt.Errorf("the target (%s) is not MariaDB: pitcrew cannot guard the source's triggers there in one statement (no CREATE OR REPLACE TRIGGER), and they would fire again for every replicated row; drop them on the target for the migration and create them again at the switch-over", version)
	}
	return nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// account is a definer's user or host as written: quoted or bare.
const account = "(?:`(?:[^`]|``)*`|\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'|[^\\s@`'\"]+)"

// definitionRe: the head of a CREATE TRIGGER or CREATE EVENT, up to its
// keyword. The server logs these statements rebuilt from the keyword on
// (a DEFINER added, a leading comment gone).
var definitionRe = regexp.MustCompile(`(?is)^(\s*(?:/\*.*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|` +
	account + `\s*@\s*` + account + `|` + account + `)\s+)?(?:TRIGGER|EVENT)\s+)`)

// originRe is a channel's origin marker (conflict.OriginMarker).
var originRe = regexp.MustCompile(`/\* pitcrew origin=[A-Za-z0-9_-]+ \*/ ?`)

// MarkDefinition puts marker (a channel's origin marker) right after the
// TRIGGER or EVENT keyword of a CREATE TRIGGER or CREATE EVENT, where the
// server's binlog keeps it, so the other direction of a bidirectional pair
// knows the statement for an echo; other statements are returned as they
// are.
func MarkDefinition(text, marker string) string {
	if marker == "" {
		return text
	}
	m := definitionRe.FindStringIndex(text)
	if m == nil {
		return text
	}
	return text[:m[1]] + strings.TrimSpace(marker) + " " + text[m[1]:]
}

// CreatesTrigger reports whether a statement creates a trigger.
func CreatesTrigger(text string) bool { return createTriggerRe.MatchString(text) }

// createTriggerRe: a statement that creates a trigger.
var createTriggerRe = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\b`)
