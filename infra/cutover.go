package infra

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/apply"
	"github.com/pitcrew/pitcrew/internal/binlog"
	"github.com/pitcrew/pitcrew/internal/conn"
	"github.com/pitcrew/pitcrew/internal/preflight"
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
			a = append(a, Action{"pitcrew", "preflight checks of source and target; any FAIL stops here"})
		}
		return append(a,
			Action{"pitcrew", fmt.Sprintf("channel %s (server_id %d) from %s; checkpoints in %s", forward, p.Options.ServerID, from, filepath.Join(p.DataDir, "channels", forward))},
			Action{"source database", "SELECT @@GLOBAL.gtid_binlog_pos (MariaDB) / @@GLOBAL.gtid_executed (MySQL); wait until the channel applied it"})
	},
	run: func(ctx context.Context, r *run) error {
		if r.p.aws() {
			if err := r.preflight(ctx, true); err != nil {
				return err
			}
		}
		if err := r.startChannel(forward); err != nil {
			return err
		}
		return r.drain(ctx, forward, "source")
	},
}

// drain waits until a direction applied everything its source has executed
// now.
func (r *run) drain(ctx context.Context, name, from string) error {
	db, flavor, err := r.open(ctx, from)
	if err != nil {
		return err
	}
	defer db.Close()
	goal, err := binlog.Executed(ctx, db, flavor)
	if err != nil {
		return err
	}
	return r.waitApplied(ctx, name, goal)
}

