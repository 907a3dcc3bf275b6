package applier

import (
	"context"
	"errors"
	"fmt"

	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// ErrReadAgain: a transaction applied as its parts arrived (no relay)
// needs another attempt, and its parts are gone; the pipeline restarts
// and the source sends it again.
var ErrReadAgain = errors.New("a transaction applied as it arrived must be read again from the source")

// errIncomplete ends the target transaction of a transaction in parts
// that never completed in the source's log.
var errIncomplete = errors.New("incomplete")

// applyParts applies a transaction that arrives in parts (txn.Txn.Part,
// without the relay) in one target transaction as the parts arrive, so
// it is never held whole: first is its first part, the rest come from
// q, the last one is its complete Txn. A retry cannot see the parts
// again: it restarts the pipeline (ErrReadAgain). A transaction whose
// parts stop before it completes (rolled back, or cut off by a crashed
// source's next GTID) is rolled back on the target, as the source's own
// applier drops it; what came instead is returned as next.
func (a *Applier) applyParts(ctx context.Context, first *txn.Txn, q *txn.Queue) (next *txn.Txn, err error) {
	g := first.GTID
	a.h.Metrics.Count(LargeTxn)
	// parts hands fn each part in turn and the complete Txn last, and
	// frees each part (first is applyAlone's) once fn is done with it;
	// other is what came instead when the parts stop before their end.
	parts := func(fn func(*txn.Txn) error) (last, other *txn.Txn, err error) {
		for t := first; ; {
			if err := fn(t); err != nil {
				return nil, nil, err
			}
			if !t.Part {
				return t, nil, nil
			}
			n, err := q.Get(ctx)
			if err != nil {
				return nil, nil, err
			}
			if t != first {
				q.Done(t)
			}
			// The next part, or the complete Txn, counts one more.
			if n.GTID != g || n.Parts != t.Parts+1 {
				return nil, n, nil
			}
			t = n
		}
	}
	// What came instead of the rest of the parts goes through take.
	instead := func(t *txn.Txn) (*txn.Txn, error) {
		a.cfg.Logger.Warn("a transaction that arrived in pieces never completed in the source's log (rolled back); nothing of it applied",
			"component", "apply", "gtid", g, "next_gtid", t.GTID)
		if keep, err := a.take(q, t, nil); err != nil || !keep {
			return nil, err
		}
		return t, nil
	}
	drop, err := a.dropWhole(g)
	if err != nil {
		return nil, err
	}
	if drop {
		// Its parts are let go; the complete Txn moves the position.
		last, other, err := parts(func(*txn.Txn) error { return nil })
		if err != nil {
			return nil, err
		}
		if other != nil {
			return instead(other)
		}
		defer q.Done(last)
		last.Events = nil
		return nil, a.applyBatch(ctx, []*txn.Txn{last}, 0)
	}
	before := a.Applied()
	after, err := txn.After(before, []*txn.Txn{first})
	if err != nil {
		return nil, err
	}
	a.cfg.Logger.Info("applying a large transaction as it arrives", "gtid", g)
	a.ex.SetIdempotent(a.idempotent())
	var last, other *txn.Txn
	rows, calls := 0, 0
	err = a.ex.ApplyStream(ctx, g, func(yield func(string, txn.Event) error) error {
		if calls++; calls > 1 {
			return ErrReadAgain
		}
		var err error
		last, other, err = parts(func(t *txn.Txn) error { return a.yieldRouted(t, &rows, yield) })
		if other != nil {
			return errIncomplete
		}
		return err
	}, before, after, a.mayBeDone(g))
	if other != nil {
		return instead(other)
	}
	if last != nil {
		defer q.Done(last)
	}
	if err != nil {
		return nil, fmt.Errorf("GTID %s (applied as it arrived): %w", g, err)
	}
	last.Events = nil // counted in rows, not again by committed
	return nil, a.committedLarge(after, last, rows)
}
