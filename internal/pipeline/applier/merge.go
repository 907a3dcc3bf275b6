package applier

import (
	"fmt"
	"slices"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Merge is the exact applied set that the channel's progress row (w) and
// its lane rows record: the highest watermark, extended by every batch
// that continues it, and the batches still beyond it.
func Merge(flavor string, w gtid.Set, rows []checkpoint.LaneRow) (gtid.Set, []Span, error) {
	var spans []Span
	for _, r := range rows {
		if r.Flavor != flavor {
			return gtid.Set{}, nil, fmt.Errorf("lane %d's row on the target was recorded for a %s source, but the source is %s: use another channel name for a different source", r.Lane, r.Flavor, flavor)
		}
		lw, err := parseLane(flavor, r.Lane, r.Watermark)
		if err != nil {
			return gtid.Set{}, nil, err
		}
		if !w.Contains(lw) {
			w = lw // watermarks are prefixes of one stream
		}
		done, err := spansOf(flavor, r)
		if err != nil {
			return gtid.Set{}, nil, err
		}
		spans = append(spans, done...)
	}
	for moved := true; moved; {
		moved = false
		for _, s := range spans {
			if !w.Contains(s.After) && w.Contains(s.Before) {
				w, moved = s.After, true
			}
		}
	}
	var beyond []Span
	for _, s := range spans {
		if !w.Contains(s.After) && !slices.ContainsFunc(beyond, func(o Span) bool { return o.After.Equal(s.After) && o.Before.Equal(s.Before) }) {
			beyond = append(beyond, s)
		}
	}
	return w, beyond, nil
}

// spansOf parses the batches a lane row records.
func spansOf(flavor string, r checkpoint.LaneRow) ([]Span, error) {
	var spans []Span
	for _, d := range r.Done {
		b, err := parseLane(flavor, r.Lane, d.Before)
		if err != nil {
			return nil, err
		}
		a, err := parseLane(flavor, r.Lane, d.After)
		if err != nil {
			return nil, err
		}
		spans = append(spans, Span{b, a})
	}
	return spans, nil
}

func parseLane(flavor string, lane int, s string) (gtid.Set, error) {
	set, err := gtid.Parse(flavor, s)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("lane %d's row on the target: %w", lane, err)
	}
	return set, nil
}
