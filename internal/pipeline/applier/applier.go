// Package applier is the apply stage (in the spirit of vitess's vplayer):
// it takes transactions from a queue and commits them on the target, in
// batches, in parallel lanes (lanes.go), as they arrive in parts
// (parts.go), decoded event by event when too big to hold (lazy), and
// DDL alone, moving the position only past what the target committed.
//
// It talks to the rest of the channel through narrow interfaces: Filter
// (what reaches the target: the operator's skips, the echo filter,
// routing), Reporter (where commits are reported: the local checkpoint,
// the relay, the status), Metrics (what is counted) and Decoder (decoding
// a lazy transaction). The syncer wires it.
package applier

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// ErrCaughtUp ends a catch-up once the goal is covered.
var ErrCaughtUp = errors.New("caught up")

// Config is what the applier is told once.
type Config struct {
	Channel   string
	Flavor    string
	BatchTxns int // a batch's bounds (a batch only forms while behind)
	BatchRows int
	// Lanes > 1 applies batches in parallel lanes.
	Lanes            int
	ParallelTriggers bool                // tables with triggers need no barrier (apply.Executor.Keys)
	Progress         checkpoint.Progress // the target's progress and lane tables
	Logger           *slog.Logger
}

// Start is where the applier starts.
type Start struct {
	Applied gtid.Set // covers exactly what the target committed
	Written gtid.Set // what the target's progress row says (Applied may be ahead by empty transactions)
	// PendingDDL is the GTID of a DDL that may have run before a crash.
	PendingDDL string
	// Beyond: batches parallel lanes committed beyond Applied (Merge).
	Beyond []Span
	// IdempotentUntil, after a resumed full load: changes may meet rows
	// already in their final state until here.
	IdempotentUntil gtid.Set
	// CatchUp: Run ends with ErrCaughtUp once Applied covers Until.
	CatchUp bool
	Until   gtid.Set
}

// Span is one committed batch: the positions before and after it.
type Span struct{ Before, After gtid.Set }

// Filter decides what of a transaction reaches the target.
type Filter interface {
	// Skip reports whether the operator chose to skip transaction g
	// (and records that it was).
	Skip(g string) (bool, error)
	// Echoing reports whether echoes are recognised (bidirectional).
	Echoing() bool
	// Echo empties t, and reports so, when it came back from the node it
	// was applied to; it also drops other channels' bookkeeping from t.
	Echo(t *txn.Txn) bool
	// Route keeps only the routed tables of t, under their target names.
	Route(t *txn.Txn) error
}

// Commit is a target commit, reported in source order.
type Commit struct {
	Applied gtid.Set   // the position after it
	Written gtid.Set   // what the target's progress row says
	Txns    []*txn.Txn // the batch (its last one's relay entries may go)
	Rows    int        // row images it applied
}

// Reporter is told where the position went.
type Reporter interface {
	// Committed: the target committed c (or nothing needed writing).
	Committed(c Commit) error
	// Wrote: the target's progress row was brought up to applied, which
	// did not move.
	Wrote(applied gtid.Set) error
	// Passed: t, already on the target, goes no further (its relay
	// entries may go).
	Passed(t *txn.Txn) error
}

// Event is something Metrics counts.
type Event int

// Counted events.
const (
	Echo        Event = iota // a transaction that came back from the node it was applied to
	LargeTxn                 // one applied lazily or in parts
	LaneBarrier              // a batch that ran alone, every lane drained
	LaneOverlap              // a batch that ran beside another lane's
)

// Metrics is what is counted.
type Metrics interface {
	// Took: one target transaction, BEGIN to COMMIT.
	Took(d time.Duration)
	// RowsWritten: row images written to the target.
	RowsWritten(n int)
	Count(e Event)
}

// Decoder decodes a lazy transaction (txn.Txn.Lazy) event by event
// (binlog.Decoder).
type Decoder interface {
	Each(t *txn.Txn, fn func(gtid string, events []txn.Event) error) error
}

// Hooks are the applier's ties to the rest of the channel.
type Hooks struct {
	Filter  Filter
	Report  Reporter
	Metrics Metrics
	Decoder Decoder
}

