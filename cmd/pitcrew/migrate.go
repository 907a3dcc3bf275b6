package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/infra"
	"github.com/prometheus/client_golang/prometheus"
)

const migrateUsage = "migrate plan|apply|resume|status|rollback|confirm --plan FILE"

const migrateHelp = `Usage: pitcrew migrate SUBCOMMAND --plan FILE [flags]

The whole move as one resumable runbook (examples/migration.yaml documents
every key). Steps: ` + "source-prep, share-key, snapshot, target-copy, restore, network, forward, cutover, dns, take-down" + `.

  plan      print every step with the AWS calls and SQL it will make; needs
            no credentials and no network
  apply     run the steps not yet done (--through STEP stops after one);
            the channels it starts run while it runs
  resume    the same as apply: after a crash, a stop or a fixed failure;
            finished steps are not repeated
  status    the journal: each step's state, attempts, error and what it made
  rollback  from any step before take-down: DNS back, target fenced, reverse
            drained, application moved back (hook or confirm), source
            unfenced; --dry-run prints what it would do
  confirm   tell a waiting apply/rollback that the application moved
            (--rollback for the rollback's move)

Credentials come from the standard AWS chain (source.profile, target.profile
or target.role_arn); none are logged or journaled. Database passwords may come
from PITCREW_SOURCE_PASSWORD and PITCREW_TARGET_PASSWORD.
`

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, migrateHelp)
			return nil
		}
		fmt.Fprint(stderr, migrateHelp)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("migrate "+sub, migrateUsage, stderr)
	planPath := fs.String("plan", "migration.yaml", "the migration plan (YAML; examples/migration.yaml documents every key)")
	through := fs.String("through", "", "apply/resume: stop after this step")
	accept := fs.Bool("accept-plan-change", false, "apply/resume: go on although the plan changed since the journal started")
	asJSON := fs.Bool("json", false, "status: print JSON")
	dryRun := fs.Bool("dry-run", false, "rollback: only print what it would do")
	back := fs.Bool("rollback", false, "confirm: the application moved back to the source (during rollback)")
	logLevel := fs.String("log-level", "warn", "engine log level on stderr: debug, info, warn or error")
	if err := parse(fs, rest); err != nil {
		return err
	}
	plan, err := loadPlan(*planPath)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	rn := &infra.Runner{Plan: plan, Out: stdout, Log: log, Now: time.Now}
	switch sub {
	case "plan":
		return rn.Preview(stdout)
	case "apply", "resume":
		return migrateRun(ctx, rn, stdout, func(ctx context.Context) error { return rn.Apply(ctx, *through, *accept) })
	case "status":
		return migrateStatus(rn, stdout, *asJSON)
	case "rollback":
		if *dryRun {
			acts, err := rn.RollbackPreview()
			if err != nil {
				return err
			}
			for _, a := range acts {
				fmt.Fprintf(stdout, "[%s] %s\n", a.Where, a.What)
			}
			return nil
		}
		return migrateRun(ctx, rn, stdout, rn.Rollback)
	case "confirm":
		phase := "cutover"
		if *back {
			phase = "rollback"
		}
		if err := rn.Confirm(ctx, phase); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "confirmed: the waiting run goes on within a second")
		return nil
	}
	fmt.Fprintf(stderr, "pitcrew: unknown migrate subcommand %q\n%s", sub, migrateHelp)
	return errUsage
}

// loadPlan reads, defaults and validates a plan; passwords may come from
// the environment.
func loadPlan(path string) (*infra.Plan, error) {
	var p infra.Plan
	if err := loadYAML(path, "plan", &p, "--plan FILE", "examples/migration.yaml"); err != nil {
		return nil, err
	}
	if v, ok := os.LookupEnv(envSourcePassword); ok {
		p.Source.Database.Password = v
	}
	if v, ok := os.LookupEnv(envTargetPassword); ok {
		p.Target.Database.Password = v
	}
	p.Default()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("plan %s: %s", path, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return &p, nil
}

func migrateStatus(rn *infra.Runner, w io.Writer, asJSON bool) error {
	st, err := rn.Status()
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(st)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATE\tATTEMPTS\tFINISHED\tDETAIL")
	failed := false
	for _, s := range st {
		detail := s.Note
		if s.Error != "" {
			detail, failed = s.Error, true
		} else if len(s.Outputs) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(s.Outputs)) {
				kv = append(kv, k+"="+s.Outputs[k])
			}
			detail = strings.Join(kv, " ")
		}
		fin := ""
		if !s.Finished.IsZero() {
			fin = s.Finished.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.ID, s.State, s.Attempts, fin, detail)
	}
	tw.Flush()
	if failed {
		return errors.New("a step failed: fix the cause shown, then 'pitcrew migrate resume'")
	}
	verb := "apply" // nothing ran yet
	if slices.ContainsFunc(st, func(s infra.StepStatus) bool { return s.Attempts > 0 }) {
		verb = "resume"
	}
	for _, s := range st {
		if s.State != checkpoint.StepDone && s.State != checkpoint.StepSkipped {
			fmt.Fprintf(w, "next: %s (pitcrew migrate %s)\n", s.ID, verb)
			return nil
		}
	}
	fmt.Fprintln(w, "migration complete")
	return nil
}

// migrateConsole is the console's view of a migration run in this
// process: the runner's view and confirm, and a rollback that stops the
// run and rolls back in its place.
type migrateConsole struct {
	*infra.Runner
	mu       sync.Mutex
	stopRun  context.CancelFunc
	rollback bool
}

// Rollback implements console.Runbook.
func (m *migrateConsole) Rollback(ctx context.Context) error {
	// The journal is locked by the run: its view says whether it may.
	v, err := m.View(ctx)
	if err != nil {
		return err
	}
	if !v.CanRollback {
		return errors.New(v.RollbackWhy)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rollback {
		return errors.New("a rollback was already asked for")
	}
	m.rollback = true
	m.stopRun()
	return nil
}

// migrateRun runs one apply/resume/rollback with the console served on
// the plan's http_addr; a rollback asked from the console stops the run
// and rolls back.
func migrateRun(ctx context.Context, rn *infra.Runner, stdout io.Writer, do func(context.Context) error) error {
	p := rn.Plan
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	mc := &migrateConsole{Runner: rn, stopRun: stopRun}
	addr := p.HTTPAddr
	switch addr {
	case "":
		addr = defaultHTTPAddr
	case "off":
		addr = ""
	}
	token := p.ConsoleToken
	if t, ok := os.LookupEnv(envConsoleToken); ok {
		token = t
	}
	url, stop, err := serve(ctx, consoleSettings{token: token, readOpen: p.ConsoleReadOpen}, addr, rn.Log, service{
		title: "migration " + p.Name, gatherer: prometheus.Gatherers{newRegistry(), rn.Gatherer()},
		channels: rn.Channels, runbook: mc, list: true,
	})
	if err != nil {
		return err
	}
	defer stop()
	if url != "" {
		fmt.Fprintf(stdout, "console: %s\n", url)
	}
	err = do(runCtx)
	mc.mu.Lock()
	rollback := mc.rollback
	mc.mu.Unlock()
	if rollback && ctx.Err() == nil {
		fmt.Fprintln(stdout, "rollback asked from the console: the run stopped; rolling back")
		return rn.Rollback(ctx)
	}
	return err
}
