package syncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
	"golang.org/x/sync/errgroup"
)

// errDone ends a catch-up pipeline once the goal is covered.
var errDone = errors.New("caught up")

// queueTxns bounds the transactions between reader and applier by count;
// Config.QueueBytes bounds them by bytes.
const queueTxns = 1024

// Decoded rows take several times their binlog size in memory (every
// value boxed in an interface, every row a slice): measured about 4.6x for
// rows of two INTs and a short VARCHAR.
const (
	rawFactor     = 1
	decodedFactor = 4
)

// state is the channel's position, shared with the source poller.
type state struct {
	mu         sync.Mutex
	applied    gtid.Set // covers exactly what the target committed
	pendingDDL string   // GTID of a DDL that may have run before a crash
	until      gtid.Set // catch-up goal
	catchUp    bool
	source     gtid.Set  // source's executed set at the last poll
	lastCommit time.Time // source commit time of the last applied transaction
	txns       int64     // transactions applied by this run
	until2     gtid.Set  // after a resumed load: idempotent apply until here
	// extras: batches parallel lanes committed beyond applied before the
	// last stop (see lanes.go); their transactions arrive again and are
	// emptied, so the position moves over them without a second apply.
	extras []span
}

func (st *state) setExtras(x []span) {
	st.mu.Lock()
	st.extras = x
	st.mu.Unlock()
}

func (st *state) extraSpans() []span {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []span
	for _, s := range st.extras {
		if !st.applied.Contains(s.after) {
			out = append(out, s)
		}
	}
	return out
}

// appliedBeyond reports whether t is in a batch applied beyond the position.
func (st *state) appliedBeyond(g string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.extras) == 0 || g == "" {
		return false
	}
	return slices.ContainsFunc(st.extras, func(s span) bool { return s.after.ContainsOne(g) && !s.before.ContainsOne(g) })
}

// idempotent reports whether changes may meet rows already in their final
// state (the window after a resumed full load).
func (st *state) idempotent() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.until2.IsEmpty() && !st.applied.Contains(st.until2)
}

func (st *state) pending() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pendingDDL
}

func (st *state) setPending(g string) {
	st.mu.Lock()
	st.pendingDDL = g
	st.mu.Unlock()
}

func (st *state) snapshot() gtid.Set {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.applied
}

func (st *state) done() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.catchUp && st.applied.Contains(st.until)
}

func (st *state) advance(to gtid.Set, commit time.Time, txns int) {
	st.mu.Lock()
	st.applied, st.pendingDDL, st.lastCommit = to, "", commit
	// What was applied came from the source: the source's set, read now
	// and then, is at least that (so /status never shows applied ahead of
	// source).
	if !st.source.Contains(to) {
		if u, err := st.source.Union(to); err == nil {
			st.source = u
		}
	}
	st.txns += int64(txns)
	st.mu.Unlock()
}

func (st *state) setSource(src gtid.Set) {
	st.mu.Lock()
	if !src.Contains(st.applied) {
		if u, err := src.Union(st.applied); err == nil {
			src = u
		}
	}
	st.source = src
	st.mu.Unlock()
}

// lag: transactions behind the source, seconds behind (0 when caught up),
// and the source's set.
func (st *state) lag() (int64, float64, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	behind := st.applied.Behind(st.source)
	var secs float64
	if behind > 0 && !st.lastCommit.IsZero() {
		secs = max(0, time.Since(st.lastCommit).Seconds())
	}
	return behind, secs, st.source.String()
}

// progress returns transactions applied so far and the last commit time.
func (st *state) progress() (int64, time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.txns, st.lastCommit
}

// pipeline is one attempt at streaming and applying.
type pipeline struct {
	s      *Syncer
	ex     *apply.Executor
	store  *checkpoint.Store
	flavor string
	st     *state
	srcDB  *sql.DB           // for diagnosing stream errors
	relay  *checkpoint.Relay // nil when the relay is off
	loop   *conflict.Loop    // drops echoes and our own bookkeeping
	router *route.Router     // filters and renames
	skips  *skipSet          // GTIDs the operator chose to skip
	// written is the position last written to the target's progress row;
	// the applied position may be ahead of it by empty transactions.
	written string
	// fetched holds what the stream read and the spool (or, without the
	// relay, the applier) is not through with; queued what the replay
	// decoded and the applier is not through with.
	fetched, queued *txn.Queue
	// lazyDec decodes lazy transactions for the applier (its goroutine
	// only; the replay has its own decoder).
	lazyDec *binlog.Decoder
}

