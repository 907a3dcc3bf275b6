package infra

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"path/filepath"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

var stepForward = step{
	id:    "forward",
	title: "forward replication source -> target with pitcrew, until caught up",
	skip:  func(*Plan) string { return "" },
	actions: func(p *Plan) []Action {
		from := "options.start_from=" + p.Options.StartFrom
		if p.Options.StartGTID != "" {
			from = "options.start_gtid=" + p.Options.StartGTID
		}
		a := []Action{}
		if p.aws() {
			a = append(a,
				Action{"pitcrew", "preflight checks of source and target; any FAIL stops here"},
				Action{"target database", fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d) (the reverse channel reads its binlog until take-down)", p.Options.BinlogRetentionHours)})
		}
		return append(a,
			Action{"pitcrew", fmt.Sprintf("channel %s (server_id %d) from %s; checkpoints in %s", forward, p.Options.ServerID, from, filepath.Join(p.DataDir, "channels", forward))},
			Action{"source database", "SELECT @@GLOBAL.gtid_binlog_pos (MariaDB) / @@GLOBAL.gtid_executed (MySQL); wait until the channel applied it"})
	},
	run: func(ctx context.Context, r *run) error { return r.prepStep().forward(ctx) },
}

func (r prepStep) forward(ctx context.Context) error {
	if r.p.aws() {
		if err := r.preflight(ctx, true); err != nil {
			return err
		}
		if err := r.keepTargetBinlogs(ctx); err != nil {
			return err
		}
	}
	if err := r.chans.start(forward); err != nil {
		return err
	}
	return r.chans.drain(ctx, forward, "source")
}

// keepTargetBinlogs sets the restored instance's binlog retention (RDS
// restores it NULL: purge as soon as possible), which the reverse channel
// needs from the cut-over to take-down.
func (r prepStep) keepTargetBinlogs(ctx context.Context) error {
	tdb, _, err := r.open(ctx, "target")
	if err != nil {
		return err
	}
	defer tdb.Close()
	hours, rdsProc, err := binlog.Retention(ctx, tdb)
	if err != nil || !rdsProc || hours >= float64(r.p.Options.BinlogRetentionHours) {
		return err
	}
	q := fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d)", r.p.Options.BinlogRetentionHours)
	if _, err := tdb.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("on the target: %s: %w", q, err)
	}
	r.say("target binlog retention set to %d hours", r.p.Options.BinlogRetentionHours)
	return nil
}

// drain waits until a direction applied everything its source has executed
// now.
func (cs *channels) drain(ctx context.Context, name, from string) error {
	db, flavor, err := cs.db.open(ctx, from)
	if err != nil {
		return err
	}
	defer db.Close()
	goal, err := binlog.Executed(ctx, db, flavor)
	if err != nil {
		return err
	}
	return cs.waitApplied(ctx, name, goal)
}

// open connects to one side's database with the applier's session settings.
func (s *sides) open(ctx context.Context, side string) (*sql.DB, string, error) {
	e, err := s.endpoint(side)
	if err != nil {
		return nil, "", err
	}
	db, err := conn.Open(e, conn.Options{Init: apply.Session})
	if err != nil {
		return nil, "", err
	}
	if err := conn.Ping(ctx, db, side+".database", e); err != nil {
		db.Close()
		return nil, "", err
	}
	info, err := binlog.Inspect(ctx, db)
	if err != nil {
		db.Close()
		return nil, "", conn.Explain(err, side, e)
	}
	return db, info.Flavor, nil
}

