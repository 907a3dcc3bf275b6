package syncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/applier"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
	"golang.org/x/sync/errgroup"
)

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

// state is the channel's position as the applier reported it, shared with
// the source poller, the relay's replay and /status.
type state struct {
	mu         sync.Mutex
	applied    gtid.Set // covers exactly what the target committed
	until      gtid.Set // catch-up goal
	catchUp    bool
	source     gtid.Set  // source's executed set at the last poll
	lastCommit time.Time // source commit time of the last applied transaction
	txns       int64     // transactions applied by this run
}

// appliedSet is the applied position.
func (st *state) appliedSet() gtid.Set {
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
	st.applied, st.lastCommit = to, commit
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

// appliedSoFar returns transactions applied so far and the last commit time.
func (st *state) appliedSoFar() (int64, time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.txns, st.lastCommit
}

// pipeline is the channel's stages and the attempts at running them:
// stream -> (spool -> relay -> replay) -> queue -> applier.
type pipeline struct {
	s      *Syncer
	ex     *apply.Executor
	store  *checkpoint.Store
	flavor string
	st     *state
	srcDB  *sql.DB              // for diagnosing stream errors
	relay  *checkpoint.Relay    // nil when the relay is off
	echoes *conflict.EchoFilter // drops echoes and our own bookkeeping
	router *route.Router        // filters and renames
	ap     *applier.Applier
	// fetched holds what the stream read and the spool (or, without the
	// relay, the applier) is not through with; queued what the replay
	// decoded and the applier is not through with.
	fetched, queued *txn.Queue
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
	if p.relay == nil && p.echoes.Echoing() {
		// Applied as they arrive, parts could not be checked for the echo
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
	g.Go(func() error { return p.ap.Run(gctx, toApply) })
	err = g.Wait()
	if bad := (*corruptEntry)(nil); errors.As(err, &bad) {
		return p.dropCorrupt(bad)
	}
	return err
}

// The pipeline is the applier's Reporter.

// Committed moves the position after a target commit, records it locally,
// lets the relay go of what it held, and shows it.
func (p *pipeline) Committed(c applier.Commit) error {
	last := c.Txns[len(c.Txns)-1]
	commit := time.Unix(int64(last.Timestamp), 0)
	p.st.advance(c.Applied, commit, len(c.Txns))
	p.s.metrics.Transactions.Add(float64(len(c.Txns)))
	p.s.metrics.LastCommit.Set(float64(last.Timestamp))
	if err := p.store.RecordPosition(p.s.cfg.Channel, checkpoint.At(c.Applied, c.Written)); err != nil {
		return fmt.Errorf("recording position locally: %w", err)
	}
	if err := p.release(last); err != nil {
		return err
	}
	// The applied set and the lag in one status update: /status never
	// shows the one ahead of the source set the other was measured with.
	p.s.refreshLag(p.st, func(x *Status) {
		x.AppliedGTIDSet = c.Applied.String()
		x.LastCommit = commit.UTC()
		x.TxnsApplied += int64(len(c.Txns))
		x.RowsApplied += int64(c.Rows)
	})
	return nil
}

// Wrote records that the target's progress row holds applied.
func (p *pipeline) Wrote(applied gtid.Set) error {
	return p.store.RecordPosition(p.s.cfg.Channel, checkpoint.At(applied, applied))
}

// Passed lets the relay go of t's entries: t is on the target.
func (p *pipeline) Passed(t *txn.Txn) error { return p.release(t) }

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

// filters is the applier's Filter: the operator's skips, the echo filter
// and routing.
type filters struct {
	s      *Syncer
	store  *checkpoint.Store
	skips  *skipSet
	echoes *conflict.EchoFilter
	router *route.Router
}

func (f *filters) Skip(g string) (bool, error) {
	if !f.skips.take(g) {
		return false, nil
	}
	f.s.cfg.Logger.Warn("transaction skipped by the operator (pitcrew skip)", "component", "route", "gtid", g)
	f.s.status.update(func(x *Status) { x.Skipped = append(x.Skipped, g) })
	return true, f.store.MarkSkipped(f.s.cfg.Channel, g)
}

func (f *filters) Echoing() bool          { return f.echoes.Echoing() }
func (f *filters) Echo(t *txn.Txn) bool   { return f.echoes.Filter(t) }
func (f *filters) Route(t *txn.Txn) error { return f.router.Route(t) }

// counters is the applier's Metrics: the channel's series and status.
type counters struct{ s *Syncer }

func (c counters) Took(d time.Duration) { c.s.metrics.ApplyDuration.Observe(d.Seconds()) }
func (c counters) RowsWritten(n int)    { c.s.metrics.Rows.Add(float64(n)) }

func (c counters) Count(e applier.Event) {
	c.s.status.update(func(x *Status) {
		switch e {
		case applier.Echo:
			x.Echoes++
		case applier.LargeTxn:
			x.LargeTxns++
		case applier.LaneBarrier:
			x.LaneBarriers++
		case applier.LaneOverlap:
			x.LaneOverlaps++
		}
	})
}
