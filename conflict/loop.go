package conflict

import (
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/txn"
)

// OriginMarker is prepended to every DDL a channel applies, so the DDL can
// be recognised on the other side.
func OriginMarker(channel string) string { return "/* pitcrew origin=" + channel + " */ " }

var originRe = regexp.MustCompile(`/\* pitcrew origin=([A-Za-z0-9_-]+) \*/`)

// Loop drops echoes and pitcrew's own bookkeeping from a stream.
type Loop struct {
	ProgressSchema string // our schema on every node (default _pitcrew)
	ProgressTable  string
	Echo           map[string]bool // channels whose applied transactions are echoes here
}

// NewLoop returns the filter for a channel.
func NewLoop(progressSchema, progressTable string, echo []string) *Loop {
	l := &Loop{ProgressSchema: progressSchema, ProgressTable: progressTable, Echo: map[string]bool{}}
	for _, e := range echo {
		l.Echo[e] = true
	}
	return l
}

// Echoing reports whether any channel's transactions are recognised as
// echoes (a transaction can then be dropped whole by its last event).
func (l *Loop) Echoing() bool { return len(l.Echo) > 0 }

// Filter removes, in place, the events on our own schema (another
// channel's progress rows and ledger must never be applied here), and
// empties the transaction when it is an echo. The transaction keeps its
// GTID: the position still moves past it. It reports whether t was an echo.
func (l *Loop) Filter(t *txn.Txn) bool {
	echo := false
	kept := t.Events[:0]
	for _, e := range t.Events {
		switch {
		case e.Rows != nil && strings.EqualFold(e.Rows.Table.Schema, l.ProgressSchema):
			// The channel's progress row, or one of its lanes' rows.
			if (strings.EqualFold(e.Rows.Table.Name, l.ProgressTable) || strings.EqualFold(e.Rows.Table.Name, checkpoint.LanesTable(l.ProgressTable))) && l.marksEcho(e.Rows) {
				echo = true
			}
			continue
		case e.Query != nil && strings.Contains(e.Query.Text, strings.TrimSpace(checkpoint.InternalMarker)):
			continue
		case e.Query != nil:
			if m := originRe.FindStringSubmatch(e.Query.Text); m != nil && l.Echo[m[1]] {
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
func (l *Loop) marksEcho(rc *txn.RowChange) bool {
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
			if l.Echo[name] {
				return true
			}
		}
	}
	return false
}
