package infra

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/rds"
)

var stepTakeDown = step{
	id:    "take-down",
	title: "take-down of the old side, guarded: quiet period, reverse channel drained, rollback window closed",
	skip:  func(*Plan) string { return "" },
	actions: func(p *Plan) []Action {
		a := []Action{{"pitcrew", fmt.Sprintf("guard: rollback window (%s after the cut-over) closed", p.Options.RollbackWindow)}}
		if p.DNS != nil {
			a = append(a, Action{srcWhere(p), fmt.Sprintf("guard: cloudwatch:GetMetricData AWS/ApplicationELB RequestCount Sum LoadBalancer=%s is 0 for %s (a missing datapoint is 0)", p.DNS.Old.Metric, p.Options.QuietPeriod)})
		}
		a = append(a,
			Action{"source database", fmt.Sprintf("guard: no client sessions in information_schema.PROCESSLIST but %s's and the server's own, for %s", p.Source.Database.User, p.Options.QuietPeriod)},
			Action{"pitcrew", "guard: " + reverse + " applied the target's executed GTID set; then stop it"})
		if !p.aws() {
			return append(a, Action{"pitcrew", "server-to-server move: the old server is left running for you to retire"})
		}
		final := "SkipFinalSnapshot=true"
		if *p.Options.FinalSnapshot {
			final = "FinalDBSnapshotIdentifier=" + p.finalSnapshotID()
		}
		a = append(a,
			Action{srcWhere(p), fmt.Sprintf("rds:DeleteDBInstance DBInstanceIdentifier=%s %s; wait until deleted", p.Source.Instance, final)},
			Action{srcWhere(p), "rds:DeleteDBSnapshot DBSnapshotIdentifier=" + p.sharedSnapshotID() + " (the shared copy; its key goes next)"})
		if p.Source.VPC != nil && p.Source.VPC.SharedPeering != "" {
			a = append(a,
				Action{srcWhere(p) + " + " + tgtWhere(p), fmt.Sprintf("ec2:DescribeSecurityGroupRules Filter tag:%s=%s; ec2:RevokeSecurityGroupIngress SecurityGroupRuleIds=<those>", tagKey, p.Name)},
				Action{"pitcrew", "the shared peering " + p.Source.VPC.SharedPeering + " and its routes stay (they belong to the account pair)"})
		} else if p.Source.VPC != nil {
			for _, rt := range p.Source.VPC.RouteTables {
				a = append(a, Action{srcWhere(p), fmt.Sprintf("ec2:DeleteRoute RouteTableId=%s DestinationCidrBlock=%s", rt, p.Target.VPC.CIDR)})
			}
			for _, rt := range p.Target.VPC.RouteTables {
				a = append(a, Action{tgtWhere(p), fmt.Sprintf("ec2:DeleteRoute RouteTableId=%s DestinationCidrBlock=%s", rt, p.Source.VPC.CIDR)})
			}
			a = append(a,
				Action{srcWhere(p) + " + " + tgtWhere(p), fmt.Sprintf("ec2:DescribeSecurityGroupRules Filter tag:%s=%s; ec2:RevokeSecurityGroupIngress SecurityGroupRuleIds=<those>", tagKey, p.Name)},
				Action{srcWhere(p), "ec2:DeleteVpcPeeringConnection VpcPeeringConnectionId=<peering>"})
		}
		if p.Source.KMSKey == "" {
			a = append(a, Action{srcWhere(p), fmt.Sprintf("kms:ScheduleKeyDeletion KeyId=<share key> PendingWindowInDays=%d (last)", p.Options.KeyDeletionDays)})
		}
		return a
	},
	run: func(ctx context.Context, r *run) error { return r.takeDownStep().takeDown(ctx) },
}

func (r takeDownStep) takeDown(ctx context.Context) error {
	if r.output("reverse_stopped") == "" {
		if err := r.stopReverse(ctx); err != nil {
			return err
		}
	}
	if !r.p.aws() {
		r.say("server-to-server move: the old server at %s is left running for you to retire", r.p.Source.Database.Host)
		return nil
	}
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	if err := r.deleteSource(ctx, c); err != nil {
		return err
	}
	if r.p.Source.VPC != nil {
		if err := r.removeNetwork(ctx, c); err != nil {
			return err
		}
	}
	if r.p.Source.KMSKey == "" {
		return r.deleteKey(ctx, c)
	}
	return nil
}

