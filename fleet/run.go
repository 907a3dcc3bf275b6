package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/console"
	"github.com/pitcrew/pitcrew/infra"
)

// Runner drives a fleet's runbooks. Only Fleet is required.
type Runner struct {
	Fleet *Fleet
	Out   io.Writer
	// Exe is the pitcrew binary each database's runbook runs as
	// ('pitcrew migrate apply|rollback --plan FILE'); default this one.
	Exe string
	// Poll is how often the runbooks' state is read; default 500ms.
	Poll time.Duration
	Now  func() time.Time
	// AWS (per plan: its source account's) and Retryer are handed to the
	// shared steps' runner and to in-process runbooks: tests wire the
	// account model in here.
	AWS     func(p *infra.Plan) []func(*config.LoadOptions) error
	Retryer func() aws.Retryer
	// InProcess runs each runbook in this process instead of a process of
	// its own (tests: the AWS model answers only this process's clients).
	InProcess bool

	launch launcher
	store  *checkpoint.Store
}

func (r *Runner) defaults() error {
	if r.Out == nil {
		r.Out = io.Discard
	}
	if r.Poll == 0 {
		r.Poll = 500 * time.Millisecond
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.launch == nil {
		r.launch = r.processLauncher
		if r.InProcess {
			r.launch = r.inProcessLauncher
		}
	}
	if r.Exe == "" && !r.InProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the pitcrew binary to run the runbooks: %w", err)
		}
		r.Exe = exe
	}
	return nil
}

func (r *Runner) say(format string, a ...any) {
	fmt.Fprintf(r.Out, "%s "+format+"\n", append([]any{r.Now().UTC().Format("15:04:05")}, a...)...)
}

// openJournal opens the fleet journal; it is locked while one fleet
// command runs, so two cannot drive the same runbooks.
func (r *Runner) openJournal() error {
	dir := filepath.Join(r.Fleet.DataDir, "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the fleet journal dir %s: %w", dir, err)
	}
	s, err := checkpoint.Open(dir)
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return fmt.Errorf("the fleet journal %s is in use: another 'pitcrew fleet apply|resume|rollback' runs; stop it first", dir)
		}
		return err
	}
	r.store = s
	return nil
}

// db is a database's state in this run.
type db struct {
	d        *Database
	wave     int
	rb       runbook
	steps    map[string]console.Step
	waiting  string // the phase its runbook waits to be confirmed for
	finished bool   // its runbook ran through (--through) this run or before
	failed   error
	console  string
	// confirmed: this run told the runbook its application moved (its view
	// may still say it waits until it reads the confirmation).
	confirmed bool
	inSync    bool // said so for this runbook
}

func (x *db) cut() bool   { return x.steps["cutover"].State == checkpoint.StepDone }
func (x *db) moved() bool { return x.steps["cutover"].Outputs["app_moved"] != "" }

// ready: in sync and waiting for its application to move, or past that.
func (x *db) ready() bool { return x.waiting == "cutover" || x.confirmed || x.moved() || x.cut() }

// copying: running and not yet in sync.
func (x *db) copying() bool { return x.rb != nil && !x.ready() }

func stepMap(steps []console.Step) map[string]console.Step {
	m := map[string]console.Step{}
	for _, s := range steps {
		m[s.ID] = s
	}
	return m
}

// journalSteps reads a runbook's journal (its process is not running).
func journalSteps(p *infra.Plan) (map[string]console.Step, error) {
	st, err := (&infra.Runner{Plan: p}).Status()
	if err != nil {
		return nil, err
	}
	m := map[string]console.Step{}
	for _, s := range st {
		m[s.ID] = console.Step{ID: s.ID, Title: s.Title, State: s.State, Attempts: s.Attempts, Started: s.Started, Finished: s.Finished, Error: s.Error, Note: s.Note, Outputs: s.Outputs}
	}
	return m, nil
}

