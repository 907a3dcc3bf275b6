package stored

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Event statuses as information_schema.EVENTS shows them.
const (
	EventEnabled      = "ENABLED"
	EventDisabled     = "DISABLED"
	EventReplicaSide  = "SLAVESIDE_DISABLED" // DISABLE ON SLAVE: the primary's event, parked on a replica
	disableOnReplica  = " DISABLE ON SLAVE"
	enableEventClause = " ENABLE"
	noSuchEvent       = 1539 // ER_EVENT_DOES_NOT_EXIST
)

// Event is one event as information_schema.EVENTS shows it.
type Event struct {
	Schema, Name, Status string
}

// Key names the event: schema.name.
func (e Event) Key() string { return e.Schema + "." + e.Name }

// ListEvents reads every event outside the system schemas.
func ListEvents(ctx context.Context, db Queryer) ([]Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT EVENT_SCHEMA, EVENT_NAME, STATUS FROM information_schema.EVENTS
WHERE EVENT_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema') ORDER BY EVENT_SCHEMA, EVENT_NAME`)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Schema, &e.Name, &e.Status); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Events is what a channel does with the events of its target: the
// source's are parked (SLAVESIDE_DISABLED) as a native replica parks them,
// so they run on the primary only; the target's own are left alone.
type Events struct {
	db     *sql.DB
	prefix string
	own    map[string]bool // events only on the target when the channel started, by Key
}

// EventState is what is in force on a target, for preflight and /status.
type EventState struct {
	Parked []string `json:"parked"` // the source's: SLAVESIDE_DISABLED here, run on the primary
	Own    []string `json:"own"`    // only on the target: left as they are (enabled ones run here)
}

// DisableEvents parks every event of tgt that src has too (the same name
// in the schema of that name there; schema maps a target schema to the
// source's, false when not replicated): an ENABLED one becomes
// SLAVESIDE_DISABLED. prefix is prepended to each statement.
func DisableEvents(ctx context.Context, tgt, src *sql.DB, schema func(string) (string, bool), prefix string) (*Events, EventState, error) {
	e := &Events{db: tgt, prefix: prefix, own: map[string]bool{}}
	plan, state, err := PlanEvents(ctx, tgt, src, schema)
	if err != nil {
		return nil, state, err
	}
	for _, ev := range plan.Own {
		e.own[ev.Key()] = true
	}
	for _, ev := range plan.Park {
		if err := alterEvent(ctx, tgt, ev.Schema, ev.Name, disableOnReplica, prefix); err != nil {
			return nil, state, err
		}
	}
	return e, state, nil
}

// EventPlan is which events of a target a channel parks.
type EventPlan struct {
	Park []Event // the source's, enabled here: to park now
	Own  []Event // only on the target
}

// PlanEvents reads which events of tgt are the source's and which are
// the target's own. It writes nothing (preflight runs it).
func PlanEvents(ctx context.Context, tgt, src Queryer, schema func(string) (string, bool)) (EventPlan, EventState, error) {
	var plan EventPlan
	var state EventState
	theirs, err := ListEvents(ctx, tgt)
	if err != nil || len(theirs) == 0 {
		return plan, state, err
	}
	ours, err := ListEvents(ctx, src)
	if err != nil {
		return plan, state, fmt.Errorf("source: %w", err)
	}
	on := map[string]bool{}
	for _, o := range ours {
		on[strings.ToLower(o.Key())] = true
	}
	for _, t := range theirs {
		s, ok := schema(t.Schema)
		if !ok || !on[strings.ToLower(s+"."+t.Name)] {
			plan.Own = append(plan.Own, t)
			state.Own = append(state.Own, t.Key())
			continue
		}
		if t.Status == EventEnabled {
			plan.Park = append(plan.Park, t)
		}
		state.Parked = append(state.Parked, t.Key())
	}
	return plan, state, nil
}

// AfterDDL parks the events a CREATE EVENT or ALTER EVENT from the stream
// (run with defaultSchema) named, as a native replica does: whatever
// their status on the source, they are SLAVESIDE_DISABLED here. Any other
// event of the source's found enabled is parked too (a statement whose
// names were not read).
func (e *Events) AfterDDL(ctx context.Context, defaultSchema, text string) error {
	m := eventRe.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	names := []string{m[1]}
	if r := renameRe.FindStringSubmatch(text[len(m[0]):]); r != nil {
		names = append(names, r[1])
	}
	named := map[string]bool{}
	for _, n := range names {
		s, name := splitName(defaultSchema, n)
		named[s+"."+name] = true
	}
	all, err := ListEvents(ctx, e.db)
	if err != nil {
		return err
	}
	for _, ev := range all {
		if ev.Status == EventReplicaSide || e.own[ev.Key()] {
			continue
		}
		if named[ev.Key()] || ev.Status == EventEnabled {
			if err := alterEvent(ctx, e.db, ev.Schema, ev.Name, disableOnReplica, e.prefix); err != nil {
				return err
			}
		}
	}
	return nil
}

// SwitchEvents moves the events to primary, for a cut-over: every event
// ENABLED on other is parked there (SLAVESIDE_DISABLED) and enabled on
// primary (where it is parked, as pitcrew left it); an event parked on
// both sides (each channel of a pair parks the other side's) is enabled
// on primary. Events DISABLED on other stay as they are on both sides; so
// do events on one side only.
// prefix is prepended to each statement (the origin marker of the channel
// that applies to that server, so a channel running between the two
// drops it as an echo). It returns the events moved.
func SwitchEvents(ctx context.Context, primary, other *sql.DB, prefix string) ([]string, error) {
	from, err := ListEvents(ctx, other)
	if err != nil {
		return nil, fmt.Errorf("the old primary: %w", err)
	}
	to, err := ListEvents(ctx, primary)
	if err != nil {
		return nil, fmt.Errorf("the new primary: %w", err)
	}
	status := map[string]string{}
	for _, ev := range to {
		status[ev.Key()] = ev.Status
	}
	var moved []string
	for _, ev := range from {
		st, ok := status[ev.Key()]
		// An event the application runs: enabled on the old primary, or
		// parked there too (a reverse channel parks the events of its
		// target, the old primary, when it starts). DISABLED is the
		// operator's choice and stays.
		if !ok || ev.Status == EventDisabled || ev.Status == EventReplicaSide && st != EventReplicaSide {
			continue
		}
		// Parked on the old side first: at no moment does it run on both.
		if ev.Status == EventEnabled {
			if err := alterEvent(ctx, other, ev.Schema, ev.Name, disableOnReplica, prefix); err != nil {
				return moved, fmt.Errorf("the old primary: %w", err)
			}
		}
		if st != EventEnabled {
			if err := alterEvent(ctx, primary, ev.Schema, ev.Name, enableEventClause, prefix); err != nil {
				return moved, fmt.Errorf("the new primary: %w", err)
			}
		}
		moved = append(moved, ev.Key())
	}
	return moved, nil
}

// alterEvent runs ALTER EVENT in the event's own creation context: ALTER
// EVENT records the session's sql_mode and character sets as the event's,
// so run in pitcrew's session (binary names, a permissive sql_mode) it
// would change how the event's body runs.
func alterEvent(ctx context.Context, db *sql.DB, schema, name, clause, prefix string) error {
	q := prefix + "ALTER EVENT " + conn.QuoteName(schema) + "." + conn.QuoteName(name) + clause
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Raw(func(any) error { return driver.ErrBadConn }); c.Close() }()
	var mode, cs, coll string
	err = c.QueryRowContext(ctx, "SELECT SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = ?", schema, name).Scan(&mode, &cs, &coll)
	if err == nil {
		_, err = c.ExecContext(ctx, "SET SESSION sql_mode = ?, character_set_client = ?, collation_connection = ?", mode, cs, coll)
	} else if err == sql.ErrNoRows {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("event %s.%s: reading its creation context: %w", schema, name, err)
	}
	if _, err := c.ExecContext(ctx, q); err != nil && conn.Code(err) != noSuchEvent {
		fix := ""
		switch conn.Code(err) {
		case 1044, 1142, 1227:
			fix = ": grant the user EVENT on the schema"
		}
		return fmt.Errorf("event %s.%s: %s: %w%s", schema, name, strings.TrimSpace(clause), err, fix)
	}
	return nil
}

// ident is one identifier as written: backquoted or bare.
const ident = "(?:`(?:[^`]|``)*`|[\\w$]+)"

// eventRe names the event a CREATE or ALTER EVENT defines; renameRe the
// name an ALTER EVENT ... RENAME TO gives it.
var (
	eventRe = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*(?:CREATE|ALTER)\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?EVENT\s+(?:IF\s+NOT\s+EXISTS\s+)?(` +
		ident + `(?:\s*\.\s*` + ident + `)?)`)
	renameRe = regexp.MustCompile(`(?is)\bRENAME\s+TO\s+(` + ident + `(?:\s*\.\s*` + ident + `)?)`)
	identRe  = regexp.MustCompile(ident)
)

// splitName reads schema.name (or name, in defaultSchema) as written.
func splitName(defaultSchema, s string) (string, string) {
	parts := identRe.FindAllString(s, 2)
	unq := func(p string) string {
		if strings.HasPrefix(p, "`") {
			return strings.ReplaceAll(p[1:len(p)-1], "``", "`")
		}
		return p
	}
	if len(parts) == 2 {
		return unq(parts[0]), unq(parts[1])
	}
	return defaultSchema, unq(parts[0])
}
