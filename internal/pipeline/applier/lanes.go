package applier

import (
	"context"
	"slices"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
	"golang.org/x/sync/errgroup"
)

// Parallel apply (Config.Lanes > 1).
//
// The dispatcher cuts the stream into batches as the serial applier does
// and reads each batch's conflict keys (internal/apply, Keys). A batch
// whose keys meet no applying batch's goes to the least busy lane; one
// that meets the batches of exactly one lane queues behind them on that
// lane; one that meets several lanes waits until it meets at most one.
// DDL, tables without a unique key and tables with triggers are barriers:
// every lane drains, then the batch runs alone through the serial path.
//
// Exactly once: each lane commits its batch together with its own row in
// the lanes table (checkpoint.Progress, LaneSQL): the watermark it saw
// (every transaction up to it is committed) and every batch it committed
// beyond that watermark, seeded with what a previous run left beyond it.
// Whatever a crash interrupts, the union of the rows is exactly the set
// of committed transactions (merge); the stream restarts at the highest
// watermark and empties the transactions already applied beyond it.
// The watermark moves over batches in source order only, and the local
// checkpoint and the relay follow it.

// laneDepth is how many batches may wait on one lane.
const laneDepth = 2

// mainRowIdle is how long the lanes must be idle before the channel's own
// progress row is brought up to the watermark (for readers of that row).
const mainRowIdle = time.Second

type laneJob struct {
	batch         []*txn.Txn
	rows          int
	before, after gtid.Set
	keys          *apply.Keys
	lane          int
	done          bool // committed (or nothing to write)
	wrote         bool // the target was written
	err           error
}

type lanes struct {
	a       *Applier
	queues  []chan *laneJob
	results chan *laneJob
	held    []map[uint64]int // per lane: keys of its queued and applying batches
	jobs    []int            // per lane: batches queued or applying
	order   []*laneJob       // dispatched, in source order, above the watermark
	head    gtid.Set         // after the last dispatched transaction
	seed    []Span           // batches a previous run committed beyond the watermark
	// stale: the watermark moved past the channel's progress row (lane
	// batches write their lanes' rows only).
	stale bool
}

// runLanes is runSerial with parallel lanes.
func (a *Applier) runLanes(ctx context.Context, q *txn.Queue) error {
	n := a.cfg.Lanes
	l := &lanes{a: a, results: make(chan *laneJob, n*laneDepth), head: a.Applied(), seed: a.beyondSpans()}
	for range n {
		l.queues = append(l.queues, make(chan *laneJob, laneDepth))
		l.held = append(l.held, map[uint64]int{})
		l.jobs = append(l.jobs, 0)
	}
	lctx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(lctx)
	for i := range n {
		g.Go(func() error { return l.work(gctx, i) })
	}
	err := l.dispatch(gctx, q)
	stop()
	_ = g.Wait()
	return err
}

