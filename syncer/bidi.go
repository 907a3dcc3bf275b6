package syncer

import (
	"context"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
)

// resolver joins the conflict policies and the ledger to the applier.
type resolver struct {
	channel string
	rules   conflict.Rules
	ledger  conflict.Ledger
	s       *Syncer
}

func (r *resolver) Column(schema, table string) string { return r.rules.For(schema, table).Column }

func (r *resolver) Resolve(c apply.Conflict) (apply.Resolution, string) {
	rule := r.rules.For(c.Schema, c.Table)
	d := conflict.Decide(rule, conflict.Case{
		Kind:    c.Kind,
		Before:  conflict.Image(c.Columns, c.Before),
		After:   conflict.Image(c.Columns, c.After),
		Current: conflict.Image(c.Columns, c.Current),
	})
	switch d {
	case conflict.ApplyIncoming:
		return apply.TakeIncoming, string(rule.Policy)
	case conflict.Parked:
		return apply.ParkIt, string(rule.Policy)
	}
	return apply.KeepTarget, string(rule.Policy)
}

func (r *resolver) Record(ctx context.Context, ex checkpoint.Execer, c apply.Conflict, res apply.Resolution, policy string) error {
	outcome := map[apply.Resolution]conflict.Decision{apply.TakeIncoming: conflict.ApplyIncoming, apply.KeepTarget: conflict.KeepTarget, apply.ParkIt: conflict.Parked}[res].String()
	src := c.After
	if src == nil {
		src = c.Before
	}
	key := map[string]any{}
	img := conflict.Image(c.Columns, src)
	for _, k := range c.Key {
		key[k] = img[k]
	}
	err := r.ledger.Record(ctx, ex, conflict.Entry{
		Channel: r.channel, GTID: c.GTID, Table: c.Schema + "." + c.Table, Op: c.Kind.String(), Reason: c.Reason,
		Key: key, Source: img, Target: conflict.Image(c.Columns, c.Current), Policy: policy, Outcome: outcome,
	})
	if err != nil {
		return err
	}
	// Counted when recorded; a rolled-back batch counts again on retry,
	// which the ledger (written in the same transaction) does not.
	r.s.metrics.Conflicts.WithLabelValues(policy, outcome).Inc()
	r.s.status.update(func(x *Status) { x.Conflicts++ })
	return nil
}