// Applier is the apply stage of one channel; it outlives the pipeline's
// attempts (Run).
type Applier struct {
	cfg Config
	ex  *apply.Executor
	h   Hooks

	mu         sync.Mutex
	applied    gtid.Set
	pendingDDL string
	beyond     []Span
	// written is the position last written to the target's progress row
	// (dispatcher only).
	written         gtid.Set
	idempotentUntil gtid.Set
	catchUp         bool
	until           gtid.Set
}

// New returns the apply stage, at start.
func New(cfg Config, ex *apply.Executor, h Hooks, start Start) *Applier {
	return &Applier{cfg: cfg, ex: ex, h: h, applied: start.Applied, written: start.Written, pendingDDL: start.PendingDDL,
		beyond: start.Beyond, idempotentUntil: start.IdempotentUntil, catchUp: start.CatchUp, until: start.Until}
}

// Applied is the position: what the target committed.
func (a *Applier) Applied() gtid.Set {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// Resume continues from what the target records, read after a failure
// (the next Run starts there): applied when it is ahead of the position
// (a batch whose COMMIT reply was lost landed), with the progress row at
// written, and the batches lanes committed beyond it.
func (a *Applier) Resume(applied, written gtid.Set, beyond []Span) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if applied.Contains(a.applied) && !a.applied.Contains(applied) {
		a.applied, a.pendingDDL, a.written = applied, "", written
	}
	a.beyond = beyond
}

// Run applies what q holds until ctx ends or an error (ErrCaughtUp in a
// catch-up once the goal is covered). It is one attempt of the pipeline.
func (a *Applier) Run(ctx context.Context, q *txn.Queue) error {
	if a.cfg.Lanes > 1 {
		return a.runLanes(ctx, q)
	}
	return a.runSerial(ctx, q)
}

func (a *Applier) done() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.catchUp && a.applied.Contains(a.until)
}

// beyondSpans are the batches committed beyond the position still.
func (a *Applier) beyondSpans() []Span {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Span
	for _, s := range a.beyond {
		if !a.applied.Contains(s.After) {
			out = append(out, s)
		}
	}
	return out
}

// appliedBeyond reports whether g is in a batch applied beyond the position.
func (a *Applier) appliedBeyond(g string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.beyond) == 0 || g == "" {
		return false
	}
	return slices.ContainsFunc(a.beyond, func(s Span) bool { return s.After.ContainsOne(g) && !s.Before.ContainsOne(g) })
}

// idempotent reports whether changes may meet rows already in their final
// state (the window after a resumed full load).
func (a *Applier) idempotent() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.idempotentUntil.IsEmpty() && !a.applied.Contains(a.idempotentUntil)
}

func (a *Applier) runSerial(ctx context.Context, q *txn.Queue) error {
	var next *txn.Txn // taken from q and filtered, not yet applied
	for {
		t := next
		next = nil
		if t == nil {
			var err error
			if t, err = q.Get(ctx); err != nil {
				return err
			}
			if keep, err := a.take(q, t, nil); err != nil {
				return err
			} else if !keep {
				continue
			}
		}
		if alone(t) {
			n, err := a.applyAlone(ctx, t, q)
			if err != nil {
				return err
			}
			next = n
		} else {
			batch, rows, n, err := a.fill(q, t)
			if err != nil {
				return err
			}
			next = n
			err = a.applyBatch(ctx, batch, rows)
			q.Done(batch...)
			if err != nil {
				return err
			}
		}
		if a.done() {
			return ErrCaughtUp
		}
	}
}

// take decides what becomes of a transaction taken from q: one already
// applied (the source resends the start position) is let go at once,
// after settle (nil: nothing to wait for); any other is filtered and kept.
func (a *Applier) take(q *txn.Queue, t *txn.Txn, settle func() error) (keep bool, err error) {
	if !a.isApplied(t) {
		return true, a.filter(t)
	}
	if settle != nil {
		if err := settle(); err != nil {
			return false, err
		}
	}
	q.Done(t)
	return false, a.h.Report.Passed(t)
}

// alone reports whether t is applied by itself: a DDL, a transaction too
// big to decode whole, or the first part of one arriving in parts.
func alone(t *txn.Txn) bool { return t.IsDDL() || t.Lazy || t.Part }