// toApply is the queue the applier takes from.
func (p *pipeline) toApply() *txn.Queue {
	if p.relay != nil {
		return p.queued
	}
	return p.fetched
}

// run is one attempt. Without the relay: stream -> apply. With it:
// stream -> spool (segment files) and, independently, replay -> apply,
// the replay taking what the spool just wrote from memory while it keeps
// up (handover), else from the files.
func (p *pipeline) run(ctx context.Context) error {
	cfg := p.s.cfg
	from, err := p.readFrom()
	if err != nil {
		return err
	}
	// Without the relay the stream decodes rows; with it, the replay.
	p.fetched, p.queued = txn.NewQueue(queueTxns, cfg.QueueBytes, decodedFactor), nil
	g, gctx := errgroup.WithContext(ctx)
	if p.relay != nil {
		// The spool takes what the stream reads at disk speed, a group at
		// a time: a few groups queued keep it busy.
		p.fetched = txn.NewQueue(queueTxns, min(cfg.QueueBytes, spoolQueueBytes), rawFactor)
		p.queued = txn.NewQueue(queueTxns, cfg.QueueBytes, decodedFactor)
		hot := newHandover()
		g.Go(func() error { return p.spool(gctx, from, hot) })
		g.Go(func() error { return p.replay(gctx, hot) })
		g.Go(func() error { return p.syncRelay(gctx) })
	}
	toApply := p.toApply()
	partBytes := cfg.PartBytes
	if p.relay == nil && p.loop.Echoing() {
		// Applied as they arrive, pieces could not be checked for the echo
		// marker first (it may be in the last event): held whole.
		partBytes = 0
	}
	g.Go(func() error {
		err := binlog.Stream(gctx, binlog.Config{
			Source: cfg.Source, Flavor: p.flavor, ServerID: cfg.ServerID, ReportHost: binlog.ReportHost(cfg.Channel),
			KeepRaw: p.relay != nil, Admit: p.fetched.Admit,
			PartBytes: partBytes, Heartbeat: cfg.Heartbeat, ConnectTimeout: cfg.ConnectTimeout,
			Logger: cfg.Logger.With("component", "binlog"),
		}, from, p.fetched.In(), p.s.metrics)
		if conn.Code(err) == 1236 {
			// Say exactly what is missing when the source purged it.
			if gap := binlog.CheckGap(ctx, p.srcDB, p.flavor, from); gap != nil {
				return gap
			}
		}
		return err
	})
	if p.s.cfg.Lanes > 1 && p.s.cfg.Conflicts == nil {
		g.Go(func() error { return p.applyLanes(gctx, toApply) })
	} else {
		g.Go(func() error { return p.applyLoop(gctx, toApply) })
	}
	err = g.Wait()
	if bad := (*corruptEntry)(nil); errors.As(err, &bad) {
		return p.dropCorrupt(bad)
	}
	return err
}

func (p *pipeline) applyLoop(ctx context.Context, q *txn.Queue) error {
	var next *txn.Txn // taken from ch and filtered, not yet applied
	for {
		t := next
		next = nil
		if t == nil {
			var err error
			if t, err = q.Get(ctx); err != nil {
				return err
			}
			if keep, err := p.take(t, nil); err != nil {
				return err
			} else if !keep {
				continue
			}
		}
		if alone(t) {
			n, err := p.applyAlone(ctx, t, q)
			if err != nil {
				return err
			}
			next = n
		} else {
			batch, rows, n, err := p.fill(q, t)
			if err != nil {
				return err
			}
			next = n
			err = p.applyBatch(ctx, batch, rows)
			q.Done(batch...)
			if err != nil {
				return err
			}
		}
		if p.st.done() {
			return errDone
		}
	}
}

// take decides what becomes of a transaction that reaches the applier:
// one already applied (the source resends the start position) is released
// at once, after settle (nil: nothing to wait for); any other is filtered
// and kept.
func (p *pipeline) take(t *txn.Txn, settle func() error) (keep bool, err error) {
	if !p.applied(t) {
		return true, p.filter(t)
	}
	if settle != nil {
		if err := settle(); err != nil {
			return false, err
		}
	}
	p.toApply().Done(t)
	return false, p.release(t)
}

// alone reports whether t is applied by itself: a DDL, a transaction too
// big to decode whole, or the first piece of one arriving in pieces.
func alone(t *txn.Txn) bool { return t.IsDDL() || t.Lazy || t.Part }

