package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/infra"
)

// Rollback moves applications back to their sources (only: one of them;
// empty: all, the last wave first): each database's runbook rolls back
// ('pitcrew migrate rollback': target fenced, reverse drained), the
// application's hook runs 'rollback' once all of them are ready for it,
// the runbooks unfence their sources. A later apply cuts them over again.
func (r *Runner) Rollback(ctx context.Context, only string) error {
	if err := r.defaults(); err != nil {
		return err
	}
	f := r.Fleet
	if only != "" && f.app(only) == nil {
		return fmt.Errorf("--application %s is not in the fleet", only)
	}
	if err := r.openJournal(); err != nil {
		return err
	}
	defer r.store.Close()
	waves, err := f.Waves()
	if err != nil {
		return err
	}
	var apps []string
	for i := len(waves) - 1; i >= 0; i-- {
		for _, a := range waves[i].Applications {
			if only == "" || a == only {
				apps = append(apps, a)
			}
		}
	}
	for _, name := range apps {
		if err := r.rollbackApp(ctx, f.app(name)); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) rollbackApp(ctx context.Context, a *Application) error {
	cut, err := r.store.Step(r.Fleet.Name, "app:"+a.Name+":cutover")
	if err != nil {
		return err
	}
	dbs, err := r.rollbackDBs(a)
	if err != nil {
		return err
	}
	if len(dbs) == 0 && cut.State != checkpoint.StepDone {
		r.say("application %s: nothing to roll back (it never began to cut over)", a.Name)
		return nil
	}
	r.say("application %s: rolling back %s", a.Name, strings.Join(a.Databases, ", "))
	defer stopRunbooks(dbs)
	for _, x := range dbs {
		if x.rb, err = r.launch(ctx, x.d, "rollback", ""); err != nil {
			return fmt.Errorf("database %s: %w", x.d.Name, err)
		}
	}
	moved := false
	for {
		running, waiting, failed := r.watchRollbacks(ctx, dbs)
		if len(failed) > 0 {
			return fmt.Errorf("rollback of application %s: %w; fix it, then run 'pitcrew fleet rollback' again", a.Name, errors.Join(failed...))
		}
		if !moved && running == waiting && (waiting > 0 || cut.State == checkpoint.StepDone) {
			if err := r.moveApp(ctx, a, "rollback"); err != nil {
				return err
			}
			moved = true
			if err := confirmRollbacks(ctx, dbs); err != nil {
				return err
			}
		}
		if running == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.Poll):
		}
	}
	// A later apply moves the application again; a later rollback runs its
	// hook again.
	for _, phase := range []string{"cutover", "rollback"} {
		if err := r.store.SetStep(r.Fleet.Name, checkpoint.Step{ID: "app:" + a.Name + ":" + phase, State: checkpoint.StepPending}); err != nil {
			return err
		}
	}
	r.say("application %s is back on its sources (%s)", a.Name, strings.Join(slices.Clone(a.Databases), ", "))
	return nil
}

// rollbackDBs are the application's databases that began to cut over;
// refused once any of them began its take-down.
func (r *Runner) rollbackDBs(a *Application) ([]*db, error) {
	var dbs []*db
	for _, name := range a.Databases {
		x := &db{d: r.Fleet.Database(name)}
		var err error
		if x.steps, err = journalSteps(x.d.plan); err != nil {
			return nil, fmt.Errorf("database %s: %w", name, err)
		}
		if x.steps["take-down"].Attempts > 0 {
			return nil, fmt.Errorf("database %s: %w; application %s cannot move back", name, infra.ErrTooLate, a.Name)
		}
		if x.steps["cutover"].Attempts == 0 {
			continue // never began to cut over: nothing to undo
		}
		dbs = append(dbs, x)
	}
	return dbs, nil
}

// watchRollbacks reads each rollback runbook: how many still run, how many
// of those wait for the application to move, and those that failed.
func (r *Runner) watchRollbacks(ctx context.Context, dbs []*db) (running, waiting int, failed []error) {
	for _, x := range dbs {
		if x.rb == nil {
			continue
		}
		select {
		case <-x.rb.done():
			if err := x.rb.err(); err != nil {
				failed = append(failed, fmt.Errorf("database %s: %w", x.d.Name, err))
			} else {
				r.say("database %s: rolled back", x.d.Name)
			}
			x.rb = nil
			continue
		default:
		}
		running++
		if v, ok := x.rb.view(ctx); ok && v.Confirm == "rollback" {
			x.waiting = "rollback"
			waiting++
		}
	}
	return running, waiting, failed
}

// confirmRollbacks tells the waiting rollbacks the application moved.
func confirmRollbacks(ctx context.Context, dbs []*db) error {
	for _, x := range dbs {
		if x.rb != nil && x.waiting == "rollback" {
			if err := (&infra.Runner{Plan: x.d.plan}).Confirm(ctx, "rollback"); err != nil {
				return err
			}
		}
	}
	return nil
}
