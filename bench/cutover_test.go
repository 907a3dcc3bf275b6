package bench

import (
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/infra"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// The cut-over bench in its short form, each fence through a whole local
// cut-over with the application writing: the default order (fence, drain,
// release) loses no acknowledged insert or update and fails no write
// (the application retries within the stall), every acknowledged write is
// on the new database exactly once, the nodes are equal after take-down;
// with lock_users and a rollback, the same holds on the old database.
func TestCutoverBenchShort(t *testing.T) {
	testenv.Require(t)
	for _, tc := range []struct {
		name     string
		fence    string
		rollback bool
	}{
		{"read_only", infra.FenceReadOnly, false},
		{"lock_users with rollback", infra.FenceLockUsers, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Cutover(t.Context(), CutoverConfig{Runs: 1, Fence: tc.fence, Rollback: tc.rollback, Rate: 600,
				Before: 700 * time.Millisecond, After: 700 * time.Millisecond, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			t.Log(r.Line())
			if r.Note != "" {
				t.Fatal(r.Note)
			}
			if r.LostInserts != 0 || r.LostUpdates != 0 || r.Failed != 0 || !r.ExactlyOnce || r.Duplicates != 0 {
				t.Errorf("lost %d inserts %d updates, %d failed, %d duplicates, exactly once %v", r.LostInserts, r.LostUpdates, r.Failed, r.Duplicates, r.ExactlyOnce)
			}
			if !tc.rollback && !r.NodesEqual {
				t.Error("the nodes differ after take-down")
			}
			if r.InsertsAcked == 0 || r.UpdatesAcked == 0 || len(r.Switches) == 0 {
				t.Errorf("the application wrote %d inserts, %d updates, moved %d times", r.InsertsAcked, r.UpdatesAcked, len(r.Switches))
			}
			if r.BothWritableMS > 0 || r.ConflictCount() != 0 {
				t.Errorf("fence-first: both sides written %.1f ms, %d conflicts", r.BothWritableMS, r.ConflictCount())
			}
			if r.DrainMS <= 0 || r.JournalStallMS < r.DrainMS {
				t.Errorf("the journal's sub-steps: drain %.1f ms, stall %.1f ms", r.DrainMS, r.JournalStallMS)
			}
			if tc.fence == infra.FenceLockUsers && r.Errors["error 4151"]+r.Errors["connection lost"] == 0 {
				t.Errorf("lock_users: no write saw the fence (%v)", r.Errors)
			}
		})
	}
}