// stopReverse waits for the take-down guards, drains the reverse channel
// and stops it: from here the old database is no longer kept current.
func (r takeDownStep) stopReverse(ctx context.Context) error {
	sdb, _, err := r.open(ctx, "source")
	if err != nil {
		return err
	}
	err = r.poll(ctx, "the take-down guards", func(ctx context.Context) (bool, error) { return r.guardsHold(ctx, sdb) })
	sdb.Close()
	if err != nil {
		return err
	}
	if err := r.chans.start(reverse); err != nil {
		return err
	}
	if err := r.chans.drain(ctx, reverse, "target"); err != nil {
		return err
	}
	r.chans.stop(reverse)
	if err := r.record("reverse_stopped", time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	r.say("%s drained and stopped: the old database is no longer kept current", reverse)
	return nil
}

// deleteSource deletes the source instance (with its final snapshot, if
// asked) and the shared snapshot.
func (r takeDownStep) deleteSource(ctx context.Context, c *clients) error {
	in := &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(r.p.Source.Instance), SkipFinalSnapshot: aws.Bool(!*r.p.Options.FinalSnapshot)}
	if *r.p.Options.FinalSnapshot {
		in.FinalDBSnapshotIdentifier = aws.String(r.p.finalSnapshotID())
	}
	if _, err := c.source.rds.DeleteDBInstance(ctx, in); err != nil && !isCode(err, "DBInstanceNotFound", "InvalidDBInstanceState") {
		return fmt.Errorf("rds:DeleteDBInstance %s: %w", r.p.Source.Instance, err)
	}
	minD, maxD := r.waitDelays()
	w := rds.NewDBInstanceDeletedWaiter(c.source.rds, func(o *rds.DBInstanceDeletedWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD })
	if err := w.Wait(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(r.p.Source.Instance)}, r.p.Options.Timeout); err != nil {
		return fmt.Errorf("waiting for %s to be deleted: %w", r.p.Source.Instance, err)
	}
	r.say("deleted instance %s (final snapshot %s)", r.p.Source.Instance, map[bool]string{true: r.p.finalSnapshotID(), false: "none"}[*r.p.Options.FinalSnapshot])
	if _, err := c.source.rds.DeleteDBSnapshot(ctx, &rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: aws.String(r.p.sharedSnapshotID())}); err != nil && !isCode(err, "DBSnapshotNotFound") {
		return fmt.Errorf("rds:DeleteDBSnapshot %s: %w", r.p.sharedSnapshotID(), err)
	}
	return nil
}

// deleteKey schedules the share key's deletion.
func (r takeDownStep) deleteKey(ctx context.Context, c *clients) error {
	key, err := r.outputOf("share-key", "key_arn")
	if err != nil {
		return err
	}
	_, err = c.source.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(r.p.Options.KeyDeletionDays)})
	if err != nil && !isCode(err, "KMSInvalidStateException", "NotFoundException") {
		return fmt.Errorf("kms:ScheduleKeyDeletion %s: %w", key, err)
	}
	r.say("KMS key %s scheduled for deletion in %d days", key, r.p.Options.KeyDeletionDays)
	return nil
}

func (r takeDownStep) removeNetwork(ctx context.Context, c *clients) error {
	s, t := r.p.Source.VPC, r.p.Target.VPC
	shared := s.SharedPeering != ""
	for _, rt := range []struct {
		a      *account
		tables []string
		cidr   string
	}{{c.source, s.RouteTables, t.CIDR}, {c.target, t.RouteTables, s.CIDR}} {
		for _, table := range rt.tables {
			if shared {
				break // the pair's routes serve its other databases
			}
			_, err := rt.a.ec2.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(table), DestinationCidrBlock: aws.String(rt.cidr)})
			if err != nil && !isCode(err, "InvalidRoute.NotFound") {
				return fmt.Errorf("ec2:DeleteRoute %s -> %s: %w", table, rt.cidr, err)
			}
		}
	}
	for _, a := range []*account{c.source, c.target} {
		byGroup, err := taggedRules(ctx, a, r.p.Name)
		if err != nil {
			return err
		}
		for g, ids := range byGroup {
			_, err := a.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(g), SecurityGroupRuleIds: ids})
			if err != nil && !isCode(err, "InvalidPermission.NotFound", "InvalidSecurityGroupRuleId.NotFound") {
				return fmt.Errorf("ec2:RevokeSecurityGroupIngress %s %s: %w", g, strings.Join(ids, ","), err)
			}
		}
	}
	if shared {
		r.say("removed the tagged ingress rules; the shared peering %s stays", s.SharedPeering)
		return nil
	}
	id, err := r.outputOf("network", "peering_id")
	if err != nil || id == "" {
		return err
	}
	_, err = c.source.ec2.DeleteVpcPeeringConnection(ctx, &ec2.DeleteVpcPeeringConnectionInput{VpcPeeringConnectionId: aws.String(id)})
	if err != nil && !isCode(err, "InvalidVpcPeeringConnectionID.NotFound") {
		return fmt.Errorf("ec2:DeleteVpcPeeringConnection %s: %w", id, err)
	}
	r.say("removed peering %s, its routes and the tagged ingress rules", id)
	return nil
}