// applyAlone applies a transaction that alone says goes by itself (for
// one in parts, taking the rest from q). next, when set, is a
// transaction taken from q and through take, still to apply.
func (a *Applier) applyAlone(ctx context.Context, t *txn.Txn, q *txn.Queue) (next *txn.Txn, err error) {
	defer q.Done(t)
	switch {
	case t.Part:
		return a.applyParts(ctx, t, q)
	case t.Lazy:
		return nil, a.applyLazy(ctx, t)
	}
	return nil, a.applyDDL(ctx, t)
}

// fill makes a batch starting with t of what q holds now (a batch only
// forms while behind), up to the configured bounds. Transactions already
// applied are dropped (let go with the batch); a DDL or a lazy
// transaction ends the batch and is returned as next.
func (a *Applier) fill(q *txn.Queue, t *txn.Txn) (batch []*txn.Txn, rows int, next *txn.Txn, err error) {
	batch, rows = []*txn.Txn{t}, t.RowCount()
	for len(batch) < a.cfg.BatchTxns && rows < a.cfg.BatchRows {
		t2, ok := q.TryGet()
		if !ok {
			return batch, rows, nil, nil
		}
		if a.isApplied(t2) {
			q.Done(t2)
			continue
		}
		if err := a.filter(t2); err != nil {
			return nil, 0, nil, err
		}
		if alone(t2) {
			return batch, rows, t2, nil
		}
		batch = append(batch, t2)
		rows += t2.RowCount()
	}
	return batch, rows, nil, nil
}

// filter decides, in place, what of t reaches the target: nothing when the
// operator skipped it; not another channel's bookkeeping; nothing of an
// echo; and only the routed tables, under their target names. Emptied
// transactions keep their GTID, so the position moves past them.
func (a *Applier) filter(t *txn.Txn) error {
	if t.Part {
		return nil // part by part in applyParts
	}
	if drop, err := a.dropWhole(t.GTID); err != nil || drop {
		t.Events, t.Lazy = nil, false
		return err
	}
	if a.h.Filter.Echo(t) {
		a.h.Metrics.Count(Echo)
		return nil
	}
	return a.h.Filter.Route(t)
}

// dropWhole reports whether nothing of transaction g reaches the target: a
// lane applied it beyond the position, or the operator skipped it.
func (a *Applier) dropWhole(g string) (bool, error) {
	if a.appliedBeyond(g) {
		return true, nil
	}
	return a.h.Filter.Skip(g)
}

// isApplied reports whether t is already on the target (the source may
// resend the transaction at the start position).
func (a *Applier) isApplied(t *txn.Txn) bool {
	return t.GTID != "" && a.Applied().ContainsOne(t.GTID)
}

func (a *Applier) applyBatch(ctx context.Context, batch []*txn.Txn, rows int) error {
	after, err := txn.After(a.Applied(), batch)
	if err != nil {
		return err
	}
	if onlyEchoes(batch) {
		// Echoes: do not write the target at all. A progress-only write
		// would itself come back as an echo from the other node, and
		// again, forever. Replaying echoes after a crash changes nothing,
		// so the position only moves locally (checkpoint.Position.Written).
		// Other empty transactions (filtered, skipped) are written: the
		// target's progress row then says how far the channel got.
		return a.committed(after, batch, false, rowsOf(batch))
	}
	a.ex.SetIdempotent(a.idempotent())
	began := time.Now()
	if err := a.ex.ApplyRows(ctx, batch, after); err != nil {
		return err
	}
	a.h.Metrics.Took(time.Since(began))
	a.h.Metrics.RowsWritten(rows)
	return a.committed(after, batch, true, rowsOf(batch))
}

func onlyEchoes(batch []*txn.Txn) bool {
	for _, t := range batch {
		if !t.Echo {
			return false
		}
	}
	return true
}

func rowsOf(batch []*txn.Txn) int {
	rows := 0
	for _, t := range batch {
		rows += t.RowCount()
	}
	return rows
}

