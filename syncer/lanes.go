package syncer

import (
	"context"
	"fmt"
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

// span is one committed batch: the positions before and after it.
type span struct{ before, after gtid.Set }

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
	p       *pipeline
	queues  []chan *laneJob
	results chan *laneJob
	held    []map[uint64]int // per lane: keys of its queued and applying batches
	jobs    []int            // per lane: batches queued or applying
	order   []*laneJob       // dispatched, in source order, above the watermark
	head    gtid.Set         // after the last dispatched transaction
	seed    []span           // batches a previous run committed beyond the watermark
	// stale: the watermark moved past the channel's progress row (lane
	// batches write their lanes' rows only).
	stale bool
}

// applyLanes is applyLoop with parallel lanes.
func (p *pipeline) applyLanes(ctx context.Context, q *txn.Queue) error {
	n := p.s.cfg.Lanes
	l := &lanes{p: p, results: make(chan *laneJob, n*laneDepth), head: p.st.snapshot(), seed: p.st.extraSpans()}
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
	p := l.p
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	var next *txn.Txn
	for {
		if p.st.done() {
			if err := l.drain(ctx); err != nil {
				return err
			}
			if err := l.writeMainRow(ctx); err != nil {
				return err
			}
			return errDone
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
				if err := l.finish(j); err != nil {
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
			if keep, err := p.take(t, func() error { return l.drain(ctx) }); err != nil {
				return err
			} else if !keep {
				continue
			}
		}
		if alone(t) {
			p.s.status.update(func(x *Status) { x.LaneBarriers++ })
			err := l.barrier(ctx, func() error {
				var err error
				next, err = p.applyAlone(ctx, t, q)
				return err
			})
			if err != nil {
				return err
			}
			continue
		}
		batch, rows, n, err := p.fill(q, t)
		if err != nil {
			return err
		}
		next = n
		if len(l.order) == 0 && q.Len() == 0 {
			// Nothing applying, nothing waiting: not behind. One batch
			// gains nothing from a lane and pays a hand-off (steady-state
			// lag), so it goes the serial way, with the channel's row.
			if err := l.serial(ctx, batch, rows); err != nil {
				return err
			}
			continue
		}
		if err := l.dispatchBatch(ctx, batch, rows); err != nil {
			return err
		}
	}
}

func (l *lanes) dispatchBatch(ctx context.Context, batch []*txn.Txn, rows int) error {
	p := l.p
	after, err := p.next(l.head, batch)
	if err != nil {
		return err
	}
	job := &laneJob{batch: batch, rows: rows, before: l.head, after: after}
	if onlyEchoes(batch) {
		// Nothing to write (see applyBatch); the watermark passes it in order.
		job.done = true
		l.head = after
		l.order = append(l.order, job)
		return l.pop()
	}
	ks := apply.NewKeys()
	for _, t := range batch {
		if err := p.ex.Keys(ctx, t, ks, p.s.cfg.ParallelTriggers); err != nil {
			return err
		}
	}
	if ks.Barrier != "" || p.st.idempotent() {
		p.s.status.update(func(x *Status) { x.LaneBarriers++ })
		return l.serial(ctx, batch, rows)
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
		if err := l.wait(ctx); err != nil {
			return err
		}
	}
	busy := false
	for i, n := range l.jobs {
		busy = busy || (n > 0 && i != job.lane)
	}
	if busy {
		p.s.status.update(func(x *Status) { x.LaneOverlaps++ })
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
func (l *lanes) serial(ctx context.Context, batch []*txn.Txn, rows int) error {
	defer l.p.toApply().Done(batch...)
	return l.barrier(ctx, func() error { return l.p.applyBatch(ctx, batch, rows) })
}

// barrier drains every lane, runs fn alone (it writes the channel's own
// progress row), and continues from where fn left the position.
func (l *lanes) barrier(ctx context.Context, fn func() error) error {
	if err := l.drain(ctx); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	l.head, l.stale = l.p.st.snapshot(), false
	return nil
}

func (l *lanes) wait(ctx context.Context) error {
	select {
	case j := <-l.results:
		return l.finish(j)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *lanes) drain(ctx context.Context) error {
	for len(l.order) > 0 {
		if err := l.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// finish takes a lane's answer and moves the watermark over every batch
// now committed in source order.
func (l *lanes) finish(j *laneJob) error {
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
	return l.pop()
}

func (l *lanes) pop() error {
	p := l.p
	for len(l.order) > 0 && l.order[0].done {
		j := l.order[0]
		l.order = l.order[1:]
		p.toApply().Done(j.batch...)
		if j.wrote {
			p.s.metrics.Rows.Add(float64(j.rows))
		}
		if err := p.committed(j.after, j.batch, false); err != nil {
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
	p := l.p
	w := p.st.snapshot()
	if p.written == w.String() {
		return nil
	}
	if err := p.s.progress().Write(ctx, p.ex.DB(), p.s.cfg.Channel, p.flavor, w.String()); err != nil {
		return err
	}
	p.written, l.stale = w.String(), false
	return p.store.RecordPosition(p.s.cfg.Channel, checkpoint.Position{Flavor: p.flavor, GTIDSet: w.String(), Written: p.written})
}

// work is one lane: it applies its batches in order, each with its row.
func (l *lanes) work(ctx context.Context, lane int) error {
	p := l.p
	progress := p.s.progress()
	done := slices.Clone(l.seed)
	for {
		var job *laneJob
		select {
		case job = <-l.queues[lane]:
		case <-ctx.Done():
			return ctx.Err()
		}
		w := p.st.snapshot()
		kept := done[:0:0]
		for _, s := range done {
			if !w.Contains(s.after) {
				kept = append(kept, s)
			}
		}
		kept = append(kept, span{job.before, job.after})
		ranges := make([]checkpoint.LaneRange, len(kept))
		for i, s := range kept {
			ranges[i] = checkpoint.LaneRange{Before: s.before.String(), After: s.after.String()}
		}
		q, args := progress.LaneSQL(p.s.cfg.Channel, lane, p.flavor, w.String(), ranges)
		began := time.Now()
		job.err = p.ex.ApplyRowsRecord(ctx, job.batch, apply.Record{SQL: q, Args: args,
			Landed: func(ctx context.Context) (bool, error) { return l.landed(ctx, lane, job) }})
		if job.err == nil {
			done = kept
			p.s.metrics.ApplyDuration.Observe(time.Since(began).Seconds())
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
	rows, err := l.p.s.progress().LoadLanes(ctx, l.p.ex.DB(), l.p.s.cfg.Channel)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if r.Lane != lane {
			continue
		}
		for _, d := range r.Done {
			if d.Before == job.before.String() && d.After == job.after.String() {
				return true, nil
			}
		}
	}
	return false, nil
}

// merge is the exact applied set that the channel's row (w) and its lane
// rows record: the highest watermark, extended by every batch that
// continues it, and the batches still beyond it.
func merge(flavor string, w gtid.Set, rows []checkpoint.LaneRow) (gtid.Set, []span, error) {
	var spans []span
	parse := func(lane int, s string) (gtid.Set, error) {
		set, err := gtid.Parse(flavor, s)
		if err != nil {
			return gtid.Set{}, fmt.Errorf("lane %d's row on the target: %w", lane, err)
		}
		return set, nil
	}
	for _, r := range rows {
		if r.Flavor != flavor {
			return gtid.Set{}, nil, fmt.Errorf("lane %d's row on the target was recorded for a %s source, but the source is %s: use another channel name for a different source", r.Lane, r.Flavor, flavor)
		}
		lw, err := parse(r.Lane, r.Watermark)
		if err != nil {
			return gtid.Set{}, nil, err
		}
		if !w.Contains(lw) {
			w = lw // watermarks are prefixes of one stream
		}
		for _, d := range r.Done {
			b, err := parse(r.Lane, d.Before)
			if err != nil {
				return gtid.Set{}, nil, err
			}
			a, err := parse(r.Lane, d.After)
			if err != nil {
				return gtid.Set{}, nil, err
			}
			spans = append(spans, span{b, a})
		}
	}
	for moved := true; moved; {
		moved = false
		for _, s := range spans {
			if !w.Contains(s.after) && w.Contains(s.before) {
				w, moved = s.after, true
			}
		}
	}
	var beyond []span
	for _, s := range spans {
		if !w.Contains(s.after) && !slices.ContainsFunc(beyond, func(o span) bool { return o.after.Equal(s.after) && o.before.Equal(s.before) }) {
			beyond = append(beyond, s)
		}
	}
	return w, beyond, nil
}