// open connects to one side's database with the applier's session settings.
func (r *run) open(ctx context.Context, side string) (*sql.DB, string, error) {
	e, err := r.endpoint(side)
	if err != nil {
		return nil, "", err
	}
	db, err := conn.Open(e, conn.Options{Init: apply.Session})
	if err != nil {
		return nil, "", err
	}
	if err := conn.Ping(ctx, db, side+" database", e); err != nil {
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
	title: "guardrails, reverse channel on, application moved, source fenced, forward drained and stopped",
	skip:  func(*Plan) string { return "" },
	actions: func(p *Plan) []Action {
		move := "wait for 'pitcrew migrate confirm --plan FILE' (the operator moved the application)"
		if p.Options.Hook != "" {
			move = "run hook: " + p.Options.Hook + " cutover"
		}
		return []Action{
			{"pitcrew", fmt.Sprintf("guardrails: %s lag <= %s; auto_increment offsets keep both nodes' inserts apart; the target serves binlog to a replica and the source accepts our writes while fenced; no source transaction older than %s", forward, p.Options.MaxLag, p.Options.LongTransaction)},
			{"target database", "SELECT @@GLOBAL.gtid_binlog_pos / @@GLOBAL.gtid_executed -> where the reverse channel starts (journaled)"},
			{"pitcrew", fmt.Sprintf("channel %s (server_id %d): both directions run, echoes dropped", reverse, p.Options.ServerID+1)},
			{"pitcrew", move},
			{"source database", fenceSQL(p, true)},
			{"source database", "SELECT the executed GTID set -> the exact drain goal; wait until " + forward + " applied it; stop " + forward},
		}
	},
	run: runCutover,
}

func runCutover(ctx context.Context, r *run) error {
	if r.output("reverse_start") == "" {
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
		if err := r.record("reverse_start", set.String()); err != nil {
			return err
		}
	}
	if err := r.startChannel(reverse); err != nil {
		return err
	}
	if r.output("app_moved") == "" {
		if err := r.moveApplication(ctx, "cutover"); err != nil {
			return err
		}
		if err := r.record("app_moved", time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	if r.output("forward_stopped") != "" {
		return nil
	}
	sdb, flavor, err := r.open(ctx, "source")
	if err != nil {
		return err
	}
	defer sdb.Close()
	if err := r.fence(ctx, sdb, true); err != nil {
		return err
	}
	r.say("source fenced (%s)", r.p.Options.Fence)
	if err := r.record("source_fenced", "true"); err != nil {
		return err
	}
	goal, err := binlog.Executed(ctx, sdb, flavor)
	if err != nil {
		return err
	}
	if err := r.startChannel(forward); err != nil {
		return err
	}
	if err := r.waitApplied(ctx, forward, goal); err != nil {
		return err
	}
	r.chans.stop(forward)
	r.say("%s drained to %s and stopped; %s keeps the source current for rollback", forward, goal, reverse)
	return r.record("forward_stopped", goal.String())
}

// guardrails refuse a cut-over that would lose or collide writes.
func (r *run) guardrails(ctx context.Context) error {
	if err := r.startChannel(forward); err != nil {
		return err
	}
	if err := r.drain(ctx, forward, "source"); err != nil {
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
	_, problems, err := conflict.Check(ctx, []string{"source", "target"}, map[string]*sql.DB{"source": sdb, "target": tdb})
	if err != nil {
		return err
	}
	var autoinc error
	if len(problems) > 0 {
		autoinc = fmt.Errorf("guardrail: auto-increment offsets let both nodes' inserts collide: %s; fix with 'pitcrew bidi plan' (source and target as the nodes)", conflict.Join(problems))
	}
	if err := r.guardrail("auto-increment offsets apart", autoinc); err != nil {
		errs = append(errs, err)
	}
	info, err := binlog.Inspect(ctx, tdb)
	if err != nil {
		return err
	}
	if err := info.CheckSource(); err != nil {
		errs = append(errs, r.guardrail("target readable as a source", fmt.Errorf("guardrail: the reverse channel cannot read the target: %w", err)))
	} else {
		r.guardrail("target readable as a source", nil)
	}
	if r.p.Options.Fence == FenceReadOnly {
		ok, err := preflight.HasGlobalPrivilege(ctx, sdb, "SUPER", "READ_ONLY ADMIN", "CONNECTION_ADMIN")
		if err != nil {
			return err
		}
		var fenced error
		if !ok {
			fenced = fmt.Errorf("guardrail: user %s cannot write to the source once read_only fences it, so the reverse channel would stop: grant it READ_ONLY ADMIN (MariaDB) or CONNECTION_ADMIN (MySQL), or set options.fence: lock_users with options.app_users", r.p.Source.Database.User)
		}
		if err := r.guardrail("our user passes read_only", fenced); err != nil {
			errs = append(errs, err)
		}
	}
	var longest sql.NullInt64
	if err := sdb.QueryRowContext(ctx, "SELECT MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())) FROM information_schema.INNODB_TRX").Scan(&longest); err != nil {
		return fmt.Errorf("reading information_schema.INNODB_TRX on the source: %w", err)
	}
	var long error
	if longest.Valid && time.Duration(longest.Int64)*time.Second > r.p.Options.LongTransaction {
		long = fmt.Errorf("guardrail: a source transaction has been open %ds, over options.long_transaction %s: its commit would land after the fence; finish or kill it, then resume", longest.Int64, r.p.Options.LongTransaction)
	}
	if err := r.guardrail("no long source transaction", long); err != nil {
		errs = append(errs, err)
	}
	if err := r.objectsGuardrail(ctx, sdb, tdb); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fenceSQL is what fencing (or unfencing) a side runs, for the preview.
func fenceSQL(p *Plan, on bool) string {
	if p.Options.Fence == FenceLockUsers {
		verb := "LOCK"
		if !on {
			verb = "UNLOCK"
		}
		s := fmt.Sprintf("ALTER USER <each account of %s> ACCOUNT %s", strings.Join(p.Options.AppUsers, ", "), verb)
		if on {
			s += "; KILL their connections"
		}
		return s
	}
	if on {
		return "SET GLOBAL read_only = ON"
	}
	return "SET GLOBAL read_only = OFF"
}

// fence stops (on) or lets back (off) the application's writes to a side.
// read_only spares users with SUPER / READ_ONLY ADMIN, as our channels are
// (the guardrail checks it); lock_users locks only the listed accounts.
func (r *run) fence(ctx context.Context, db *sql.DB, on bool) error {
	if r.p.Options.Fence == FenceReadOnly {
		v := "OFF"
		if on {
			v = "ON"
		}
		if _, err := db.ExecContext(ctx, "SET GLOBAL read_only = "+v); err != nil {
			return fmt.Errorf("SET GLOBAL read_only = %s: %w (on RDS set read_only in the parameter group, or use options.fence: lock_users)", v, err)
		}
		return nil
	}
	q := "SELECT User, Host FROM mysql.user WHERE User IN (?" + strings.Repeat(",?", len(r.p.Options.AppUsers)-1) + ")"
	args := make([]any, len(r.p.Options.AppUsers))
	for i, u := range r.p.Options.AppUsers {
		args[i] = u
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("listing the application's accounts: %w", err)
	}
	var accounts [][2]string
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			rows.Close()
			return err
		}
		accounts = append(accounts, [2]string{u, h})
	}
	rows.Close()
	verb := "UNLOCK"
	if on {
		verb = "LOCK"
	}
	for _, a := range accounts {
		if _, err := db.ExecContext(ctx, "ALTER USER ?@? ACCOUNT "+verb, a[0], a[1]); err != nil {
			return fmt.Errorf("ALTER USER %s@%s ACCOUNT %s: %w", a[0], a[1], verb, err)
		}
	}
	if !on {
		return nil
	}
	ids, err := sessionsOf(ctx, db, r.p.Options.AppUsers)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil && conn.Code(err) != 1094 { // 1094: already gone
			return fmt.Errorf("KILL %d: %w", id, err)
		}
	}
	return nil
}

func sessionsOf(ctx context.Context, db *sql.DB, users []string) ([]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT ID, USER FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()")
	if err != nil {
		return nil, fmt.Errorf("reading the process list: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		var u string
		if err := rows.Scan(&id, &u); err != nil {
			return nil, err
		}
		for _, x := range users {
			if u == x {
				ids = append(ids, id)
			}
		}
	}
	return ids, rows.Err()
}

// moveApplication runs the hook (hook PHASE) or waits for the operator's
// 'pitcrew migrate confirm'.
func (r *run) moveApplication(ctx context.Context, phase string) error {
	if h := r.p.Options.Hook; h != "" {
		r.say("running hook: %s %s", h, phase)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h+` "$0"`, phase)
		cmd.Env = append(os.Environ(), "PITCREW_MIGRATION="+r.p.Name, "PITCREW_PHASE="+phase)
		cmd.Stdout, cmd.Stderr = r.out, r.out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("hook %s %s failed: %w; fix it (it must be safe to run twice), then resume", h, phase, err)
		}
		return nil
	}
	file := ConfirmFile(r.p, phase)
	to := "target"
	if phase == "rollback" {
		to = "source"
	}
	r.say("ACTION NEEDED: move the application's writes to the %s now, then run: pitcrew migrate confirm --plan FILE%s", to, map[bool]string{true: " --rollback"}[phase == "rollback"])
	r.rn.live.set(func(l *live) { l.confirm = phase })
	defer r.rn.live.set(func(l *live) { l.confirm = "" })
	// A local file: checked every second, whatever the AWS polling interval.
	return r.pollEvery(ctx, "the operator's 'pitcrew migrate confirm'", min(r.p.Options.PollInterval, time.Second), func(context.Context) (bool, error) {
		if _, err := os.Stat(file); err == nil {
			return true, os.Remove(file)
		}
		return false, nil
	})
}

// ConfirmFile is where 'pitcrew migrate confirm' tells a waiting run that
// the application moved (the journal is locked by that run).
func ConfirmFile(p *Plan, phase string) string {
	return filepath.Join(p.DataDir, "confirm-"+phase)
}
