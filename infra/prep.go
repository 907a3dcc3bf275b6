package infra

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/pitcrew/pitcrew/internal/jobs/preflight"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

// gtidModes is MySQL's ladder: gtid_mode moves one rung at a time, each
// applied (and seen by the server) before the next.
var gtidModes = []string{"OFF", "OFF_PERMISSIVE", "ON_PERMISSIVE", "ON"}

var stepSourcePrep = step{
	id:    "source-prep",
	title: "source: GTID on before any snapshot, binlog_format=ROW, binlog retention, preflight checks",
	skip:  func(*Plan) string { return "" },
	actions: func(p *Plan) []Action {
		var a []Action
		if p.aws() {
			a = append(a,
				Action{srcWhere(p), "rds:DescribeDBInstances DBInstanceIdentifier=" + p.Source.Instance + " (refused: default parameter group, backups off)"},
				Action{srcWhere(p), "rds:DescribeDBParameters DBParameterGroupName=" + p.sourceGroup() + " Source=user"},
				Action{srcWhere(p), "rds:ModifyDBParameterGroup binlog_format=ROW ApplyMethod=immediate (if not ROW)"})
			if p.Source.Engine == "mysql" {
				a = append(a,
					Action{srcWhere(p), "rds:ModifyDBParameterGroup enforce_gtid_consistency=ON ApplyMethod=immediate (if not ON); confirm SELECT @@GLOBAL.enforce_gtid_consistency"},
					Action{srcWhere(p), "rds:ModifyDBParameterGroup gtid-mode=<next of OFF_PERMISSIVE, ON_PERMISSIVE, ON> ApplyMethod=immediate, one rung at a time, each confirmed by SELECT @@GLOBAL.gtid_mode"})
			}
			a = append(a, Action{"source database", fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d)", p.Options.BinlogRetentionHours)})
		}
		checks := "source and target"
		if p.aws() {
			checks = "source (the target does not exist yet)"
		}
		return append(a, Action{"pitcrew", "preflight checks of the " + checks + "; any FAIL stops here"})
	},
	run: func(ctx context.Context, r *run) error { return r.prepStep().sourcePrep(ctx) },
}

func (p *Plan) sourceGroup() string {
	if p.Source.ParameterGroup != "" {
		return p.Source.ParameterGroup
	}
	return "<the instance's parameter group>"
}

func (r prepStep) sourcePrep(ctx context.Context) error {
	var c *clients
	var in sourceInstance
	if r.p.aws() {
		var err error
		if c, err = r.awsClients(ctx); err != nil {
			return err
		}
		if in, err = r.sourceInstance(ctx, c); err != nil {
			return err
		}
	}
	e, err := r.endpoint("source")
	if err != nil {
		return err
	}
	db, err := conn.Open(e)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := conn.Ping(ctx, db, "source", e); err != nil {
		return err
	}
	if r.p.aws() {
		if err := r.sourceSettings(ctx, c, db, in); err != nil {
			return err
		}
	}
	return r.preflight(ctx, !r.p.aws())
}

// sourceInstance is what source-prep learns of the RDS source: its
// parameter group and the group's user-set parameters.
type sourceInstance struct {
	group  string
	params map[string]string
}

// sourceInstance checks the source instance (backups on, a custom
// parameter group) and journals its endpoint.
func (r prepStep) sourceInstance(ctx context.Context, c *clients) (sourceInstance, error) {
	var in sourceInstance
	out, err := c.source.rds.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(r.p.Source.Instance)})
	if err != nil {
		return in, fmt.Errorf("rds:DescribeDBInstances %s: %w", r.p.Source.Instance, err)
	}
	if len(out.DBInstances) == 0 {
		return in, fmt.Errorf("source instance %s not found in account %s", r.p.Source.Instance, r.p.Source.Account)
	}
	inst := out.DBInstances[0]
	if aws.ToInt32(inst.BackupRetentionPeriod) == 0 {
		return in, fmt.Errorf("automated backups are off on %s: RDS writes no binlog without them; set a backup retention of at least 1 day, then resume", r.p.Source.Instance)
	}
	in.group = r.p.Source.ParameterGroup
	if in.group == "" && len(inst.DBParameterGroups) > 0 {
		in.group = aws.ToString(inst.DBParameterGroups[0].DBParameterGroupName)
	}
	if strings.HasPrefix(in.group, "default.") || in.group == "" {
		return in, fmt.Errorf("source instance %s uses the default parameter group %q, which cannot be changed: create a custom one, attach it to the instance, set source.parameter_group, then resume", r.p.Source.Instance, in.group)
	}
	if inst.Endpoint != nil && r.p.Source.Database.Host == "" {
		if err := r.record("endpoint", aws.ToString(inst.Endpoint.Address)); err != nil {
			return in, err
		}
	}
	in.params, err = describeParams(ctx, c.source, in.group)
	return in, err
}

