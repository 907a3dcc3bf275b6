package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// `pitcrew bench all --smoke`: every comparison runs end to end on tiny
// sizes, every contender's copy is checked, and the report renders. The
// numbers come from full-size runs, not from here.
func TestAllSmoke(t *testing.T) {
	testenv.Require(t)
	var log bytes.Buffer
	rep, err := All(context.Background(), AllConfig{Smoke: true, Dir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	workloads := map[string]bool{}
	for _, c := range rep.Catchup {
		workloads[c.Workload] = true
		if !c.Equal || c.TxnsPerS <= 0 {
			t.Errorf("catch-up %s %s: %+v", c.Workload, c.Contender, c)
		}
	}
	if len(workloads) != 4 {
		t.Errorf("catch-up workloads %v, want write_only, write_only durable, insert_only, update_index", workloads)
	}
	for _, l := range rep.Lag {
		if l.Samples == 0 || l.P50 <= 0 {
			t.Errorf("lag %s: %+v", l.Contender, l)
		}
	}
	for _, m := range rep.Memory {
		if !m.Equal || m.PeakRSS <= 0 {
			t.Errorf("memory: %+v", m)
		}
	}
	for _, d := range rep.Decode {
		if d.Note != "" || d.MBPerS <= 0 {
			t.Errorf("decode %s: %+v", d.Contender, d)
		}
	}
	var html, table bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	rep.WriteTable(&table)
	if strings.Count(html.String(), "<svg") < 5 || !strings.Contains(table.String(), "vs native single") {
		t.Errorf("report: %d charts; table:\n%s", strings.Count(html.String(), "<svg"), table.String())
	}
}
