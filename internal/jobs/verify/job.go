package verify

import (
	"context"
	"database/sql"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

// Sides are a channel's source and target opened for a comparison (both
// with the applier's session; the target's interpolates, as repairs write
// through it), both answering, and the source's flavor.
type Sides struct {
	Source, Target *sql.DB
	Flavor         string
}

// Open opens and pings the two sides.
func Open(ctx context.Context, src, tgt conn.Endpoint) (*Sides, error) {
	s := &Sides{}
	var err error
	if s.Source, err = conn.Open(src, conn.Options{Init: apply.Session}); err != nil {
		return nil, err
	}
	if s.Target, err = conn.Open(tgt, conn.Options{Init: apply.Session, Interpolate: true}); err != nil {
		s.Source.Close()
		return nil, err
	}
	if err = conn.Ping(ctx, s.Source, "source", src); err == nil {
		err = conn.Ping(ctx, s.Target, "target", tgt)
	}
	if err == nil {
		var info binlog.ServerInfo
		info, err = binlog.Inspect(ctx, s.Source)
		s.Flavor = info.Flavor
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes both sides.
func (s *Sides) Close() {
	s.Source.Close()
	s.Target.Close()
}

// Applied returns how far a channel has applied: what its running service
// reports (live; "" when none answers), else its progress row on the
// target (the empty set before the first).
func (s *Sides) Applied(live func(context.Context) string, progress checkpoint.Progress, channel string) func(context.Context) (gtid.Set, error) {
	return func(ctx context.Context) (gtid.Set, error) {
		if set := live(ctx); set != "" {
			return gtid.Parse(s.Flavor, set)
		}
		row, ok, err := progress.Load(ctx, s.Target, channel)
		if err != nil || !ok {
			return gtid.Empty(s.Flavor), err
		}
		return gtid.Parse(s.Flavor, row.GTIDSet)
	}
}

// Executed is the source's executed set now.
func (s *Sides) Executed(ctx context.Context) (gtid.Set, error) {
	return binlog.Executed(ctx, s.Source, s.Flavor)
}

// WaitApplied waits until the channel applied what the source has
// executed now, for at most wait. A channel that is not running (nothing
// moves, or no progress row yet after a load alone) ends the wait without
// an error: the comparison then shows what the target has.
func (s *Sides) WaitApplied(ctx context.Context, applied func(context.Context) (gtid.Set, error), wait time.Duration) error {
	goal, err := s.Executed(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		set, err := applied(ctx)
		if err != nil || set.Contains(goal) || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Prove compares; when cfg.Repair rewrote rows, it compares the same
// tables again without repairing, so the report shows what stays
// different, with the rows the first pass repaired.
func Prove(ctx context.Context, cfg Config) (Report, error) {
	rep, err := Run(ctx, cfg)
	if err != nil || !cfg.Repair || rep.Equal {
		return rep, err
	}
	cfg.Repair = false
	again, err := Run(ctx, cfg)
	if err != nil {
		return again, err
	}
	for i := range again.Tables {
		again.Tables[i].Repaired = rep.Tables[i].Repaired
	}
	return again, nil
}