// sourceSettings sets binlog_format=ROW, GTIDs on (MySQL) and the binlog
// retention on the RDS source.
func (r prepStep) sourceSettings(ctx context.Context, c *clients, db *sql.DB, in sourceInstance) error {
	if err := setParam(ctx, r.operator, c.source, db, in.group, in.params, "binlog_format", "ROW", "binlog_format"); err != nil {
		return err
	}
	if r.p.Source.Engine == "mysql" {
		if err := gtidOn(ctx, r.operator, c.source, db, in.group, in.params); err != nil {
			return err
		}
	}
	_, rdsProc, err := binlog.Retention(ctx, db)
	if err != nil {
		return fmt.Errorf("reading binlog retention: %w", err)
	}
	if rdsProc {
		q := fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d)", r.p.Options.BinlogRetentionHours)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		r.say("binlog retention set to %d hours", r.p.Options.BinlogRetentionHours)
	}
	return nil
}

// preflight runs pitcrew's checks; withTarget=false keeps only the source's
// lines (before the restore there is no target).
func (r prepStep) preflight(ctx context.Context, withTarget bool) error {
	src, err := r.endpoint("source")
	if err != nil {
		return err
	}
	cfg := preflight.Config{Source: src, ServerID: r.p.Options.ServerID}
	if withTarget {
		if cfg.Target, err = r.endpoint("target"); err != nil {
			return err
		}
	}
	var fails []error
	for _, res := range preflight.Run(ctx, cfg) {
		if !withTarget && res.Side != "source" {
			continue
		}
		if res.Level != preflight.Pass {
			r.say("%s %s %s: %s %s", res.Level, res.Side, res.Check, res.Detail, res.Fix)
		}
		if res.Level == preflight.Fail {
			fails = append(fails, fmt.Errorf("%s %s: %s (fix: %s)", res.Side, res.Check, res.Detail, res.Fix))
		}
	}
	if len(fails) > 0 {
		return fmt.Errorf("preflight failed: %w", errors.Join(fails...))
	}
	return nil
}

func describeParams(ctx context.Context, a *account, group string) (map[string]string, error) {
	params := map[string]string{}
	pg := rds.NewDescribeDBParametersPaginator(a.rds, &rds.DescribeDBParametersInput{DBParameterGroupName: aws.String(group)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("rds:DescribeDBParameters %s: %w", group, err)
		}
		for _, p := range out.Parameters {
			params[aws.ToString(p.ParameterName)] = aws.ToString(p.ParameterValue)
		}
	}
	return params, nil
}

// setParam sets one dynamic parameter in the group (when it differs) and
// waits until the server itself reports the value.
func setParam(ctx context.Context, op *operator, a *account, db *sql.DB, group string, have map[string]string, name, value, variable string) error {
	if !strings.EqualFold(have[name], value) {
		_, err := a.rds.ModifyDBParameterGroup(ctx, &rds.ModifyDBParameterGroupInput{
			DBParameterGroupName: aws.String(group),
			Parameters:           []rdstypes.Parameter{{ParameterName: aws.String(name), ParameterValue: aws.String(value), ApplyMethod: rdstypes.ApplyMethodImmediate}},
		})
		if err != nil {
			return fmt.Errorf("rds:ModifyDBParameterGroup %s %s=%s: %w", group, name, value, err)
		}
		have[name] = value
		op.say("parameter group %s: %s=%s", group, name, value)
	}
	return op.poll(ctx, fmt.Sprintf("@@GLOBAL.%s to become %s on the %s database", variable, value, a.role), func(ctx context.Context) (bool, error) {
		var v string
		if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL."+variable).Scan(&v); err != nil {
			return false, fmt.Errorf("reading @@GLOBAL.%s: %w", variable, err)
		}
		return strings.EqualFold(v, value) || (value == "ON" && v == "1"), nil
	})
}

// gtidOn climbs MySQL's gtid_mode ladder from where the server is.
func gtidOn(ctx context.Context, op *operator, a *account, db *sql.DB, group string, have map[string]string) error {
	if err := setParam(ctx, op, a, db, group, have, "enforce_gtid_consistency", "ON", "enforce_gtid_consistency"); err != nil {
		return err
	}
	var cur string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_mode").Scan(&cur); err != nil {
		return fmt.Errorf("reading @@GLOBAL.gtid_mode: %w", err)
	}
	for _, m := range gtidRungs(cur) {
		have["gtid-mode"] = "" // each rung is a change
		if err := setParam(ctx, op, a, db, group, have, "gtid-mode", m, "gtid_mode"); err != nil {
			return err
		}
	}
	return nil
}

// gtidRungs are the gtid_mode values to set, in order, from cur to ON.
func gtidRungs(cur string) []string {
	for i, m := range gtidModes {
		if strings.EqualFold(m, cur) {
			return gtidModes[i+1:]
		}
	}
	return gtidModes[1:]
}

// sides reaches the two databases: the plan's database blocks, with the
// hosts the journal has from the instances.
type sides struct {
	plan *Plan
	jr   *journal
}

// endpoint is how pitcrew reaches a side's database: the plan's
// database block, with the host from the instance when the plan has none.
func (s *sides) endpoint(side string) (conn.Endpoint, error) {
	e, stepID := s.plan.Source.Database, "source-prep"
	if side == "target" {
		e, stepID = s.plan.Target.Database, "restore"
	}
	if e.Host == "" {
		if s.jr.cur != nil && s.jr.cur.ID == stepID {
			e.Host = s.jr.output("endpoint")
		} else {
			h, err := s.jr.outputOf(stepID, "endpoint")
			if err != nil {
				return e, fmt.Errorf("%s database host unknown: set %s.database.host, or %w", side, side, err)
			}
			e.Host = h
		}
	}
	e.Default()
	return e, nil
}