// doneThrough tells whether every step through `through` is done.
func doneThrough(steps map[string]console.Step, through string) bool {
	for _, id := range infra.StepIDs() {
		s := steps[id].State
		if s != checkpoint.StepDone && s != checkpoint.StepSkipped {
			return false
		}
		if id == through {
			return true
		}
	}
	return true
}

// Stats is what a run measured.
type Stats struct {
	PeakRunning int // runbook processes at once
	PeakCopying int // of which copying (not yet in sync)
}

// Apply runs the fleet: the account pairs' shared steps, then every
// database's runbook (at most limits.copies copying at once), and the
// waves' cut-overs in order: a wave's applications are moved (their hooks)
// once every database of the wave is in sync, inside the quiet hours; then
// each runbook fences its source and drains. A database that fails holds
// its wave's cut-over (and the waves after it), not the others' copies.
// through stops every runbook after that step (empty: all steps).
// Resume is the same call: done steps, waves and moves are not repeated.
func (r *Runner) Apply(ctx context.Context, through string) (Stats, error) {
	var stats Stats
	if err := r.defaults(); err != nil {
		return stats, err
	}
	if through != "" && !slices.Contains(infra.StepIDs(), through) {
		return stats, fmt.Errorf("--through %q is not a step: use one of %s", through, strings.Join(infra.StepIDs(), ", "))
	}
	withCutover := through == "" || slices.Index(infra.StepIDs(), through) >= slices.Index(infra.StepIDs(), "cutover")
	if err := r.openJournal(); err != nil {
		return stats, err
	}
	defer r.store.Close()
	f := r.Fleet
	waves, err := f.Waves()
	if err != nil {
		return stats, err
	}
	quiet, err := f.quiet()
	if err != nil {
		return stats, err
	}
	if err := r.sharedSteps(ctx); err != nil {
		return stats, err
	}
	dbs, err := r.databases(waves, through)
	if err != nil {
		return stats, err
	}
	defer stopRunbooks(dbs)
	held := map[int]bool{}
	announced := map[string]bool{}
	once := func(key, format string, a ...any) {
		if !announced[key] {
			announced[key] = true
			r.say(format, a...)
		}
	}
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	for {
		r.observe(ctx, dbs)
		running, copying := counts(dbs)
		running, copying = r.startRunbooks(ctx, dbs, through, running, copying)
		stats.PeakRunning, stats.PeakCopying = max(stats.PeakRunning, running), max(stats.PeakCopying, copying)
		r.writeState(waves, dbs)

		// The current wave.
		if withCutover {
			if err := r.advance(ctx, waves, dbs, quiet, held, once); err != nil {
				return stats, err
			}
		}

		// Done, or nothing more can happen.
		if allFinished(dbs) {
			r.writeState(waves, dbs)
			r.say("fleet %s complete: %d databases (peak %d runbooks at once, %d copying)", f.Name, len(dbs), stats.PeakRunning, stats.PeakCopying)
			return stats, nil
		}
		if stuck, why := r.stuck(dbs, held); stuck {
			r.writeState(waves, dbs)
			return stats, why
		}
		select {
		case <-ctx.Done():
			return stats, ctx.Err()
		case <-tick.C:
		}
	}
}

// sharedSteps makes each account pair's KMS key and VPC peering once.
func (r *Runner) sharedSteps(ctx context.Context) error {
	for _, pr := range r.Fleet.Pairs() {
		r.say("account pair %s (%s): shared KMS key and VPC peering", pr.Name, strings.Join(pr.Databases, ", "))
		rn := &infra.Runner{Plan: pr.plan, Out: prefixed(r.Out, pr.Name), AWS: r.awsFor(pr.plan), Retryer: r.Retryer, Now: r.Now}
		if err := rn.ApplySteps(ctx, infra.SharedSteps); err != nil {
			return fmt.Errorf("account pair %s: %w; fix it, then 'pitcrew fleet resume'", pr.Name, err)
		}
	}
	return nil
}

