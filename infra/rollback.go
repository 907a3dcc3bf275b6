package infra

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

// ErrTooLate is returned by Rollback once take-down has begun.
var ErrTooLate = errors.New("take-down has begun: the old side is being removed and cannot take the application back")

// RollbackPreview lists what Rollback would do now, from the journal.
func (rn *Runner) RollbackPreview() ([]Action, error) {
	st, err := rn.Status()
	if err != nil {
		return nil, err
	}
	by := map[string]checkpoint.Step{}
	for _, s := range st {
		by[s.ID] = s.Step
	}
	if by["take-down"].Attempts > 0 {
		return nil, ErrTooLate
	}
	var a []Action
	if by["dns"].Attempts > 0 {
		a = append(a, Action{dnsWhere(rn.Plan), fmt.Sprintf("route53:ChangeResourceRecordSets UPSERT %s weight 100, %s weight 0; wait INSYNC", setOld, setNew)})
	}
	cut := by["cutover"].Outputs
	switch {
	case cut["app_moved"] != "":
		move := "wait for 'pitcrew migrate confirm --rollback'"
		if rn.Plan.Options.Hook != "" {
			move = "run hook: " + rn.Plan.Options.Hook + " rollback"
		}
		a = append(a,
			Action{"target database", fenceSQL(rn.Plan, "target", true)},
			Action{"pitcrew", reverse + " drained to the target's executed GTID set, then stopped"},
			Action{"source database", fenceSQL(rn.Plan, "source", false)},
			Action{"pitcrew", move + " (the source holds every write the target acknowledged)"},
			Action{"target database", fenceSQL(rn.Plan, "target", false) + " (the forward channel, restarted by resume, keeps it current; the application must not write there)"})
	case cut["at_fence"] != "":
		a = append(a,
			Action{"source database", fenceSQL(rn.Plan, "source", false) + " (the application never left the source)"},
			Action{"pitcrew", "stop " + reverse})
	case by["cutover"].Attempts > 0:
		a = append(a, Action{"pitcrew", "stop " + reverse + "; the application never left the source"})
	}
	if len(a) == 0 {
		a = append(a, Action{"pitcrew", "nothing to roll back: the application still writes to the source; AWS resources made so far stay (take-down or the console removes them)"})
	}
	return a, nil
}

// Rollback moves the application back to the source from any step before
// take-down: DNS back, writes back (target fenced, reverse drained,
// source unfenced), roles reversed. The cut-over and DNS steps return to
// pending, so a later apply repeats them.
func (rn *Runner) Rollback(ctx context.Context) error {
	rn.defaults()
	if _, err := rn.RollbackPreview(); err != nil {
		return err
	}
	r, err := rn.start(ctx, true)
	if err != nil {
		return err
	}
	defer r.close()
	p := rn.Plan
	dns, err := r.j.step("dns")
	if err != nil {
		return err
	}
	cut, err := r.j.step("cutover")
	if err != nil {
		return err
	}
	if dns.Attempts > 0 && p.DNS != nil {
		if err := r.cloudStep().dnsBack(ctx); err != nil {
			return err
		}
	}
	switch {
	case cut.Outputs["app_moved"] != "":
		r.j.cur = &cut
		err := r.rollbackStep().writesBack(ctx)
		r.j.cur = nil
		if err != nil {
			return err
		}
	case cut.Outputs["at_fence"] != "":
		// Fenced, not yet released: the application waits for the source.
		sdb, _, err := r.db.open(ctx, "source")
		if err != nil {
			return err
		}
		err = r.fence.fence(ctx, "source", sdb, false)
		sdb.Close()
		if err != nil {
			return fmt.Errorf("unfencing the source: %w", err)
		}
		r.op.say("source takes writes again")
	}
	r.chans.stop(reverse)
	now := time.Now().UTC().Format(time.RFC3339)
	for _, id := range []string{"cutover", "dns"} {
		if err := r.j.store.SetStep(p.Name, checkpoint.Step{ID: id, State: checkpoint.StepPending, Note: "rolled back " + now}); err != nil {
			return err
		}
	}
	fmt.Fprintf(rn.Out, "rolled back: the application writes to the source again; 'pitcrew migrate resume' restarts %s and repeats the cut-over when you are ready\n", forward)
	return nil
}

// writesBack fences the target, drains the reverse channel to the
// target's exact position, unfences the source, and only then moves the
// application back: the order of the cut-over, mirrored.
func (r rollbackStep) writesBack(ctx context.Context) error {
	if err := r.chans.start(reverse); err != nil {
		return err
	}
	tdb, flavor, err := r.open(ctx, "target")
	if err != nil {
		return err
	}
	defer tdb.Close()
	sdb, _, err := r.open(ctx, "source")
	if err != nil {
		return err
	}
	defer sdb.Close()
	// Caught up first (a resumed channel may still be connecting): behind
	// the fence the application then waits only for the last commits.
	if now, err := binlog.Executed(ctx, tdb, flavor); err != nil {
		return err
	} else if err := r.chans.awaitApplied(ctx, reverse, now); err != nil {
		return err
	}
	if err := r.fence(ctx, "target", tdb, true); err != nil {
		return fmt.Errorf("fencing the target: %w", err)
	}
	r.say("target fenced (%s)", r.p.Options.Fence)
	goal, err := binlog.Executed(ctx, tdb, flavor)
	if err != nil {
		return err
	}
	if err := r.chans.waitApplied(ctx, reverse, goal); err != nil {
		return err
	}
	if err := r.fence(ctx, "source", sdb, false); err != nil {
		return fmt.Errorf("unfencing the source: %w", err)
	}
	r.say("source takes writes again")
	if err := r.moveApplication(ctx, "rollback"); err != nil {
		return err
	}
	if _, err := switchEvents(ctx, r.sides, r.operator, "source", "target"); err != nil {
		return err
	}
	if err := r.fence(ctx, "target", tdb, false); err != nil {
		return fmt.Errorf("unfencing the target for the forward channel: %w", err)
	}
	return nil
}
