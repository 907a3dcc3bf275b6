package conflict

import (
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// OriginMarker is prepended to every DDL a channel applies, so the DDL can
// be recognised on the other side.
func OriginMarker(channel string) string { return "/* pitcrew origin=" + channel + " */ " }

var originRe = regexp.MustCompile(`/\* pitcrew origin=([A-Za-z0-9_-]+) \*/`)

// EchoFilter drops echoes (in bidirectional mode, what this channel's
// source got from the channel the other way) and pitcrew's own bookkeeping
// from a stream.
type EchoFilter struct {
	ProgressSchema string // our schema on every node (default _pitcrew)
	ProgressTable  string
	Echo           map[string]bool // channels whose applied transactions are echoes here
	// Fenced are users whose account locks stay on the side that ran them
	// (a migration's fence): ALTER USER naming only their accounts with
	// nothing but ACCOUNT LOCK or UNLOCK is dropped. The fence's own
	// statements carry checkpoint.InternalMarker as well, but MySQL logs
	// account statements rewritten, without comments.
	Fenced map[string]bool
}

// Fence sets the users whose account locks are dropped; it returns f.
func (f *EchoFilter) Fence(users []string) *EchoFilter {
	for _, u := range users {
		if f.Fenced == nil {
			f.Fenced = map[string]bool{}
		}
		f.Fenced[u] = true
	}
	return f
}

var (
	lockRe    = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*ALTER\s+USER\s+(?:IF\s+EXISTS\s+)?(.+?)\s+ACCOUNT\s+(?:UN)?LOCK\s*;?\s*$`)
	accountRe = regexp.MustCompile(`^\s*(?:'((?:[^'\\]|\\.|'')*)'|"((?:[^"\\]|\\.|"")*)"|` + "`((?:[^`]|``)*)`" + `|([A-Za-z0-9_$.-]+))\s*(?:@\s*\S+)?\s*$`)
)

// fenceStatement reports whether q only locks or unlocks fenced accounts.
func (f *EchoFilter) fenceStatement(q string) bool {
	if len(f.Fenced) == 0 {
		return false
	}
	m := lockRe.FindStringSubmatch(q)
	if m == nil {
		return false
	}
	for _, a := range strings.Split(m[1], ",") {
		u := accountRe.FindStringSubmatch(a)
		if u == nil {
			return false
		}
		name := u[1] + u[2] + u[3] + u[4]
		name = strings.NewReplacer(`''`, `'`, `""`, `"`, "``", "`", `\'`, `'`, `\\`, `\`).Replace(name)
		if !f.Fenced[name] {
			return false
		}
	}
	return true
}

// NewEchoFilter returns the filter for a channel.
func NewEchoFilter(progressSchema, progressTable string, echo []string) *EchoFilter {
	f := &EchoFilter{ProgressSchema: progressSchema, ProgressTable: progressTable, Echo: map[string]bool{}}
	for _, e := range echo {
		f.Echo[e] = true
	}
	return f
}

// Echoing reports whether any channel's transactions are recognised as
// echoes (a transaction can then be dropped whole by its last event).
func (f *EchoFilter) Echoing() bool { return len(f.Echo) > 0 }

// Filter removes, in place, the events on our own schema (another
// channel's progress rows and ledger must never be applied here), and
// empties the transaction when it is an echo. The transaction keeps its
// GTID: the position still moves past it. It reports whether t was an echo.
func (f *EchoFilter) Filter(t *txn.Txn) bool {
	echo := false
	kept := t.Events[:0]
	for _, e := range t.Events {
		switch {
		case e.Rows != nil && strings.EqualFold(e.Rows.Table.Schema, f.ProgressSchema):
			// The channel's progress row, or one of its lanes' rows.
			if (strings.EqualFold(e.Rows.Table.Name, f.ProgressTable) || strings.EqualFold(e.Rows.Table.Name, checkpoint.LanesTable(f.ProgressTable))) && f.marksEcho(e.Rows) {
				echo = true
			}
			continue
		case e.Query != nil && strings.Contains(e.Query.Text, strings.TrimSpace(checkpoint.InternalMarker)):
			continue
		case e.Query != nil && f.fenceStatement(e.Query.Text):
			continue
		case e.Query != nil:
			if m := originRe.FindStringSubmatch(e.Query.Text); m != nil && f.Echo[m[1]] {
				echo = true
			}
		}
		kept = append(kept, e)
	}
	t.Events = kept
	if echo {
		t.Events, t.Echo = nil, true
	}
	return echo
}

// marksEcho reports whether a progress-row change names an echo channel.
// The channel is the table's first column (checkpoint.Progress).
func (f *EchoFilter) marksEcho(rc *txn.RowChange) bool {
	col := 0
	for i, name := range rc.Table.Columns {
		if strings.EqualFold(name, "channel") {
			col = i
		}
	}
	for _, row := range rc.Rows {
		if col < len(row) {
			var name string
			switch v := row[col].(type) {
			case string:
				name = v
			case []byte:
				name = string(v)
			}
			if f.Echo[name] {
				return true
			}
		}
	}
	return false
}