// applyAlone applies a transaction that alone says goes by itself (for
// one in pieces, taking the rest from q). next, when set, is a
// transaction taken from q and through take, still to apply.
func (p *pipeline) applyAlone(ctx context.Context, t *txn.Txn, q *txn.Queue) (next *txn.Txn, err error) {
	defer q.Done(t)
	switch {
	case t.Part:
		return p.applyPieces(ctx, t, q)
	case t.Lazy:
		return nil, p.applyLazy(ctx, t)
	}
	return nil, p.applyDDL(ctx, t)
}

// fill makes a batch starting with t of what q holds now (a batch only
// forms while behind), up to the configured bounds. Transactions already
// applied are dropped (released with the batch); a DDL or a lazy
// transaction ends the batch and is returned as next.
func (p *pipeline) fill(q *txn.Queue, t *txn.Txn) (batch []*txn.Txn, rows int, next *txn.Txn, err error) {
	batch, rows = []*txn.Txn{t}, t.RowCount()
	for len(batch) < p.s.cfg.BatchTxns && rows < p.s.cfg.BatchRows {
		t2, ok := q.TryGet()
		if !ok {
			return batch, rows, nil, nil
		}
		if p.applied(t2) {
			q.Done(t2)
			continue
		}
		if err := p.filter(t2); err != nil {
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
func (p *pipeline) filter(t *txn.Txn) error {
	if t.Part {
		return nil // piece by piece in applyPieces
	}
	if drop, err := p.dropWhole(t.GTID); err != nil || drop {
		t.Events, t.Lazy = nil, false
		return err
	}
	if p.loop.Filter(t) {
		p.s.status.update(func(x *Status) { x.Echoes++ })
		return nil
	}
	return p.router.Route(t)
}

// dropWhole reports whether nothing of transaction g reaches the target: a
// lane applied it beyond the position, or the operator skipped it.
func (p *pipeline) dropWhole(g string) (bool, error) {
	if p.st.appliedBeyond(g) {
		return true, nil
	}
	if !p.skips.take(g) {
		return false, nil
	}
	p.s.cfg.Logger.Warn("transaction skipped by the operator (pitcrew skip)", "component", "route", "gtid", g)
	p.s.status.update(func(x *Status) { x.Skipped = append(x.Skipped, g) })
	return true, p.store.MarkSkipped(p.s.cfg.Channel, g)
}

// applied reports whether t is already on the target (the source may resend
// the transaction at the start position).
func (p *pipeline) applied(t *txn.Txn) bool {
	return t.GTID != "" && p.st.snapshot().ContainsOne(t.GTID)
}

func (p *pipeline) next(from gtid.Set, batch []*txn.Txn) (gtid.Set, error) {
	gtids := make([]string, len(batch))
	for i, t := range batch {
		if t.GTID == "" {
			return gtid.Set{}, txn.ErrNoGTID
		}
		gtids[i] = t.GTID
	}
	return from.AddAll(gtids)
}

func (p *pipeline) applyBatch(ctx context.Context, batch []*txn.Txn, rows int) error {
	after, err := p.next(p.st.applied, batch)
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
		return p.committed(after, batch, false)
	}
	p.ex.SetIdempotent(p.st.idempotent())
	began := time.Now()
	if err := p.ex.ApplyRows(ctx, batch, after); err != nil {
		return err
	}
	p.s.metrics.ApplyDuration.Observe(time.Since(began).Seconds())
	p.s.metrics.Rows.Add(float64(rows))
	return p.committed(after, batch, true)
}

func onlyEchoes(batch []*txn.Txn) bool {
	for _, t := range batch {
		if !t.Echo {
			return false
		}
	}
	return true
}

func (p *pipeline) applyDDL(ctx context.Context, t *txn.Txn) error {
	before := p.st.applied
	after, err := p.next(before, []*txn.Txn{t})
	if err != nil {
		return err
	}
	began := time.Now()
	if err := p.ex.ApplyDDL(ctx, t, before, after, p.mayBeDone(t.GTID)); err != nil {
		return err
	}
	p.s.metrics.ApplyDuration.Observe(time.Since(began).Seconds())
	return p.committed(after, []*txn.Txn{t}, true)
}

// mayBeDone tells whether a DDL of transaction g (alone, or opening a
// large CREATE TABLE ... SELECT) may have run already: marked pending
// before a crash, tried by an earlier attempt of this run, or inside a
// resumed load's idempotent window. From this call until the position
// moves past g, a retry after any failure (even a cancelled context
// mid-statement) must accept "already exists" for it.
func (p *pipeline) mayBeDone(g string) bool {
	may := p.st.pending() == g || p.st.idempotent()
	p.st.setPending(g)
	return may
}

// applyLazy applies a transaction too big to hold decoded (txn.Txn.Lazy)
// alone, decoding it event by event as it goes; a retry decodes it again.
// When echoes are recognised, a first pass looks for the marker, which
// may be in its last event, before anything is applied.
func (p *pipeline) applyLazy(ctx context.Context, t *txn.Txn) error {
	if p.lazyDec == nil {
		p.lazyDec = binlog.NewDecoder(p.flavor)
	}
	p.s.status.update(func(x *Status) { x.LargeTxns++ })
	if p.loop.Echoing() {
		echo := false
		err := p.lazyDec.Each(t, func(g string, evs []txn.Event) error {
			if p.loop.Filter(&txn.Txn{GTID: g, Events: evs}) {
				echo = true
				return errDone
			}
			return nil
		})
		if err != nil && !errors.Is(err, errDone) {
			return err
		}
		if echo {
			t.Events, t.Lazy, t.Echo = nil, false, true
			p.s.status.update(func(x *Status) { x.Echoes++ })
			return p.applyBatch(ctx, []*txn.Txn{t}, 0)
		}
	}
	before := p.st.applied
	after, err := p.next(before, []*txn.Txn{t})
	if err != nil {
		return err
	}
	p.s.cfg.Logger.Info("applying a large transaction as it is decoded", "gtid", t.GTID, "bytes", t.Bytes)
	p.ex.SetIdempotent(p.st.idempotent())
	began := time.Now()
	rows := 0
	err = p.ex.ApplyStream(ctx, t.GTID, func(yield func(string, txn.Event) error) error {
		rows = 0
		return p.lazyDec.Each(t, func(g string, evs []txn.Event) error {
			return p.yieldRouted(&txn.Txn{GTID: g, Events: evs}, &rows, yield)
		})
	}, before, after, p.mayBeDone(t.GTID))
	if err != nil {
		return err
	}
	p.s.metrics.ApplyDuration.Observe(time.Since(began).Seconds())
	return p.committedLarge(after, t, rows)
}

// yieldRouted hands a part of a large transaction to ApplyStream's yield,
// filtered and routed like a whole one, and adds its rows to *rows.
func (p *pipeline) yieldRouted(part *txn.Txn, rows *int, yield func(string, txn.Event) error) error {
	p.loop.Filter(part)
	if err := p.router.Route(part); err != nil {
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
func (p *pipeline) committedLarge(after gtid.Set, t *txn.Txn, rows int) error {
	p.s.metrics.Rows.Add(float64(rows))
	if err := p.committed(after, []*txn.Txn{t}, true); err != nil {
		return err
	}
	p.s.status.update(func(x *Status) { x.RowsApplied += int64(rows) })
	return nil
}

// release frees the relay entries up to t: they are on the target. Entries
// skipped as already applied (after a restart) are released too, or a full
// spool of them would stop reading for good.
func (p *pipeline) release(t *txn.Txn) error {
	if p.relay == nil || t.RelaySeq == 0 {
		return nil
	}
	if err := p.relay.Release(t.RelaySeq, t.RelayEnd); err != nil {
		return fmt.Errorf("releasing relay entries: %w", err)
	}
	size := p.relay.Size()
	p.s.metrics.RelayBytes.Set(float64(size))
	p.s.status.update(func(x *Status) { x.RelayBytes = size })
	return nil
}

// committed moves the position after a target commit and records it locally.
func (p *pipeline) committed(after gtid.Set, batch []*txn.Txn, written bool) error {
	last := batch[len(batch)-1]
	commit := time.Unix(int64(last.Timestamp), 0)
	p.st.advance(after, commit, len(batch))
	p.s.metrics.Transactions.Add(float64(len(batch)))
	p.s.metrics.LastCommit.Set(float64(last.Timestamp))
	if written {
		p.written = after.String()
	}
	if err := p.store.RecordPosition(p.s.cfg.Channel, checkpoint.Position{Flavor: p.flavor, GTIDSet: after.String(), Written: p.written}); err != nil {
		return fmt.Errorf("recording position locally: %w", err)
	}
	if err := p.release(last); err != nil {
		return err
	}
	rows := 0
	for _, t := range batch {
		rows += t.RowCount()
	}
	// The applied set and the lag in one status update: /status never
	// shows the one ahead of the source set the other was measured with.
	p.s.refreshLag(p.st, func(x *Status) {
		x.AppliedGTIDSet = after.String()
		x.LastCommit = commit.UTC()
		x.TxnsApplied += int64(len(batch))
		x.RowsApplied += int64(rows)
	})
	return nil
}
