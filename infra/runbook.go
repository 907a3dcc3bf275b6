package infra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/pitcrew/pitcrew/checkpoint"
)

// Action is one thing a step will do, as the preview shows it: an AWS call
// with its parameters, a SQL statement, or a local action (a channel, a
// wait, the hook).
type Action struct {
	Where string // "source account 111111111111 (eu-west-1)", "source database", "pitcrew"
	What  string // "rds:CreateDBSnapshot DBInstanceIdentifier=shop DBSnapshotIdentifier=..."
}

// step is one entry of the runbook.
type step struct {
	id    string
	title string
	// skip returns why the step is not part of this plan ("" = it is).
	skip func(p *Plan) string
	// actions is the preview: it needs no credentials and no network;
	// values only known at run time are written <like this>.
	actions func(p *Plan) []Action
	// run runs the step on its view of the run (cloudStep, prepStep,
	// cutoverStep, takeDownStep): the parts it may use.
	run func(ctx context.Context, r *run) error
}

// Steps is the runbook's order; ids are stable (they key the journal).
var steps = []step{
	stepSourcePrep, stepShareKey, stepSnapshot, stepTargetCopy, stepRestore, stepNetwork,
	stepForward, stepCutover, stepDNS, stepTakeDown,
}

// StepIDs lists the steps in order.
func StepIDs() []string {
	ids := make([]string, len(steps))
	for i, s := range steps {
		ids[i] = s.id
	}
	return ids
}

func stepIndex(id string) int {
	for i, s := range steps {
		if s.id == id {
			return i
		}
	}
	return -1
}

// Runner runs a plan. Only Plan is required.
type Runner struct {
	Plan *Plan
	Out  io.Writer    // progress lines for the operator; default discard
	Log  *slog.Logger // default discard
	// AWS loads the credentials chain with extra options (tests add their
	// request interceptor and a deny-all HTTP client here).
	AWS []func(*config.LoadOptions) error
	// Retryer, when set, replaces the SDK's default retryer (tests shorten
	// its backoff).
	Retryer func() aws.Retryer
	Now     func() time.Time

	live live // what the console shows of a running run (view.go)
	// once fills the defaults: the console's View and the run call
	// defaults from different goroutines.
	once sync.Once
}

func (rn *Runner) defaults() {
	rn.once.Do(func() {
		if rn.Out == nil {
			rn.Out = io.Discard
		}
		if rn.Log == nil {
			rn.Log = slog.New(slog.DiscardHandler)
		}
		if rn.Now == nil {
			rn.Now = time.Now
		}
	})
}

// Preview writes every step with the calls and statements it will make.
func (rn *Runner) Preview(w io.Writer) error {
	rn.defaults()
	p := rn.Plan
	fmt.Fprintf(w, "migration %s: %d steps (journal in %s)\n", p.Name, len(steps), p.DataDir)
	for i, s := range steps {
		if why := s.skip(p); why != "" {
			fmt.Fprintf(w, "\n%2d. %-11s SKIPPED: %s\n", i+1, s.id, why)
			continue
		}
		fmt.Fprintf(w, "\n%2d. %-11s %s\n", i+1, s.id, s.title)
		for _, a := range s.actions(p) {
			fmt.Fprintf(w, "      [%s] %s\n", a.Where, a.What)
		}
	}
	return nil
}

// StepStatus is a step with its journal record.
type StepStatus struct {
	checkpoint.Step
	Title string `json:"title"`
}

// Status reads the journal. It creates nothing: before the first apply
// there is no journal, and every step is pending (or skipped by the plan).
func (rn *Runner) Status() ([]StepStatus, error) {
	rn.defaults()
	if _, err := os.Stat(filepath.Join(rn.Plan.DataDir, "journal")); errors.Is(err, os.ErrNotExist) {
		return rn.statusFrom(nil)
	}
	store, err := rn.openJournal()
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return rn.statusFrom(store)
}

func (rn *Runner) openJournal() (*checkpoint.Store, error) {
	dir := filepath.Join(rn.Plan.DataDir, "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the journal dir %s: %w", dir, err)
	}
	return checkpoint.Open(dir)
}

// ErrPlanChanged is returned when the plan differs from the one the journal
// was started with.
var ErrPlanChanged = errors.New("the plan changed since this migration started")

// Apply runs every step not yet done, in order, through the step named by
// through (empty: all). A failed step stops the run with its error; run
// Apply again (resume) to retry it: finished steps are not repeated.
func (rn *Runner) Apply(ctx context.Context, through string, acceptChange bool) error {
	rn.defaults()
	last := len(steps) - 1
	if through != "" {
		if last = stepIndex(through); last < 0 {
			return fmt.Errorf("--through %q is not a step: use one of %s", through, strings.Join(StepIDs(), ", "))
		}
	}
	r, err := rn.start(ctx, acceptChange)
	if err != nil {
		return err
	}
	defer r.close()
	for i := 0; i <= last; i++ {
		if err := r.do(ctx, i); err != nil {
			return err
		}
	}
	if last < len(steps)-1 {
		fmt.Fprintf(rn.Out, "stopped after %s as asked (--through); run 'pitcrew migrate resume' to go on\n", steps[last].id)
	} else {
		fmt.Fprintf(rn.Out, "migration %s complete\n", rn.Plan.Name)
	}
	return nil
}