func (l *lanes) dispatch(ctx context.Context, q *txn.Queue) error {
	a := l.a
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	var next *txn.Txn
	for {
		if a.done() {
			if err := l.drain(ctx, q); err != nil {
				return err
			}
			if err := l.writeMainRow(ctx); err != nil {
				return err
			}
			return ErrCaughtUp
		}
		t := next
		next = nil
		if t == nil {
			var idleC <-chan time.Time
			if len(l.order) == 0 && l.stale {
				idle.Reset(mainRowIdle)
				idleC = idle.C
			}
			select {
			case t = <-q.C():
			case j := <-l.results:
				if err := l.finish(q, j); err != nil {
					return err
				}
				continue
			case <-idleC:
				if err := l.writeMainRow(ctx); err != nil {
					return err
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
			// An applied one only comes at the start of a stream, before
			// anything is dispatched; it is released once the lanes drain.
			if keep, err := a.take(q, t, func() error { return l.drain(ctx, q) }); err != nil {
				return err
			} else if !keep {
				continue
			}
		}
		if alone(t) {
			a.h.Metrics.Count(LaneBarrier)
			err := l.barrier(ctx, q, func() error {
				var err error
				next, err = a.applyAlone(ctx, t, q)
				return err
			})
			if err != nil {
				return err
			}
			continue
		}
		batch, rows, n, err := a.fill(q, t)
		if err != nil {
			return err
		}
		next = n
		if len(l.order) == 0 && q.Len() == 0 {
			// Nothing applying, nothing waiting: not behind. One batch
			// gains nothing from a lane and pays a hand-off (steady-state
			// lag), so it goes the serial way, with the channel's row.
			if err := l.serial(ctx, q, batch, rows); err != nil {
				return err
			}
			continue
		}
		if err := l.dispatchBatch(ctx, q, batch, rows); err != nil {
			return err
		}
	}
}

func (l *lanes) dispatchBatch(ctx context.Context, q *txn.Queue, batch []*txn.Txn, rows int) error {
	a := l.a
	after, err := txn.After(l.head, batch)
	if err != nil {
		return err
	}
	job := &laneJob{batch: batch, rows: rows, before: l.head, after: after}
	if onlyEchoes(batch) {
		// Nothing to write (see applyBatch); the watermark passes it in order.
		job.done = true
		l.head = after
		l.order = append(l.order, job)
		return l.pop(q)
	}
	ks := apply.NewKeys()
	for _, t := range batch {
		if err := a.ex.Keys(ctx, t, ks, a.cfg.ParallelTriggers); err != nil {
			return err
		}
	}
	if ks.Barrier != "" || a.idempotent() {
		a.h.Metrics.Count(LaneBarrier)
		return l.serial(ctx, q, batch, rows)
	}
	job.keys = ks
	for {
		var meets []int
		for i, held := range l.held {
			if l.jobs[i] > 0 && holds(held, ks.Check) {
				meets = append(meets, i)
			}
		}
		lane := -1
		switch len(meets) {
		case 0:
			lane = 0
			for i := range l.jobs {
				if l.jobs[i] < l.jobs[lane] {
					lane = i
				}
			}
		case 1:
			lane = meets[0]
		}
		if lane >= 0 && l.jobs[lane] < laneDepth {
			job.lane = lane
			break
		}
		if err := l.wait(ctx, q); err != nil {
			return err
		}
	}
	busy := false
	for i, n := range l.jobs {
		busy = busy || (n > 0 && i != job.lane)
	}
	if busy {
		a.h.Metrics.Count(LaneOverlap)
	}
	for k := range ks.Reg {
		l.held[job.lane][k]++
	}
	l.jobs[job.lane]++
	l.head = after
	l.order = append(l.order, job)
	l.queues[job.lane] <- job // never blocks: jobs < laneDepth
	return nil
}

func holds(held map[uint64]int, check map[uint64]struct{}) bool {
	if len(held) == 0 {
		return false
	}
	for k := range check {
		if held[k] > 0 {
			return true
		}
	}
	return false
}

// serial applies a batch the serial way, with the channel's progress row,
// once every lane has drained.
func (l *lanes) serial(ctx context.Context, q *txn.Queue, batch []*txn.Txn, rows int) error {
	defer q.Done(batch...)
	return l.barrier(ctx, q, func() error { return l.a.applyBatch(ctx, batch, rows) })
}

// barrier drains every lane, runs fn alone (it writes the channel's own
// progress row), and continues from where fn left the position.
func (l *lanes) barrier(ctx context.Context, q *txn.Queue, fn func() error) error {
	if err := l.drain(ctx, q); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	l.head, l.stale = l.a.Applied(), false
	return nil
}

func (l *lanes) wait(ctx context.Context, q *txn.Queue) error {
	select {
	case j := <-l.results:
		return l.finish(q, j)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *lanes) drain(ctx context.Context, q *txn.Queue) error {
	for len(l.order) > 0 {
		if err := l.wait(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// finish takes a lane's answer and moves the watermark over every batch
// now committed in source order.
func (l *lanes) finish(q *txn.Queue, j *laneJob) error {
	if j.err != nil {
		return j.err
	}
	j.done, j.wrote = true, true
	held := l.held[j.lane]
	for k := range j.keys.Reg {
		if held[k]--; held[k] <= 0 {
			delete(held, k)
		}
	}
	l.jobs[j.lane]--
	return l.pop(q)
}

// pop moves the watermark over the batches committed in source order.
func (l *lanes) pop(q *txn.Queue) error {
	a := l.a
	for len(l.order) > 0 && l.order[0].done {
		j := l.order[0]
		l.order = l.order[1:]
		q.Done(j.batch...)
		if j.wrote {
			a.h.Metrics.RowsWritten(j.rows)
		}
		if err := a.committed(j.after, j.batch, false, rowsOf(j.batch)); err != nil {
			return err
		}
		l.stale = true
	}
	return nil
}

// writeMainRow brings the channel's progress row up to the watermark while
// no lane applies (the lanes' rows already hold it; readers of the
// channel's row see it this way).
func (l *lanes) writeMainRow(ctx context.Context) error {
	a := l.a
	w := a.Applied()
	if a.written.Equal(w) {
		return nil
	}
	if err := a.cfg.Progress.Write(ctx, a.ex.DB(), a.cfg.Channel, a.cfg.Flavor, w.String()); err != nil {
		return err
	}
	a.mu.Lock()
	a.written = w
	a.mu.Unlock()
	l.stale = false
	return a.h.Report.Wrote(w)
}

// work is one lane: it applies its batches in order, each with its row.
func (l *lanes) work(ctx context.Context, lane int) error {
	a := l.a
	done := slices.Clone(l.seed)
	for {
		var job *laneJob
		select {
		case job = <-l.queues[lane]:
		case <-ctx.Done():
			return ctx.Err()
		}
		w := a.Applied()
		kept := done[:0:0]
		for _, s := range done {
			if !w.Contains(s.After) {
				kept = append(kept, s)
			}
		}
		kept = append(kept, Span{job.before, job.after})
		ranges := make([]checkpoint.LaneRange, len(kept))
		for i, s := range kept {
			ranges[i] = checkpoint.LaneRange{Before: s.Before.String(), After: s.After.String()}
		}
		q, args := a.cfg.Progress.LaneSQL(a.cfg.Channel, lane, a.cfg.Flavor, w.String(), ranges)
		began := time.Now()
		job.err = a.ex.ApplyRowsRecord(ctx, job.batch, apply.Record{SQL: q, Args: args,
			Landed: func(ctx context.Context) (bool, error) { return l.landed(ctx, lane, job) }})
		if job.err == nil {
			done = kept
			a.h.Metrics.Took(time.Since(began))
		}
		select {
		case l.results <- job:
		case <-ctx.Done():
			return ctx.Err()
		}
		if job.err != nil {
			return nil
		}
	}
}

// landed reads the lane's row: does it record job?
func (l *lanes) landed(ctx context.Context, lane int, job *laneJob) (bool, error) {
	a := l.a
	rows, err := a.cfg.Progress.LoadLanes(ctx, a.ex.DB(), a.cfg.Channel)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if r.Lane != lane {
			continue
		}
		spans, err := spansOf(a.cfg.Flavor, r)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(spans, func(s Span) bool { return s.Before.Equal(job.before) && s.After.Equal(job.after) }) {
			return true, nil
		}
	}
	return false, nil
}