// databases lists the fleet's databases wave by wave, with what their
// journals say (finished: done through the --through step).
func (r *Runner) databases(waves []Wave, through string) ([]*db, error) {
	var dbs []*db
	for wi, w := range waves {
		for _, name := range w.Databases {
			x := &db{d: r.Fleet.Database(name), wave: wi}
			var err error
			if x.steps, err = journalSteps(x.d.plan); err != nil {
				return nil, fmt.Errorf("database %s: %w", name, err)
			}
			x.finished = doneThrough(x.steps, through)
			dbs = append(dbs, x)
		}
	}
	return dbs, nil
}

// observe reads every running runbook: finished or failed, its journal,
// what it waits for, its console.
func (r *Runner) observe(ctx context.Context, dbs []*db) {
	for _, x := range dbs {
		if x.rb == nil {
			continue
		}
		select {
		case <-x.rb.done():
			err := x.rb.err()
			x.rb = nil
			x.waiting, x.confirmed, x.inSync = "", false, false
			if s, jerr := journalSteps(x.d.plan); jerr == nil {
				x.steps = s
			}
			if err != nil {
				x.failed = err
				r.say("database %s failed: %v", x.d.Name, err)
			} else {
				x.finished = true
				r.say("database %s: runbook finished", x.d.Name)
			}
			continue
		default:
		}
		if v, ok := x.rb.view(ctx); ok {
			x.steps, x.waiting = stepMap(v.Steps), v.Confirm
			if x.ready() && !x.inSync {
				x.inSync = true
				switch {
				case x.waiting == "cutover":
					r.say("database %s: in sync, waiting for wave %d", x.d.Name, x.wave+1)
				case x.cut():
					r.say("database %s: cut over, its runbook goes on (dns, take-down)", x.d.Name)
				default:
					r.say("database %s: in sync, its cut-over under way", x.d.Name)
				}
			}
		}
		x.console = x.rb.console()
	}
}

// stopRunbooks stops the runbooks still running.
func stopRunbooks(dbs []*db) {
	for _, x := range dbs {
		if x.rb != nil {
			x.rb.stop()
		}
	}
}

// allFinished tells whether every database's runbook finished.
func allFinished(dbs []*db) bool {
	for _, x := range dbs {
		if !x.finished {
			return false
		}
	}
	return true
}

// counts are the runbooks running and, of them, those copying.
func counts(dbs []*db) (running, copying int) {
	for _, x := range dbs {
		if x.rb != nil {
			running++
			if x.copying() {
				copying++
			}
		}
	}
	return running, copying
}

// startRunbooks starts runbooks: those already cutting over at once, the
// others while fewer than limits.copies copy. It returns the new counts.
func (r *Runner) startRunbooks(ctx context.Context, dbs []*db, through string, running, copying int) (int, int) {
	for _, x := range dbs {
		if x.rb != nil || x.finished || x.failed != nil {
			continue
		}
		if !x.moved() && copying >= r.Fleet.Limits.Copies {
			continue
		}
		rb, err := r.launch(ctx, x.d, "apply", through)
		if err != nil {
			x.failed = err
			r.say("database %s failed to start: %v", x.d.Name, err)
			continue
		}
		x.rb = rb
		running++
		what := "copying"
		if x.cut() {
			what = "after its cut-over"
		} else if x.moved() {
			what = "resuming its cut-over"
		} else {
			copying++
		}
		pid := ""
		if rb.pid() != 0 {
			pid = fmt.Sprintf(" (pid %d)", rb.pid())
		}
		r.say("database %s: runbook started, %s%s", x.d.Name, what, pid)
	}
	return running, copying
}

