package infra

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/console"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// live is what a running Apply or Rollback shares with the console: the
// run (its journal is locked by it), the step it runs, what that step
// waits for, the guardrails' last results and the drain picture.
type live struct {
	mu         sync.Mutex
	r          *run
	running    string
	waiting    string
	confirm    string
	guardrails []console.Guardrail
	drain      []console.DrainSample
}

// maxDrain bounds the drain picture: at the default 30s poll, 12 hours.
const maxDrain = 1440

func (l *live) set(f func(l *live)) {
	l.mu.Lock()
	f(l)
	l.mu.Unlock()
}

// View implements console.Runbook: the journal (from the running run, or
// read from disk when none runs) and the live state.
// Call it once the Runner's fields are set (the console reads it from
// another goroutine than the run's).
func (rn *Runner) View(context.Context) (console.RunbookView, error) {
	v := console.RunbookView{Name: rn.Plan.Name}
	rn.live.mu.Lock()
	defer rn.live.mu.Unlock()
	var st []StepStatus
	var err error
	if r := rn.live.r; r != nil {
		st, err = rn.statusFrom(r.j.store)
	} else {
		st, err = rn.Status()
	}
	if err != nil {
		return v, err
	}
	tooLate := false
	for _, s := range st {
		v.Steps = append(v.Steps, console.Step{ID: s.ID, Title: s.Title, State: s.State, Attempts: s.Attempts,
			Started: s.Started, Finished: s.Finished, Error: s.Error, Note: s.Note, Outputs: s.Outputs})
		if s.ID == "take-down" && s.Attempts > 0 {
			tooLate = true
		}
	}
	v.Running, v.Waiting, v.Confirm = rn.live.running, rn.live.waiting, rn.live.confirm
	v.Guardrails = append(v.Guardrails, rn.live.guardrails...)
	v.Drain = append(v.Drain, rn.live.drain...)
	v.CanRollback = !tooLate
	if tooLate {
		v.RollbackWhy = ErrTooLate.Error()
	}
	return v, nil
}

// statusFrom is Status over an open journal; nil is a journal not started.
func (rn *Runner) statusFrom(store *checkpoint.Store) ([]StepStatus, error) {
	var out []StepStatus
	for _, s := range steps {
		rec := checkpoint.Step{ID: s.id, State: checkpoint.StepPending}
		if store != nil {
			var err error
			if rec, err = store.Step(rn.Plan.Name, s.id); err != nil {
				return nil, err
			}
		}
		if rec.State == checkpoint.StepPending {
			if why := s.skip(rn.Plan); why != "" {
				rec.State, rec.Note = checkpoint.StepSkipped, why
			}
		}
		out = append(out, StepStatus{Step: rec, Title: s.title})
	}
	return out, nil
}

// Confirm tells a waiting run that the application moved (phase cutover
// or rollback), as `pitcrew migrate confirm` does.
func (rn *Runner) Confirm(_ context.Context, phase string) error {
	if phase != "cutover" && phase != "rollback" {
		return fmt.Errorf("phase %q: use cutover or rollback", phase)
	}
	f := ConfirmFile(rn.Plan, phase)
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(f, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", f, err)
	}
	return nil
}

// Channels lists the channels the running run has now.
func (rn *Runner) Channels() []syncer.StatusSource {
	rn.live.mu.Lock()
	r := rn.live.r
	rn.live.mu.Unlock()
	if r == nil {
		return nil
	}
	r.chans.mu.Lock()
	defer r.chans.mu.Unlock()
	var out []syncer.StatusSource
	for _, name := range []string{forward, reverse} {
		if c, ok := r.chans.m[name]; ok {
			out = append(out, c.s)
		}
	}
	return out
}

// Gatherer gathers the metrics of the channels running now (each channel
// has a registry of its own: a channel started again registers anew).
func (rn *Runner) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		rn.live.mu.Lock()
		r := rn.live.r
		rn.live.mu.Unlock()
		if r == nil {
			return nil, nil
		}
		var gs prometheus.Gatherers
		r.chans.mu.Lock()
		for _, c := range r.chans.m {
			gs = append(gs, c.reg)
		}
		r.chans.mu.Unlock()
		return gs.Gather()
	})
}

// guardrail records one cut-over check's result for the console and
// returns err.
func (o *operator) guardrail(name string, err error) error {
	g := console.Guardrail{Name: name, OK: err == nil, At: o.now().UTC()}
	if err != nil {
		g.Detail = err.Error()
	}
	o.live.set(func(l *live) {
		for i, x := range l.guardrails {
			if x.Name == name {
				l.guardrails[i] = g
				return
			}
		}
		l.guardrails = append(l.guardrails, g)
	})
	return err
}

// drained records one look at the old side (requests -1: no load
// balancer in the plan).
func (o *operator) drained(requests float64, sessions []string, n int) {
	s := console.DrainSample{At: o.now().UTC(), Requests: requests, Sessions: n}
	for i, x := range sessions {
		if i > 0 {
			s.Clients += ", "
		}
		s.Clients += x
	}
	o.live.set(func(l *live) {
		l.drain = append(l.drain, s)
		if len(l.drain) > maxDrain {
			l.drain = l.drain[len(l.drain)-maxDrain:]
		}
	})
}