var stepCutover = step{
	id:    "cutover",
	title: "guardrails, reverse channel on, source fenced, forward drained to its exact GTID set and stopped, application released",
	skip:  func(*Plan) string { return "" },
	actions: func(p *Plan) []Action {
		a := []Action{
			{"pitcrew", fmt.Sprintf("guardrails: %s lag <= %s; auto_increment offsets keep both nodes' inserts apart; the target serves binlog to a replica and keeps it %dh; the fence (%s) will work on both sides; no source transaction older than %s", forward, p.Options.MaxLag, p.Options.BinlogRetentionHours, p.Options.Fence, p.Options.LongTransaction)},
			{"target database", "SELECT @@GLOBAL.gtid_binlog_pos / @@GLOBAL.gtid_executed -> where the reverse channel starts (journaled)"},
			{"pitcrew", fmt.Sprintf("channel %s (server_id %d): both directions run, echoes dropped", reverse, p.Options.ServerID+1)},
		}
		fence := []Action{
			{"source database", fenceSQL(p, "source", true)},
			{"source database", "SELECT the executed GTID set -> the exact drain goal; wait until " + forward + " applied it; stop " + forward},
		}
		switch {
		case p.Options.CutoverOrder == OrderBothWritable:
			move := "wait for 'pitcrew migrate confirm --plan FILE' (the operator moved the application)"
			if p.Options.Hook != "" {
				move = "run hook: " + p.Options.Hook + " cutover"
			}
			a = append(a, Action{"pitcrew", move + " (both sides take the application's writes until the fence: a row written on both is a conflict, resolved source-wins, and may lose an update)"})
			return append(a, fence...)
		case p.Options.Hook != "":
			return append(append(a, fence...), Action{"pitcrew", "run hook: " + p.Options.Hook + " cutover (the target holds every write the source acknowledged)"})
		}
		a = append(a, Action{"pitcrew", "wait for 'pitcrew migrate confirm --plan FILE' (the operator is ready to move the application)"})
		return append(append(a, fence...), Action{"pitcrew", "say RELEASE: the operator moves the application's writes to the target (which holds every write the source acknowledged)"})
	},
	run: func(ctx context.Context, r *run) error { return r.cutoverStep().cutover(ctx) },
}

// runCutover switches the application's writes to the target. The default
// order loses no acknowledged write: the source is fenced first (no write
// of the application commits there after it), the forward channel is
// drained to the source's exact executed set, and only then is the
// application released to the target, which by then holds everything the
// source acknowledged. The application's writes wait (or fail and are
// retried) from the fence to the release: that stall is the drain.
// options.cutover_order both-writable moves the application first, as
// before: no stall, but both sides take writes until the fence.
func (r cutoverStep) cutover(ctx context.Context) error {
	if r.output("reverse_start") == "" {
		t0 := time.Now()
		if err := r.guardrails(ctx); err != nil {
			return err
		}
		tdb, flavor, err := r.open(ctx, "target")
		if err != nil {
			return err
		}
		set, err := binlog.Executed(ctx, tdb, flavor)
		tdb.Close()
		if err != nil {
			return err
		}
		if err := r.mark("at_guardrails", t0); err != nil {
			return err
		}
		if err := r.record("reverse_start", set.String()); err != nil {
			return err
		}
	}
	if err := r.chans.start(reverse); err != nil {
		return err
	}
	if r.p.Options.CutoverOrder == OrderBothWritable {
		if err := r.release(ctx); err != nil {
			return err
		}
	}
	if r.output("forward_stopped") == "" {
		if err := r.fenceDrainRelease(ctx); err != nil {
			return err
		}
	}
	if err := r.release(ctx); err != nil {
		return err
	}
	if r.output("events_moved") == "" {
		moved, err := switchEvents(ctx, r.sides, r.operator, "target", "source")
		if err != nil {
			return err
		}
		if err := r.record("events_moved", moved); err != nil {
			return err
		}
	}
	return r.countConflicts(ctx)
}

// switchEvents moves the scheduled events to the primary side: parked
// (SLAVESIDE_DISABLED) on the other first, then enabled on the primary,
// so that no event runs on both (internal/stored). The statements carry
// pitcrew's internal marker: no channel carries them to the other side.
// It returns the events moved ("none").
func switchEvents(ctx context.Context, db *sides, op *operator, primary, other string) (string, error) {
	pdb, _, err := db.open(ctx, primary)
	if err != nil {
		return "", err
	}
	defer pdb.Close()
	odb, _, err := db.open(ctx, other)
	if err != nil {
		return "", err
	}
	defer odb.Close()
	moved, err := stored.SwitchEvents(ctx, pdb, odb, checkpoint.InternalMarker)
	if err != nil {
		return "", fmt.Errorf("moving the events to the %s: %w", primary, err)
	}
	if len(moved) == 0 {
		return "none", nil
	}
	op.say("events now run on the %s: %s", primary, strings.Join(moved, ", "))
	return strings.Join(moved, ","), nil
}