// advance moves the first wave not yet cut over along: when every database
// of it is in sync (and inside the quiet hours) its applications are moved
// and the runbooks confirmed.
func (r *Runner) advance(ctx context.Context, waves []Wave, dbs []*db, quiet quietWindow, held map[int]bool, once func(key, format string, a ...any)) error {
	for wi, w := range waves {
		var members []*db
		for _, x := range dbs {
			if x.wave == wi {
				members = append(members, x)
			}
		}
		cut := true
		for _, x := range members {
			cut = cut && x.cut()
		}
		if cut {
			once(fmt.Sprintf("wave %d cut", wi), "wave %d cut over: %s", w.Number, strings.Join(w.Databases, ", "))
			continue
		}
		var failed []string
		for _, x := range members {
			if x.failed != nil {
				failed = append(failed, x.d.Name)
			}
		}
		if len(failed) > 0 {
			held[wi] = true
			once(fmt.Sprintf("wave %d held", wi), "wave %d held: %s failed; the other databases of the wave stay on their sources (fix it, then 'pitcrew fleet resume')", w.Number, strings.Join(failed, ", "))
			return nil
		}
		for _, x := range members {
			if !x.ready() {
				return nil // still copying
			}
		}
		if !quiet.open(r.Now()) {
			once(fmt.Sprintf("wave %d quiet", wi), "wave %d in sync; its cut-over waits for the quiet hours %s (%s)", w.Number, r.Fleet.Limits.QuietHours, r.Fleet.Limits.Timezone)
			return nil
		}
		once(fmt.Sprintf("wave %d go", wi), "wave %d: every database in sync (%s): cutting over", w.Number, strings.Join(w.Databases, ", "))
		for _, app := range w.Applications {
			if err := r.moveApp(ctx, r.Fleet.app(app), "cutover"); err != nil {
				return err
			}
		}
		for _, x := range members {
			if x.waiting == "cutover" && !x.confirmed {
				if err := (&infra.Runner{Plan: x.d.plan}).Confirm(ctx, "cutover"); err != nil {
					return err
				}
				x.confirmed = true
				r.say("database %s: application moved, confirmed to its runbook (it fences the source and drains)", x.d.Name)
			}
		}
		return nil
	}
	return nil
}

// stuck says when nothing more can happen in this run: a held wave and no
// runbook still copying (the others wait in sync), or no runbook running.
func (r *Runner) stuck(dbs []*db, held map[int]bool) (bool, error) {
	var failed []error
	active := false
	for _, x := range dbs {
		if x.failed != nil {
			failed = append(failed, fmt.Errorf("database %s: %w", x.d.Name, x.failed))
		}
		// Copying, or cutting over; a runbook past its cut-over (waiting
		// for take-down) is stopped and resumed later like the others.
		if x.rb != nil && (x.copying() || x.confirmed || x.moved() && !x.cut()) {
			active = true
		}
	}
	if len(failed) == 0 || active {
		return false, nil
	}
	waves := []string{}
	for wi := range held {
		waves = append(waves, fmt.Sprint(wi+1))
	}
	slices.Sort(waves)
	return true, fmt.Errorf("wave %s held, the runbooks in sync stopped until resume: %w; fix the cause, then 'pitcrew fleet resume'", strings.Join(waves, ", "), errors.Join(failed...))
}

