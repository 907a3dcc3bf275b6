package infra

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/jobs/preflight"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

// Fences: how a side stops taking the application's writes. The side
// fenced is the source at the cut-over and the target at a rollback.
//
// A fence statement never reaches the other side: fenced accounts locked on
// the new database would lock the application out of where it just moved
// (error 4151). The fence session turns its binlog off where it may
// (sql_log_bin=0 needs SUPER / BINLOG ADMIN, which RDS does not give), its
// statements carry checkpoint.InternalMarker, which every channel drops,
// and the migration channels drop account locks of options.app_users
// (syncer.Config.FenceUsers: MySQL logs ALTER USER rewritten, without the
// comment).
const (
	FenceReadOnly       = "read_only"       // SET GLOBAL read_only (refused on RDS: no SUPER)
	FenceParameterGroup = "parameter_group" // read_only=1 in the side's RDS DB parameter group (dynamic)
	FenceLockUsers      = "lock_users"      // ALTER USER ... ACCOUNT LOCK of app_users, their sessions ended
)

// fenceSQL is what fencing (or unfencing) a side runs, for the preview.
func fenceSQL(p *Plan, side string, on bool) string {
	verb, v, onoff := "LOCK", "1", "ON"
	if !on {
		verb, v, onoff = "UNLOCK", "0", "OFF"
	}
	switch p.Options.Fence {
	case FenceLockUsers:
		s := fmt.Sprintf("%sALTER USER <each account of %s> ACCOUNT %s (not binlogged: sql_log_bin=0 where allowed, the channels drop it)", checkpoint.InternalMarker, strings.Join(p.Options.AppUsers, ", "), verb)
		if on {
			s += "; end their sessions (KILL, on RDS CALL mysql.rds_kill) and wait until they are gone"
		}
		return s
	case FenceParameterGroup:
		s := p.sideOf(side)
		return fmt.Sprintf("rds:ModifyDBParameterGroup DBParameterGroupName=%s read_only=%s ApplyMethod=immediate; wait until SELECT @@GLOBAL.read_only = %s on %s", s.groupName(), v, v, s.Instance)
	}
	return "SET GLOBAL read_only = " + onoff
}

func (p *Plan) sideOf(side string) *Side {
	if side == "target" {
		return &p.Target
	}
	return &p.Source
}

func (s *Side) groupName() string {
	if s.ParameterGroup != "" {
		return s.ParameterGroup
	}
	return "<the instance's parameter group>"
}

// fencer puts up and takes down the fence of options.fence, and checks
// beforehand that it will work.
type fencer struct {
	plan *Plan
	aws  *cloud    // the parameter-group fence
	op   *operator // its waits
}

// fence stops (on) or lets back (off) the application's writes to a side.
// read_only spares users with READ_ONLY ADMIN / CONNECTION_ADMIN, as our
// channels are (the guardrail checks it); lock_users locks only the listed
// accounts. When it returns with on, no write of the application commits
// on that side any more.
func (f *fencer) fence(ctx context.Context, side string, db *sql.DB, on bool) error {
	switch f.plan.Options.Fence {
	case FenceParameterGroup:
		return f.fenceGroup(ctx, side, db, on)
	case FenceLockUsers:
		return f.lockUsers(ctx, db, on)
	}
	v := "OFF"
	if on {
		v = "ON"
	}
	if _, err := db.ExecContext(ctx, "SET GLOBAL read_only = "+v); err != nil {
		return fmt.Errorf("SET GLOBAL read_only = %s on the %s: %w (on RDS use options.fence: parameter_group or lock_users)", v, side, err)
	}
	return nil
}

// fenceGroup sets read_only in the side's parameter group and waits until
// the server itself reports it: only then is the fence up.
func (f *fencer) fenceGroup(ctx context.Context, side string, db *sql.DB, on bool) error {
	c, err := f.aws.awsClients(ctx)
	if err != nil {
		return err
	}
	a := c.source
	if side == "target" {
		a = c.target
	}
	group, err := groupOf(ctx, a, f.plan.sideOf(side))
	if err != nil {
		return err
	}
	have, err := describeParams(ctx, a, group)
	if err != nil {
		return err
	}
	v := "0"
	if on {
		v = "1"
	}
	return setParam(ctx, f.op, a, db, group, have, "read_only", v, "read_only")
}

