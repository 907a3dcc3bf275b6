package infra

import (
	"os"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// The console's view of a migration that has not run: every step, the
// AWS ones skipped with the reason for a server move; rollback possible;
// Confirm writes the file the waiting run looks for.
func TestViewBeforeAnyRun(t *testing.T) {
	p := &Plan{Name: "view-move", DataDir: t.TempDir(),
		Source: Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: 1}},
		Target: Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: 2}}}
	p.Default()
	rn := &Runner{Plan: p, Now: time.Now}
	v, err := rn.View(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "view-move" || len(v.Steps) != len(steps) || !v.CanRollback || v.Running != "" {
		t.Fatalf("view: %+v", v)
	}
	by := map[string]string{}
	for _, s := range v.Steps {
		by[s.ID] = s.State
	}
	if by["share-key"] != checkpoint.StepSkipped || by["forward"] != checkpoint.StepPending {
		t.Errorf("states: %v", by)
	}
	if err := rn.Confirm(t.Context(), "cutover"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ConfirmFile(p, "cutover")); err != nil {
		t.Errorf("no confirm file: %v", err)
	}
	if err := rn.Confirm(t.Context(), "later"); err == nil {
		t.Error("a confirm of an unknown phase was accepted")
	}
	if got := sessionCount([]string{"app (3)", "report (2)"}); got != 5 {
		t.Errorf("sessionCount: %d", got)
	}
}
