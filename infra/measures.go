package infra

import (
	"fmt"
	"strings"
	"time"
)

// CutoverTimes are the cut-over's sub-steps as the journal recorded them
// (step outputs at_guardrails, at_fence, source_fenced, at_drained,
// at_move, app_moved). A zero time: the sub-step did not happen (yet).
type CutoverTimes struct {
	Guardrails, Fence, Fenced, Drained, Move, Moved time.Time
	LagAtFence                                      string // transactions (and seconds) forward was behind when the fence was up
	Conflicts                                       string // ledger entries on both nodes since the cut-over began
}

// ReadCutoverTimes reads the cut-over step's outputs.
func ReadCutoverTimes(out map[string]string) CutoverTimes {
	at := func(k string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, out[k])
		return t
	}
	return CutoverTimes{Guardrails: at("at_guardrails"), Fence: at("at_fence"), Fenced: at("source_fenced"),
		Drained: at("at_drained"), Move: at("at_move"), Moved: at("app_moved"), LagAtFence: out["lag_at_fence"], Conflicts: out["conflicts"]}
}

func span(a, b time.Time) (time.Duration, bool) {
	if a.IsZero() || b.IsZero() {
		return 0, false
	}
	return b.Sub(a), true
}

// Stall is how long the application could not write: from the fence to
// its release to the target (fence-first); 0 with both-writable, where it
// moved before the fence.
func (c CutoverTimes) Stall() (time.Duration, bool) {
	if !c.Move.IsZero() && !c.Fence.IsZero() && c.Move.Before(c.Fence) {
		return 0, true
	}
	return span(c.Fence, c.Moved)
}

// BothWritable is how long both sides took the application's writes:
// from the start of its move to the fence being up.
func (c CutoverTimes) BothWritable() (time.Duration, bool) {
	d, ok := span(c.Move, c.Fenced)
	return max(d, 0), ok
}

// String is the summary `pitcrew migrate status` prints.
func (c CutoverTimes) String() string {
	var parts []string
	add := func(name string, a, b time.Time, extra string) {
		if d, ok := span(a, b); ok {
			parts = append(parts, name+" "+ms(d)+extra)
		}
	}
	guardEnd := c.Fence
	if !c.Move.IsZero() && (guardEnd.IsZero() || c.Move.Before(guardEnd)) {
		guardEnd = c.Move
	}
	add("guardrails", c.Guardrails, guardEnd, "")
	lag := ""
	if c.LagAtFence != "" {
		lag = " (forward " + c.LagAtFence + " behind)"
	}
	add("fence", c.Fence, c.Fenced, lag)
	add("drain", c.Fenced, c.Drained, "")
	add("release", c.Move, c.Moved, "")
	if d, ok := c.Stall(); ok {
		parts = append(parts, "application stalled "+ms(d))
	}
	if d, ok := c.BothWritable(); ok {
		parts = append(parts, "both writable "+ms(d))
	}
	if c.Conflicts != "" {
		parts = append(parts, "conflicts "+c.Conflicts)
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}