// groupOf is the side's parameter group: the plan's, else the one attached
// to its instance.
func groupOf(ctx context.Context, a *account, s *Side) (string, error) {
	if s.ParameterGroup != "" {
		return s.ParameterGroup, nil
	}
	out, err := a.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(s.Instance)})
	if err != nil {
		return "", fmt.Errorf("rds:DescribeDBInstances %s: %w", s.Instance, err)
	}
	if len(out.DBInstances) == 0 || len(out.DBInstances[0].DBParameterGroups) == 0 {
		return "", fmt.Errorf("instance %s has no parameter group: set parameter_group in the plan", s.Instance)
	}
	return aws.ToString(out.DBInstances[0].DBParameterGroups[0].DBParameterGroupName), nil
}

// lockUsers locks (or unlocks) every account of options.app_users on one
// session whose statements stay on this side, then ends their sessions and
// waits until they are gone (KILL only marks a session: one in the middle
// of a COMMIT may still land it).
func (f *fencer) lockUsers(ctx context.Context, db *sql.DB, on bool) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin = 0"); err != nil && conn.Code(err) != 1227 { // 1227: no privilege (RDS)
		return fmt.Errorf("SET SESSION sql_log_bin = 0: %w", err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_log_bin = 1") //nolint:errcheck // the session is discarded on error
	accounts, err := accountsOf(ctx, c, f.plan.Options.AppUsers)
	if err != nil {
		return err
	}
	verb := "UNLOCK"
	if on {
		verb = "LOCK"
	}
	for _, a := range accounts {
		q := checkpoint.InternalMarker + "ALTER USER " + a + " ACCOUNT " + verb
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("ALTER USER %s ACCOUNT %s: %w", a, verb, err)
		}
	}
	if !on {
		return nil
	}
	rdsKill, err := hasRDSKill(ctx, c)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(f.plan.Options.Timeout)
	for {
		ids, err := sessionsOf(ctx, c, f.plan.Options.AppUsers)
		if err != nil || len(ids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sessions %v of %s still there after %s (options.timeout) although killed", ids, strings.Join(f.plan.Options.AppUsers, ", "), f.plan.Options.Timeout)
		}
		for _, id := range ids {
			q := fmt.Sprintf("KILL %d", id)
			if rdsKill {
				q = fmt.Sprintf("CALL mysql.rds_kill(%d)", id)
			}
			if _, err := c.ExecContext(ctx, q); err != nil && conn.Code(err) != 1094 { // 1094: already gone
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// queryer is a *sql.DB or one of its sessions.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// accountsOf lists the accounts ('user'@'host', quoted) of the users.
func accountsOf(ctx context.Context, db queryer, users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	q := "SELECT User, Host FROM mysql.user WHERE User IN (?" + strings.Repeat(",?", len(users)-1) + ") ORDER BY User, Host"
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing the application's accounts in mysql.user: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			return nil, err
		}
		out = append(out, quoteString(u)+"@"+quoteString(h))
	}
	return out, rows.Err()
}

// quoteString is a SQL string literal, safe under any sql_mode.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

func sessionsOf(ctx context.Context, db queryer, users []string) ([]int64, error) {
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

func hasRDSKill(ctx context.Context, db queryer) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = 'rds_kill'").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("looking for mysql.rds_kill: %w", err)
	}
	return n > 0, nil
}

