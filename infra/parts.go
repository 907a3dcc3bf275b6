package infra

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
)

// journal is the migration's journal as a step sees it: the record of the
// step that runs (cur) and what earlier steps recorded.
type journal struct {
	store *checkpoint.Store
	name  string           // the plan's name: the journal's key
	cur   *checkpoint.Step // the running step's record; nil between steps
}

// output returns a value the current step journaled earlier.
func (j *journal) output(key string) string { return j.cur.Outputs[key] }

// record journals a value of the current step before the caller goes on.
func (j *journal) record(key, value string) error {
	j.cur.Outputs[key] = value
	return j.store.SetStep(j.name, *j.cur)
}

// recordSet journals each key-value pair in order, skipping empty values.
func (j *journal) recordSet(kvs [][2]string) error {
	for _, kv := range kvs {
		if kv[1] == "" {
			continue
		}
		if err := j.record(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// outputOf reads a value another step journaled.
func (j *journal) outputOf(stepID, key string) (string, error) {
	rec, err := j.store.Step(j.name, stepID)
	if err != nil {
		return "", err
	}
	v, ok := rec.Outputs[key]
	if !ok {
		return "", fmt.Errorf("the journal has no %s from step %s: run that step first ('pitcrew migrate resume')", key, stepID)
	}
	return v, nil
}

// step reads another step's record.
func (j *journal) step(id string) (checkpoint.Step, error) { return j.store.Step(j.name, id) }

// mark journals when a sub-step of the cut-over began (migrate status
// shows the times; the bench marks them on its charts).
func (j *journal) mark(key string, t time.Time) error {
	return j.record(key, t.UTC().Format(time.RFC3339Nano))
}

// operator is the run's side that people see: progress lines, waits (the
// console shows what is awaited), guardrail results and the hook or the
// operator's confirmation.
type operator struct {
	plan *Plan
	out  io.Writer
	live *live
	now  func() time.Time
}

// say prints one progress line for the operator.
func (o *operator) say(format string, a ...any) {
	fmt.Fprintf(o.out, "      "+format+"\n", a...)
}

// poll calls check every poll interval until it returns true, an error,
// or the timeout passes (then the error names what was awaited).
func (o *operator) poll(ctx context.Context, what string, check func(ctx context.Context) (bool, error)) error {
	return o.pollEvery(ctx, what, o.plan.Options.PollInterval, check)
}

// pollEvery is poll with its own interval.
func (o *operator) pollEvery(ctx context.Context, what string, every time.Duration, check func(ctx context.Context) (bool, error)) error {
	o.live.set(func(l *live) { l.waiting = what })
	defer o.live.set(func(l *live) { l.waiting = "" })
	deadline := o.now().Add(o.plan.Options.Timeout)
	for {
		ok, err := check(ctx)
		if err != nil || ok {
			return err
		}
		if o.now().After(deadline) {
			return fmt.Errorf("gave up waiting for %s after %s (options.timeout); resume when it is ready", what, o.plan.Options.Timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// moveApplication runs the hook (hook PHASE) or waits for the operator's
// 'pitcrew migrate confirm'.
func (o *operator) moveApplication(ctx context.Context, phase string) error {
	if h := o.plan.Options.Hook; h != "" {
		o.say("running hook: %s %s", h, phase)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h+` "$0"`, phase)
		cmd.Env = append(os.Environ(), "PITCREW_MIGRATION="+o.plan.Name, "PITCREW_PHASE="+phase)
		cmd.Stdout, cmd.Stderr = o.out, o.out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("hook %s %s failed: %w; fix it (it must be safe to run twice), then resume", h, phase, err)
		}
		return nil
	}
	file := ConfirmFile(o.plan, phase)
	to := "target"
	if phase == "rollback" {
		to = "source"
	}
	if phase == "cutover" && o.plan.Options.CutoverOrder != OrderBothWritable {
		o.say("ACTION NEEDED: the cut-over is ready: run 'pitcrew migrate confirm --plan FILE'; pitcrew then fences the source, drains the forward channel and says when the application may write to the target (its writes to the source fail from the fence until then)")
	} else {
		o.say("ACTION NEEDED: move the application's writes to the %s now, then run: pitcrew migrate confirm --plan FILE%s", to, map[bool]string{true: " --rollback"}[phase == "rollback"])
	}
	o.live.set(func(l *live) { l.confirm = phase })
	defer o.live.set(func(l *live) { l.confirm = "" })
	// A local file: checked every second, whatever the AWS polling interval.
	return o.pollEvery(ctx, "the operator's 'pitcrew migrate confirm'", min(o.plan.Options.PollInterval, time.Second), func(context.Context) (bool, error) {
		if _, err := os.Stat(file); err == nil {
			return true, os.Remove(file)
		}
		return false, nil
	})
}