func (a *Applier) applyDDL(ctx context.Context, t *txn.Txn) error {
	before := a.Applied()
	after, err := txn.After(before, []*txn.Txn{t})
	if err != nil {
		return err
	}
	began := time.Now()
	if err := a.ex.ApplyDDL(ctx, t, before, after, a.mayBeDone(t.GTID)); err != nil {
		return err
	}
	a.h.Metrics.Took(time.Since(began))
	return a.committed(after, []*txn.Txn{t}, true, rowsOf([]*txn.Txn{t}))
}

// mayBeDone tells whether a DDL of transaction g (alone, or opening a
// large CREATE TABLE ... SELECT) may have run already: marked pending
// before a crash, tried by an earlier attempt of this run, or inside a
// resumed load's idempotent window. From this call until the position
// moves past g, a retry after any failure (even a cancelled context
// mid-statement) must accept "already exists" for it.
func (a *Applier) mayBeDone(g string) bool {
	idem := a.idempotent()
	a.mu.Lock()
	defer a.mu.Unlock()
	may := a.pendingDDL == g || idem
	a.pendingDDL = g
	return may
}

// errStop ends a decoding pass early.
var errStop = errors.New("stop")

// applyLazy applies a transaction too big to hold decoded (txn.Txn.Lazy)
// alone, decoding it event by event as it goes; a retry decodes it again.
// When echoes are recognised, a first pass looks for the marker, which
// may be in its last event, before anything is applied.
func (a *Applier) applyLazy(ctx context.Context, t *txn.Txn) error {
	a.h.Metrics.Count(LargeTxn)
	if a.h.Filter.Echoing() {
		echo := false
		err := a.h.Decoder.Each(t, func(g string, evs []txn.Event) error {
			if a.h.Filter.Echo(&txn.Txn{GTID: g, Events: evs}) {
				echo = true
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if echo {
			t.Events, t.Lazy, t.Echo = nil, false, true
			a.h.Metrics.Count(Echo)
			return a.applyBatch(ctx, []*txn.Txn{t}, 0)
		}
	}
	before := a.Applied()
	after, err := txn.After(before, []*txn.Txn{t})
	if err != nil {
		return err
	}
	a.cfg.Logger.Info("applying a large transaction as it is decoded", "gtid", t.GTID, "bytes", t.Bytes)
	a.ex.SetIdempotent(a.idempotent())
	began := time.Now()
	rows := 0
	err = a.ex.ApplyStream(ctx, t.GTID, func(yield func(string, txn.Event) error) error {
		rows = 0
		return a.h.Decoder.Each(t, func(g string, evs []txn.Event) error {
			return a.yieldRouted(&txn.Txn{GTID: g, Events: evs}, &rows, yield)
		})
	}, before, after, a.mayBeDone(t.GTID))
	if err != nil {
		return err
	}
	a.h.Metrics.Took(time.Since(began))
	return a.committedLarge(after, t, rows)
}

// yieldRouted hands a part of a large transaction to ApplyStream's yield,
// filtered and routed like a whole one, and adds its rows to *rows.
func (a *Applier) yieldRouted(part *txn.Txn, rows *int, yield func(string, txn.Event) error) error {
	a.h.Filter.Echo(part)
	if err := a.h.Filter.Route(part); err != nil {
		return err
	}
	*rows += part.RowCount()
	for _, ev := range part.Events {
		if err := yield(part.GTID, ev); err != nil {
			return err
		}
	}
	return nil
}

// committedLarge records a large transaction of rows rows, applied by
// ApplyStream (its Events do not hold them).
func (a *Applier) committedLarge(after gtid.Set, t *txn.Txn, rows int) error {
	a.h.Metrics.RowsWritten(rows)
	return a.committed(after, []*txn.Txn{t}, true, rowsOf([]*txn.Txn{t})+rows)
}

// committed moves the position after a target commit (wrote: with the
// channel's progress row) and reports it.
func (a *Applier) committed(after gtid.Set, batch []*txn.Txn, wrote bool, rows int) error {
	a.mu.Lock()
	a.applied, a.pendingDDL = after, ""
	if wrote {
		a.written = after
	}
	written := a.written
	a.mu.Unlock()
	return a.h.Report.Committed(Commit{Applied: after, Written: written, Txns: batch, Rows: rows})
}