// fenceProblems proves, before the application moves, that the fence will
// work on a side (source: at the cut-over; target: at a rollback), and on
// the source that our channel still writes there once it is up. Each
// problem is one line with its fix.
func (f *fencer) fenceProblems(ctx context.Context, side string, db *sql.DB) ([]string, error) {
	o := f.plan.Options
	e := f.plan.sideOf(side).Database
	rdsServer, why, err := binlog.RDS(ctx, db)
	if err != nil {
		return nil, err
	}
	info, err := binlog.Inspect(ctx, db)
	if err != nil {
		return nil, err
	}
	var probs []string
	has := func(alternatives ...string) bool {
		ok, err2 := preflight.HasGlobalPrivilege(ctx, db, alternatives...)
		if err2 != nil && err == nil {
			err = err2
		}
		return ok
	}
	passes := passReadOnly(info)
	switch o.Fence {
	case FenceReadOnly:
		if rdsServer {
			probs = append(probs, fmt.Sprintf("the %s is RDS (%s): it refuses SET GLOBAL read_only; set options.fence: parameter_group (read_only through its DB parameter group) or lock_users (with options.app_users)", side, why))
		} else if !has(append([]string{"SUPER", "SYSTEM_VARIABLES_ADMIN"}, passes...)...) {
			probs = append(probs, fmt.Sprintf("user %s cannot SET GLOBAL read_only on the %s: grant it %s, or set options.fence: lock_users", e.User, side, strings.Join(passes, " or ")))
		}
	case FenceParameterGroup:
		p, err := f.groupProblems(ctx, side)
		if err != nil {
			return nil, err
		}
		probs = append(probs, p...)
	case FenceLockUsers:
		p, err := lockProblems(ctx, db, side, e.User, o.AppUsers, rdsServer, has)
		if err != nil {
			return nil, err
		}
		probs = append(probs, p...)
	}
	if side == "source" && o.Fence != FenceLockUsers && !has(passes...) {
		probs = append(probs, fmt.Sprintf("user %s cannot write to the source once read_only fences it, so the reverse channel would stop: grant it %s, or set options.fence: lock_users with options.app_users", e.User, strings.Join(passes, " or ")))
	}
	return probs, err
}

// passReadOnly: the privileges that let a user write on a read_only server.
// MariaDB 10.11 split READ_ONLY ADMIN from SUPER.
func passReadOnly(info binlog.ServerInfo) []string {
	if info.Flavor == gtid.MariaDB {
		var major, minor int
		if n, _ := fmt.Sscanf(info.Version, "%d.%d", &major, &minor); n == 2 && (major < 10 || major == 10 && minor < 11) {
			return []string{"SUPER", "READ_ONLY ADMIN"}
		}
		return []string{"READ_ONLY ADMIN"}
	}
	return []string{"SUPER", "CONNECTION_ADMIN"}
}

func lockProblems(ctx context.Context, db *sql.DB, side, us string, users []string, rdsServer bool, has func(...string) bool) ([]string, error) {
	var probs []string
	for _, u := range users {
		if u == us {
			probs = append(probs, fmt.Sprintf("options.app_users names %s, the user pitcrew connects to the %s with: the fence would lock pitcrew out; use an account of pitcrew's own", u, side))
		}
	}
	accounts, err := accountsOf(ctx, db, users)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if !strings.Contains(strings.Join(accounts, ","), quoteString(u)+"@") {
			probs = append(probs, fmt.Sprintf("options.app_users %s has no account on the %s (mysql.user): the fence would leave its writes open; create it there or correct app_users", u, side))
		}
	}
	if !has("CREATE USER") {
		probs = append(probs, fmt.Sprintf("user %s cannot lock accounts on the %s: GRANT CREATE USER ON *.* TO it", us, side))
	}
	if !has("PROCESS") {
		probs = append(probs, fmt.Sprintf("user %s cannot see the application's sessions on the %s to end them: GRANT PROCESS ON *.* TO it", us, side))
	}
	if rdsServer {
		ok, err := hasRDSKill(ctx, db)
		if err != nil {
			return nil, err
		}
		if !ok {
			probs = append(probs, fmt.Sprintf("the %s is RDS but user %s cannot run mysql.rds_kill to end the application's sessions: use the master user or GRANT EXECUTE ON PROCEDURE mysql.rds_kill", side, us))
		}
	} else if !has("SUPER", "CONNECTION ADMIN", "CONNECTION_ADMIN") {
		probs = append(probs, fmt.Sprintf("user %s cannot end other users' sessions on the %s: grant it CONNECTION ADMIN (MariaDB) or CONNECTION_ADMIN (MySQL)", us, side))
	}
	return probs, nil
}