// moveApp runs an application's hook (or waits for 'pitcrew fleet confirm')
// once; the fleet journal records it, so a resumed fleet does not move an
// application twice.
func (r *Runner) moveApp(ctx context.Context, a *Application, phase string) error {
	rec, err := r.store.Step(r.Fleet.Name, "app:"+a.Name+":"+phase)
	if err != nil {
		return err
	}
	if rec.State == checkpoint.StepDone {
		return nil
	}
	rec.State, rec.Attempts, rec.Started = checkpoint.StepRunning, rec.Attempts+1, r.Now().UTC()
	if err := r.store.SetStep(r.Fleet.Name, rec); err != nil {
		return err
	}
	if a.Hook != "" {
		r.say("application %s: running hook: %s %s", a.Name, a.Hook, phase)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", a.Hook+` "$0"`, phase)
		cmd.Env = append(os.Environ(), "PITCREW_APPLICATION="+a.Name, "PITCREW_DATABASES="+strings.Join(a.Databases, ","), "PITCREW_PHASE="+phase)
		cmd.Stdout, cmd.Stderr = prefixed(r.Out, a.Name), prefixed(r.Out, a.Name)
		if err := cmd.Run(); err != nil {
			rec.State, rec.Error = checkpoint.StepFailed, err.Error()
			_ = r.store.SetStep(r.Fleet.Name, rec)
			return fmt.Errorf("application %s: hook %s %s failed: %w; fix it (it must be safe to run twice), then 'pitcrew fleet resume'", a.Name, a.Hook, phase, err)
		}
	} else {
		file := r.confirmFile(a.Name, phase)
		r.say("ACTION NEEDED: move application %s's writers (databases %s) to the %s, then run: pitcrew fleet confirm --fleet FILE --application %s%s",
			a.Name, strings.Join(a.Databases, ", "), map[string]string{"cutover": "targets", "rollback": "sources"}[phase], a.Name, map[bool]string{true: " --rollback"}[phase == "rollback"])
		for {
			if _, err := os.Stat(file); err == nil {
				os.Remove(file)
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.Poll):
			}
		}
	}
	// A crash before this record runs the hook again on resume (hooks must
	// be safe to run twice); after it, never.
	rec.State, rec.Finished, rec.Error = checkpoint.StepDone, r.Now().UTC(), ""
	if err := r.store.SetStep(r.Fleet.Name, rec); err != nil {
		return err
	}
	r.say("application %s moved (%s)", a.Name, phase)
	return nil
}

func (r *Runner) confirmFile(app, phase string) string {
	return filepath.Join(r.Fleet.DataDir, "confirm-"+app+"-"+phase)
}

// Confirm tells a waiting fleet that the application moved.
func (r *Runner) Confirm(app string, rollback bool) error {
	if r.Fleet.app(app) == nil {
		return fmt.Errorf("application %s is not in the fleet", app)
	}
	phase := "cutover"
	if rollback {
		phase = "rollback"
	}
	if err := os.MkdirAll(r.Fleet.DataDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(r.confirmFile(app, phase), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}

// State is what 'fleet status' reads of a running (or last) fleet command.
type State struct {
	Fleet     string    `json:"fleet"`
	PID       int       `json:"pid"`
	Updated   time.Time `json:"updated"`
	Waves     []Wave    `json:"waves"`
	Databases []DBState `json:"databases"`
}

// DBState is one database as the fleet last saw it.
type DBState struct {
	Name    string `json:"name"`
	Wave    int    `json:"wave"`
	Phase   string `json:"phase"` // pending, copying, in-sync, cutting-over, cut-over, finished, failed
	PID     int    `json:"pid,omitempty"`
	Console string `json:"console,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (x *db) phase() string {
	switch {
	case x.failed != nil:
		return "failed"
	case x.finished:
		return "finished"
	case x.cut():
		return "cut-over"
	case x.moved() || x.confirmed:
		return "cutting-over"
	case x.waiting == "cutover":
		return "in-sync"
	case x.rb != nil:
		return "copying"
	}
	return "pending"
}

func (r *Runner) statePath() string { return filepath.Join(r.Fleet.DataDir, "fleet.json") }

func (r *Runner) writeState(waves []Wave, dbs []*db) {
	st := State{Fleet: r.Fleet.Name, PID: os.Getpid(), Updated: r.Now().UTC(), Waves: waves}
	for _, x := range dbs {
		s := DBState{Name: x.d.Name, Wave: x.wave + 1, Phase: x.phase(), Console: x.console}
		if x.rb != nil {
			s.PID = x.rb.pid()
		}
		if x.failed != nil {
			s.Error = x.failed.Error()
		}
		st.Databases = append(st.Databases, s)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := r.statePath() + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, r.statePath())
	}
}

func stepOrder() []string { return infra.StepIDs() }

func (r *Runner) awsFor(p *infra.Plan) []func(*config.LoadOptions) error {
	if r.AWS == nil {
		return nil
	}
	return r.AWS(p)
}