// guardsHold checks the take-down guards once, journaling since when the
// old side has been quiet; it says what it still waits for.
func (r takeDownStep) guardsHold(ctx context.Context, source *sql.DB) (bool, error) {
	var waiting []string
	cut, err := r.step("cutover")
	if err != nil {
		return false, err
	}
	if cut.Finished.IsZero() {
		return false, errors.New("the cut-over has not finished: nothing may be taken down")
	}
	if closes := cut.Finished.Add(r.p.Options.RollbackWindow); time.Now().Before(closes) {
		waiting = append(waiting, "the rollback window (closes "+closes.Format(time.RFC3339)+")")
	}
	now := time.Now().UTC()
	since := now
	if s := r.output("quiet_since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			since = t
		}
	}
	sessions, err := r.clientSessions(ctx, source)
	if err != nil {
		return false, err
	}
	busy := ""
	if len(sessions) > 0 {
		busy = "client sessions on the source: " + strings.Join(sessions, ", ")
	}
	requests := -1.0 // not read: no load balancer in the plan, or sessions already busy
	if busy == "" && r.p.DNS != nil {
		n, err := r.requests(ctx, since, now)
		if err != nil {
			return false, err
		}
		requests = n
		if n > 0 {
			busy = fmt.Sprintf("%.0f requests on the old load balancer since %s", n, since.Format(time.RFC3339))
		}
	}
	r.drained(requests, sessions, sessionCount(sessions))
	if busy != "" {
		since = now
		waiting = append(waiting, busy)
	}
	if err := r.record("quiet_since", since.Format(time.RFC3339Nano)); err != nil {
		return false, err
	}
	if quiet := now.Sub(since); quiet < r.p.Options.QuietPeriod {
		waiting = append(waiting, fmt.Sprintf("the quiet period (%s of %s)", quiet.Round(time.Second), r.p.Options.QuietPeriod))
	}
	if len(waiting) > 0 {
		r.live.set(func(l *live) { l.waiting = "the take-down guards: " + strings.Join(waiting, "; ") })
		if r.output("last_wait") != strings.Join(waiting, "; ") {
			r.say("take-down waits for: %s", strings.Join(waiting, "; "))
			_ = r.record("last_wait", strings.Join(waiting, "; "))
		}
		return false, nil
	}
	return true, nil
}

// clientSessions lists sessions on the source that are neither ours nor
// the server's own.
func (r takeDownStep) clientSessions(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST
		WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler', 'rdsadmin', 'unauthenticated user', ?)
		AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Killed') GROUP BY USER ORDER BY USER`, r.p.Source.Database.User)
	if err != nil {
		return nil, fmt.Errorf("reading the source's process list: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u sql.NullString
		var n int
		if err := rows.Scan(&u, &n); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s (%d)", u.String, n))
	}
	return out, rows.Err()
}

// requests sums the old load balancer's RequestCount; CloudWatch has no
// datapoint for a minute without requests, so missing means zero.
func (r takeDownStep) requests(ctx context.Context, from, to time.Time) (float64, error) {
	c, err := r.awsClients(ctx)
	if err != nil {
		return 0, err
	}
	if to.Sub(from) < time.Minute {
		from = to.Add(-time.Minute)
	}
	out, err := c.source.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(from), EndTime: aws.Time(to),
		MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id: aws.String("requests"),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount"),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(r.p.DNS.Old.Metric)}}},
				Period: aws.Int32(60), Stat: aws.String("Sum"),
			},
		}},
	})
	if err != nil {
		return 0, fmt.Errorf("cloudwatch:GetMetricData RequestCount of %s: %w", r.p.DNS.Old.Metric, err)
	}
	var sum float64
	for _, res := range out.MetricDataResults {
		for _, v := range res.Values {
			sum += v
		}
	}
	return sum, nil
}

// sessionCount adds up clientSessions' "user (n)" entries.
func sessionCount(sessions []string) int {
	total := 0
	for _, s := range sessions {
		var n int
		if i := strings.LastIndex(s, "("); i >= 0 {
			fmt.Sscanf(s[i:], "(%d)", &n)
		}
		total += n
	}
	return total
}