// groupProblems: a parameter-group fence needs a custom group of the
// side's instance's own (a shared group would fence every instance in it).
func (f *fencer) groupProblems(ctx context.Context, side string) ([]string, error) {
	c, err := f.aws.awsClients(ctx)
	if err != nil {
		return nil, err
	}
	a, s := c.source, f.plan.sideOf(side)
	if side == "target" {
		a = c.target
	}
	group, err := groupOf(ctx, a, s)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(group, "default.") {
		return []string{fmt.Sprintf("the %s's parameter group %s is a default one, which cannot be changed: attach a custom group to %s and set %s.parameter_group, or set options.fence: lock_users", side, group, s.Instance, side)}, nil
	}
	var probs, users []string
	attached := false
	pg := rds.NewDescribeDBInstancesPaginator(a.rds, &rds.DescribeDBInstancesInput{})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("rds:DescribeDBInstances: %w", err)
		}
		for _, inst := range out.DBInstances {
			for _, g := range inst.DBParameterGroups {
				if aws.ToString(g.DBParameterGroupName) != group {
					continue
				}
				if aws.ToString(inst.DBInstanceIdentifier) == s.Instance {
					attached = true
				} else {
					users = append(users, aws.ToString(inst.DBInstanceIdentifier))
				}
			}
		}
	}
	if !attached {
		probs = append(probs, fmt.Sprintf("the %s's parameter group %s is not attached to %s: its read_only would fence nothing; attach it (it applies after a reboot) or correct %s.parameter_group", side, group, s.Instance, side))
	}
	if len(users) > 0 {
		probs = append(probs, fmt.Sprintf("the %s's parameter group %s is also used by %s: read_only there would fence them too; give %s a group of its own, or set options.fence: lock_users", side, group, strings.Join(users, ", "), s.Instance))
	}
	if _, err := describeParams(ctx, a, group); err != nil {
		probs = append(probs, err.Error())
	}
	return probs, nil
}

// retentionProblem: the reverse channel streams the new database's binlog
// until take-down; a binlog purged before it was read ends the way back.
func (r cutoverStep) retentionProblem(ctx context.Context, tdb *sql.DB) (string, error) {
	hours, rdsServer, err := binlog.Retention(ctx, tdb)
	if err != nil {
		return "", fmt.Errorf("reading the target's binlog retention: %w", err)
	}
	want := r.p.Options.BinlogRetentionHours
	fix := fmt.Sprintf("SET GLOBAL binlog_expire_logs_seconds = %d (and in the server's config)", want*3600)
	if rdsServer {
		fix = fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d)", want)
	}
	switch {
	case hours < 0:
		return fmt.Sprintf("the target purges its binlogs as soon as it can (RDS 'binlog retention hours' is NULL): the reverse channel would lose the way back; on the target: %s", fix), nil
	case hours > 0 && hours < float64(want):
		return fmt.Sprintf("the target keeps binlogs %.0f hours, under options.binlog_retention_hours %d: the reverse channel could find them purged after a stop; on the target: %s", hours, want, fix), nil
	}
	return "", nil
}

var errFence = errors.New("guardrail")

// joinProblems turns problem lines into one guardrail error.
func joinProblems(probs []string) error {
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", errFence, strings.Join(probs, "; "))
}

// conflictsSince counts a node's ledger entries recorded since t.
func conflictsSince(ctx context.Context, db *sql.DB, t time.Time) (int, error) {
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_pitcrew' AND TABLE_NAME = 'conflicts'").Scan(&tables); err != nil || tables == 0 {
		return 0, err
	}
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `_pitcrew`.`conflicts` WHERE created_at >= ?", t.UTC().Format("2006-01-02 15:04:05.000000")).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting conflicts: %w", err)
	}
	return n, nil
}