// fenceDrainRelease fences the source, drains the forward channel to what
// the source executed once fenced, and (fence-first) releases the
// application. Between the fence and the release the application cannot
// write: nothing but the fence, the drain and the hook runs there; the
// journal is written after (a crash before it repeats the fence, the
// drain and the hook, which must be safe to run twice), except the intent
// to fence, which a rollback needs to know the source may be fenced.
func (r cutoverStep) fenceDrainRelease(ctx context.Context) error {
	sdb, flavor, err := r.open(ctx, "source")
	if err != nil {
		return err
	}
	defer sdb.Close()
	if err := r.chans.start(forward); err != nil {
		return err
	}
	// Caught up first, while the application still writes: the drain
	// behind the fence is then only the last milliseconds' commits.
	if now, err := binlog.Executed(ctx, sdb, flavor); err != nil {
		return err
	} else if err := r.chans.awaitApplied(ctx, forward, now); err != nil {
		return err
	}
	// Without a hook the operator (or a fleet) says when to go, before the
	// fence: the source stays writable while the operator is not ready.
	if r.p.Options.Hook == "" && r.p.Options.CutoverOrder != OrderBothWritable && r.output("app_moved") == "" {
		if err := r.moveApplication(ctx, "cutover"); err != nil {
			return err
		}
	}
	if err := r.mark("at_fence", time.Now()); err != nil {
		return err
	}
	tFence := time.Now()
	if err := r.fence(ctx, "source", sdb, true); err != nil {
		return err
	}
	tFenced := time.Now()
	goal, err := binlog.Executed(ctx, sdb, flavor)
	if err != nil {
		return err
	}
	lag := r.chans.lag(forward, goal)
	if err := r.chans.awaitApplied(ctx, forward, goal); err != nil {
		return err
	}
	tDrained := time.Now()
	r.say("source fenced (%s) in %s with %s %s behind; drained to %s in %s", r.p.Options.Fence, ms(tFenced.Sub(tFence)), forward, lag, goal, ms(tDrained.Sub(tFenced)))
	var tMove, tMoved time.Time
	if r.p.Options.CutoverOrder != OrderBothWritable && r.output("app_moved") == "" {
		tMove = time.Now()
		if r.p.Options.Hook != "" {
			if err := r.moveApplication(ctx, "cutover"); err != nil {
				return err
			}
		} else {
			r.say("RELEASE: the target holds every write the source acknowledged: move the application's writes to the target now")
		}
		tMoved = time.Now()
	}
	err = r.recordSet([][2]string{
		{"at_fence", stamp(tFence)}, {"source_fenced", stamp(tFenced)}, {"lag_at_fence", lag}, {"at_drained", stamp(tDrained)},
		{"forward_stopped", goal.String()}, {"at_move", stamp(tMove)}, {"app_moved", stamp(tMoved)},
	})
	if err != nil {
		return err
	}
	r.chans.stop(forward)
	r.say("%s stopped; %s keeps the source current for rollback", forward, reverse)
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// release moves the application (hook or operator), once.
func (r cutoverStep) release(ctx context.Context) error {
	if r.output("app_moved") != "" {
		return nil
	}
	t := time.Now()
	if err := r.moveApplication(ctx, "cutover"); err != nil {
		return err
	}
	if err := r.mark("at_move", t); err != nil {
		return err
	}
	return r.mark("app_moved", time.Now())
}

// countConflicts journals how many conflicts both ledgers recorded since
// the cut-over began (a both-writable window's losses are among them).
func (r cutoverStep) countConflicts(ctx context.Context) error {
	since, err := time.Parse(time.RFC3339Nano, r.output("at_guardrails"))
	if err != nil {
		since = r.cur.Started
	}
	var parts []string
	total := 0
	for _, side := range []string{"source", "target"} {
		db, _, err := r.open(ctx, side)
		if err != nil {
			return err
		}
		n, err := conflictsSince(ctx, db, since)
		db.Close()
		if err != nil {
			return err
		}
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", side, n))
	}
	if total > 0 {
		r.say("conflicts since the cut-over began: %s ('pitcrew conflicts list')", strings.Join(parts, ", "))
	}
	return r.record("conflicts", fmt.Sprint(total))
}

// guardrails refuse a cut-over that would lose or collide writes, or whose
// fence would not work, before anything moves.
func (r cutoverStep) guardrails(ctx context.Context) error {
	if err := r.chans.start(forward); err != nil {
		return err
	}
	if err := r.chans.drain(ctx, forward, "source"); err != nil {
		return err
	}
	c := r.chans.get(forward)
	if st := c.s.Status(); time.Duration(st.SecondsBehind*float64(time.Second)) > r.p.Options.MaxLag {
		return r.guardrail("lag under max_lag", fmt.Errorf("guardrail: %s is %.1fs behind, over options.max_lag %s; resume when it has caught up", forward, st.SecondsBehind, r.p.Options.MaxLag))
	}
	r.guardrail("lag under max_lag", nil)
	sdb, _, err := r.open(ctx, "source")
	if err != nil {
		return err
	}
	defer sdb.Close()
	tdb, _, err := r.open(ctx, "target")
	if err != nil {
		return err
	}
	defer tdb.Close()
	var errs []error
	for _, check := range []guardrailCheck{r.autoIncrementApart, r.targetReadable, r.targetKeepsBinlogs, r.fenceWorks, r.noLongTransaction} {
		failed, err := check(ctx, sdb, tdb)
		if err != nil {
			return err
		}
		if failed != nil {
			errs = append(errs, failed)
		}
	}
	if err := r.objectsGuardrail(ctx, sdb, tdb); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// guardrailCheck is one of the cut-over's checks: failed is the guardrail
// that refuses (the console shows each result), err a check that could not
// be made.
type guardrailCheck func(ctx context.Context, sdb, tdb *sql.DB) (failed, err error)

func (r cutoverStep) autoIncrementApart(ctx context.Context, sdb, tdb *sql.DB) (failed, err error) {
	_, problems, err := conflict.Check(ctx, []string{"source", "target"}, map[string]*sql.DB{"source": sdb, "target": tdb})
	if err != nil {
		return nil, err
	}
	var autoinc error
	if len(problems) > 0 {
		autoinc = fmt.Errorf("guardrail: auto-increment offsets let both nodes' inserts collide: %s; fix with 'pitcrew bidi plan' (source and target as the nodes)", conflict.Join(problems))
	}
	return r.guardrail("auto-increment offsets apart", autoinc), nil
}

func (r cutoverStep) targetReadable(ctx context.Context, _, tdb *sql.DB) (failed, err error) {
	info, err := binlog.Inspect(ctx, tdb)
	if err != nil {
		return nil, err
	}
	if err := info.CheckSource(); err != nil {
		return r.guardrail("target readable as a source", fmt.Errorf("guardrail: the reverse channel cannot read the target: %w", err)), nil
	}
	return r.guardrail("target readable as a source", nil), nil
}

func (r cutoverStep) targetKeepsBinlogs(ctx context.Context, _, tdb *sql.DB) (failed, err error) {
	keep, err := r.retentionProblem(ctx, tdb)
	if err != nil {
		return nil, err
	}
	var kept error
	if keep != "" {
		kept = fmt.Errorf("guardrail: %s", keep)
	}
	return r.guardrail("target keeps its binlogs", kept), nil
}

func (r cutoverStep) fenceWorks(ctx context.Context, sdb, tdb *sql.DB) (failed, err error) {
	var errs []error
	for _, side := range []struct {
		name string
		db   *sql.DB
	}{{"source", sdb}, {"target", tdb}} {
		probs, err := r.fenceProblems(ctx, side.name, side.db)
		if err != nil {
			return nil, err
		}
		if err := r.guardrail("the fence works on the "+side.name, joinProblems(probs)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...), nil
}

func (r cutoverStep) noLongTransaction(ctx context.Context, sdb, _ *sql.DB) (failed, err error) {
	var longest sql.NullInt64
	if err := sdb.QueryRowContext(ctx, "SELECT MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())) FROM information_schema.INNODB_TRX").Scan(&longest); err != nil {
		return nil, fmt.Errorf("reading information_schema.INNODB_TRX on the source: %w", err)
	}
	var long error
	if longest.Valid && time.Duration(longest.Int64)*time.Second > r.p.Options.LongTransaction {
		long = fmt.Errorf("guardrail: a source transaction has been open %ds, over options.long_transaction %s: its commit would land after the fence; finish or kill it, then resume", longest.Int64, r.p.Options.LongTransaction)
	}
	return r.guardrail("no long source transaction", long), nil
}

// ConfirmFile is where 'pitcrew migrate confirm' tells a waiting run that
// the application moved (the journal is locked by that run).
func ConfirmFile(p *Plan, phase string) string {
	return filepath.Join(p.DataDir, "confirm-"+phase)
}