// start opens the journal, checks the plan digest and restarts the
// channels the journal says are running.
func (rn *Runner) start(ctx context.Context, acceptChange bool) (*run, error) {
	if err := rn.Plan.Validate(); err != nil {
		return nil, err
	}
	store, err := rn.openJournal()
	if err != nil {
		return nil, err
	}
	r := newRun(rn, store)
	digest := rn.Plan.Digest()
	old, ok, err := store.PlanDigest(rn.Plan.Name)
	if err != nil {
		r.close()
		return nil, err
	}
	if ok && old != digest && !acceptChange {
		r.close()
		return nil, fmt.Errorf("%w (journal %s, plan %s): check the change is intended, then pass --accept-plan-change", ErrPlanChanged, old, digest)
	}
	if err := store.SetPlanDigest(rn.Plan.Name, digest); err != nil {
		r.close()
		return nil, err
	}
	rn.live.set(func(l *live) { l.r = r })
	if err := r.chans.resume(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// run is one invocation's state, in parts: the journal, the operator's
// side (progress lines, waits, the console), the AWS clients (made on first
// use), the two databases, the channels it runs and the fence. A step sees
// only the parts it uses (its view, below), not the run.
type run struct {
	rn    *Runner
	p     *Plan
	j     *journal
	op    *operator
	aws   *cloud
	db    *sides
	chans *channels
	fence *fencer
}

func newRun(rn *Runner, store *checkpoint.Store) *run {
	p := rn.Plan
	j := &journal{store: store, name: p.Name}
	op := &operator{plan: p, out: rn.Out, live: &rn.live, now: rn.Now}
	aws := &cloud{plan: p, load: rn.AWS, retryer: rn.Retryer}
	db := &sides{plan: p, jr: j}
	return &run{
		rn: rn, p: p, j: j, op: op, aws: aws, db: db,
		chans: &channels{plan: p, jr: j, op: op, db: db, log: rn.Log},
		fence: &fencer{plan: p, aws: aws, op: op},
	}
}

// The steps' views of a run: what each group of steps may use.

// cloudStep: share-key, snapshot, target-copy, restore, network, dns.
type cloudStep struct {
	p *Plan
	*journal
	*operator
	*cloud
}

// prepStep: source-prep and forward.
type prepStep struct {
	p *Plan
	*journal
	*operator
	*cloud
	*sides
	chans *channels
}

// cutoverStep: the cut-over.
type cutoverStep struct {
	p *Plan
	*journal
	*operator
	*sides
	chans *channels
	*fencer
}

// takeDownStep: take-down.
type takeDownStep struct {
	p *Plan
	*journal
	*operator
	*cloud
	*sides
	chans *channels
}

// rollbackStep: the writes' way back (Rollback).
type rollbackStep struct {
	p *Plan
	*operator
	*sides
	chans *channels
	*fencer
}

func (r *run) cloudStep() cloudStep { return cloudStep{r.p, r.j, r.op, r.aws} }
func (r *run) prepStep() prepStep   { return prepStep{r.p, r.j, r.op, r.aws, r.db, r.chans} }
func (r *run) cutoverStep() cutoverStep {
	return cutoverStep{r.p, r.j, r.op, r.db, r.chans, r.fence}
}
func (r *run) takeDownStep() takeDownStep {
	return takeDownStep{r.p, r.j, r.op, r.aws, r.db, r.chans}
}
func (r *run) rollbackStep() rollbackStep {
	return rollbackStep{r.p, r.op, r.db, r.chans, r.fence}
}

func (r *run) close() {
	r.rn.live.set(func(l *live) {
		if l.r == r {
			l.r, l.running, l.waiting, l.confirm = nil, "", "", ""
		}
	})
	r.chans.stopAll()
	r.j.store.Close()
}

// do runs step i unless the journal says it is done (or it is skipped).
func (r *run) do(ctx context.Context, i int) error {
	s := steps[i]
	store, out := r.j.store, r.rn.Out
	rec, err := store.Step(r.p.Name, s.id)
	if err != nil {
		return err
	}
	if rec.State == checkpoint.StepDone || rec.State == checkpoint.StepSkipped {
		return nil
	}
	if why := s.skip(r.p); why != "" {
		rec.State, rec.Note, rec.Finished = checkpoint.StepSkipped, why, r.rn.Now().UTC()
		fmt.Fprintf(out, "%2d/%d %-11s skipped: %s\n", i+1, len(steps), s.id, why)
		return store.SetStep(r.p.Name, rec)
	}
	rec.State, rec.Attempts, rec.Error = checkpoint.StepRunning, rec.Attempts+1, ""
	if rec.Started.IsZero() {
		rec.Started = r.rn.Now().UTC()
	}
	if rec.Outputs == nil {
		rec.Outputs = map[string]string{}
	}
	if err := store.SetStep(r.p.Name, rec); err != nil {
		return err
	}
	resumed := ""
	if rec.Attempts > 1 {
		resumed = fmt.Sprintf(" (attempt %d, resuming)", rec.Attempts)
	}
	fmt.Fprintf(out, "%2d/%d %-11s %s%s\n", i+1, len(steps), s.id, s.title, resumed)
	r.j.cur = &rec
	r.rn.live.set(func(l *live) { l.running = s.id })
	err = s.run(ctx, r)
	r.rn.live.set(func(l *live) { l.running = "" })
	r.j.cur = nil
	if err != nil {
		rec.State, rec.Error = checkpoint.StepFailed, err.Error()
		if serr := store.SetStep(r.p.Name, rec); serr != nil {
			return errors.Join(err, serr)
		}
		return fmt.Errorf("step %s: %w", s.id, err)
	}
	rec.State, rec.Finished = checkpoint.StepDone, r.rn.Now().UTC()
	fmt.Fprintf(out, "      done\n")
	return store.SetStep(r.p.Name, rec)
}
