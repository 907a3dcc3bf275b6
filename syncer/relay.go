package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Relay states in the status.
const (
	RelayOff     = "off"
	RelayReading = "reading"
	RelayPaused  = "paused: quota reached"
)

// errRelayRefetch: a corrupt relay entry was dropped with everything after
// it; the pipeline restarts and reads it from the source again.
var errRelayRefetch = errors.New("corrupt relay entry dropped; reading it from the source again")

// corruptEntry is the replay finding relay entry seq corrupt; once every
// stage of the attempt has stopped, the relay is truncated at at (where
// the entry's records begin) and it is read from the source again.
type corruptEntry struct {
	seq   uint64
	at    int64
	cause error
}

func (e *corruptEntry) Error() string { return fmt.Sprintf("relay entry %d: %v", e.seq, e.cause) }
func (e *corruptEntry) Unwrap() error { return e.cause }

// readFrom is where the source stream continues: the relay's end when it
// covers what the target applied, else the applied position (a relay
// behind the target, e.g. after a machine crash took its unsynced tail or
// the target was restored, is emptied).
func (p *pipeline) readFrom() (gtid.Set, error) {
	applied := p.st.appliedSet()
	if p.relay == nil {
		return applied, nil
	}
	// Parts of a transaction the last attempt was receiving: it comes
	// again whole.
	if n, err := p.relay.DropPending(); err != nil {
		return gtid.Set{}, err
	} else if n > 0 {
		p.s.cfg.Logger.Info("dropped the spooled pieces of a transaction the stream broke in; it is read again whole", "component", "relay", "pieces", n)
	}
	end, ok := p.relay.End()
	if ok {
		set, err := gtid.Parse(p.flavor, end.GTIDSet)
		if err == nil && set.Contains(applied) {
			// What the relay let go (released, its segments deleted) must
			// be on the target: one restored from an older backup lacks it.
			start, hasStart := p.relay.Start()
			before, err := gtid.Parse(p.flavor, start.GTIDSet)
			if !hasStart || err == nil && applied.Contains(before) {
				return set, nil
			}
			p.s.cfg.Logger.Warn("the target lacks transactions the relay already let go as applied (was it restored from an older backup?); emptied the relay, reading again from the target's position",
				"component", "relay", "relay_start", start.GTIDSet, "gtid", applied.String())
		}
	}
	first, next := p.relay.Bounds()
	if err := p.relay.Reset(checkpoint.At(applied, gtid.Set{})); err != nil {
		return gtid.Set{}, err
	}
	if ok && next > first {
		p.s.cfg.Logger.Warn("relay does not cover the target's position; emptied it", "component", "relay", "relay_end", end.GTIDSet, "gtid", applied.String())
	}
	return applied, nil
}

// spool appends every fetched transaction to the relay and hands what it
// wrote to the replay while the replay keeps up (hot).
func (p *pipeline) spool(ctx context.Context, from gtid.Set, hot *handover) error {
	end := from
	var lastLog time.Time
	var state string // what the status was last told, and when
	var shown time.Time
	paused := func() {
		// Once a minute at most: a spool at its quota pauses at every
		// transaction; /status shows the state all along.
		if time.Since(lastLog) > time.Minute {
			p.s.cfg.Logger.Warn("relay reached its quota: reading from the source paused until the applier frees space",
				"component", "relay", "quota_bytes", p.s.cfg.RelayQuota)
			lastLog = time.Now()
		}
		p.s.status.update(func(x *Status) { x.RelayState = RelayPaused })
		state = RelayPaused
	}
	var next *txn.Txn // taken from fetched, not yet spooled
	for {
		t := next
		next = nil
		if t == nil {
			var err error
			if t, err = p.fetched.Get(ctx); err != nil {
				return err
			}
		}
		if t.Part {
			if err := p.relay.AppendPart(ctx, t.GTID, t.Format, t.Raw, t.Parts, paused); err != nil {
				return fmt.Errorf("spooling a piece of GTID %s: %w", t.GTID, err)
			}
			p.fetched.Done(t)
			continue
		}
		// What the stream has queued besides goes in the same write (up to
		// a part of the next transaction).
		group, bytes := []*txn.Txn{t}, t.Bytes
	more:
		for len(group) < spoolGroup && bytes < spoolGroupBytes {
			t2, ok := p.fetched.TryGet()
			if !ok {
				break more
			}
			if t2.Part {
				next = t2
				break more
			}
			group, bytes = append(group, t2), bytes+t2.Bytes
		}
		items := make([]checkpoint.RelayItem, len(group))
		for i, t := range group {
			items[i] = checkpoint.RelayItem{GTID: t.GTID, Format: t.Format, Events: t.Raw, Parts: t.Parts}
		}
		after, err := txn.After(end, group)
		if err != nil {
			return err
		}
		if _, err := p.relay.AppendMany(ctx, items, checkpoint.At(after, gtid.Set{}), paused); err != nil {
			return fmt.Errorf("spooling GTIDs %s..%s: %w", group[0].GTID, group[len(group)-1].GTID, err)
		}
		p.fetched.Done(group...)
		for i, t := range group {
			t.RelaySeq, t.RelayEnd = items[i].Seq, items[i].End
			hot.offer(t)
		}
		end = after
		// Shown at most every 100 ms (a group may be one transaction);
		// the sync publishes every second besides.
		if state != RelayReading || time.Since(shown) > 100*time.Millisecond {
			state, shown = RelayReading, time.Now()
			p.s.status.update(func(x *Status) { x.RelayState = RelayReading })
			p.publishRelay()
		}
	}
}

// spoolGroup and spoolGroupBytes bound what is spooled in one write;
// spoolQueueBytes what the stream may read ahead of the spool.
const (
	spoolGroup      = 64
	spoolGroupBytes = 1 << 20
	spoolQueueBytes = 8 << 20
)

// publishRelay shows the relay's size and what it durably holds: the
// source may purge what read_gtid_set names even if this machine crashes.
func (p *pipeline) publishRelay() {
	size := p.relay.Size()
	synced, _ := p.relay.Synced()
	p.s.metrics.RelayBytes.Set(float64(size))
	p.s.status.update(func(x *Status) { x.RelayBytes, x.ReadGTIDSet = size, synced.GTIDSet })
}

// syncRelay fsyncs what the spool appended every RelaySyncInterval, off
// the spool's path (an fsync takes milliseconds, which the hot tail's
// latency should not pay).
func (p *pipeline) syncRelay(ctx context.Context) error {
	tick := time.NewTicker(checkpoint.RelaySyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := p.relay.Sync(); err != nil {
			return err
		}
		p.publishRelay()
	}
}

// replay decodes relay entries in order and hands them to the applier:
// from memory (hot) while it keeps up with the spool, else from the
// relay's files.
func (p *pipeline) replay(ctx context.Context, hot *handover) error {
	dec := binlog.NewDecoder(p.flavor)
	defer p.relay.StopReading()
	cursor, _ := p.relay.Bounds()
	for {
		changed := p.relay.Changed()
		first, next := p.relay.Bounds()
		cursor = max(cursor, first)
		var t *txn.Txn
		var err error
		if h := hot.take(cursor, cursor >= next); h != nil {
			if t, err = p.decode(dec, h.Format, h.Raw, h.Bytes); err == nil {
				p.relay.Passed(cursor, h.RelayEnd)
				t.RelayEnd = h.RelayEnd
			} else {
				t, err = p.readEntry(dec, cursor) // the same bytes, with the place to cut
			}
		} else if cursor < next {
			t, err = p.readEntry(dec, cursor)
		} else {
			select {
			case <-changed:
			case <-hot.ready:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		t.RelaySeq = cursor
		if err := p.queued.Put(ctx, t); err != nil {
			return err
		}
		cursor++
	}
}

// readEntry reads entry seq from the relay's files and decodes it. One the
// target already has (read again after a restart) is handed on undecoded,
// to be released in order.
func (p *pipeline) readEntry(dec *binlog.Decoder, seq uint64) (*txn.Txn, error) {
	e, err := p.relay.Read(seq)
	var t *txn.Txn
	if err == nil {
		switch {
		case p.st.appliedSet().ContainsOne(e.GTID):
			t = &txn.Txn{GTID: e.GTID}
		case e.Parts > 0:
			// Checked here, a part at a time: a corrupt part is dropped
			// and fetched again like a corrupt entry. The applier decodes
			// it event by event as it applies it (the applier).
			readParts := func(fn func([]byte) error) error { return p.relay.ReadParts(seq, e.GTID, e.Parts, e.PartsAt, fn) }
			if err = readParts(func([]byte) error { return nil }); err == nil {
				t = binlog.LazyParts(e.GTID, e.Format, e.Events, e.Size, readParts)
			}
		default:
			t, err = p.decode(dec, e.Format, e.Events, e.Size)
		}
	}
	if errors.Is(err, checkpoint.ErrRelayCorrupt) || errors.Is(err, binlog.ErrCorrupt) {
		return nil, &corruptEntry{seq: seq, at: p.relay.ReadAt(), cause: err}
	}
	if err != nil {
		return nil, err
	}
	t.RelayEnd = e.End
	return t, nil
}

// decode decodes a transaction's raw events; one bigger than
// Config.LazyBytes is decoded by the applier event by event as it applies
// it (the applier).
func (p *pipeline) decode(dec *binlog.Decoder, format []byte, raw [][]byte, size int) (*txn.Txn, error) {
	if size > p.s.cfg.LazyBytes {
		return dec.Lazy(format, raw)
	}
	return dec.Decode(format, raw)
}

// dropCorrupt truncates the relay at a bad entry and moves its end back to
// what the target applied plus the good entries before it. Every stage of
// the attempt has stopped.
func (p *pipeline) dropCorrupt(bad *corruptEntry) error {
	end := p.st.appliedSet()
	first, _ := p.relay.Bounds()
	gtids, err := p.relay.GTIDs(first, bad.seq)
	if err != nil {
		return fmt.Errorf("%w; and reading the entries before it: %w", bad, err)
	}
	for _, g := range gtids {
		if !end.ContainsOne(g) {
			if end, err = end.Add(g); err != nil {
				return err
			}
		}
	}
	if err := p.relay.Truncate(bad.seq, bad.at, checkpoint.At(end, gtid.Set{})); err != nil {
		return err
	}
	p.s.cfg.Logger.Warn("relay entry is corrupt: dropped it and everything after it; reading again from the source",
		"component", "relay", "entry", bad.seq, "gtid", end.String(), "error", bad.cause)
	return errRelayRefetch
}

// handover passes the transactions the spool has just written to the
// replay while they are still in memory: a replay that keeps up decodes
// each once, from the bytes the stream read, and never reads the relay's
// files back. It holds a run of consecutive entries starting at the one
// the replay asked for; once one is missed (the replay is behind, or the
// run is full) the replay reads from the files until it has read all the
// spool wrote and asks again. Written before handed over, every entry the
// applier sees is in the relay: a process crash cannot leave the relay
// short of what was applied (a machine crash can; see readFrom).
type handover struct {
	mu    sync.Mutex
	q     []*txn.Txn
	bytes int
	want  uint64        // the entry the run continues with; 0: none
	ready chan struct{} // a send (buffered 1) when one arrives
}

// The run's bounds: what the replay may find in memory when it comes back
// from handing the applier a batch.
const (
	hotTxns  = 256
	hotBytes = 4 << 20
)

func newHandover() *handover { return &handover{ready: make(chan struct{}, 1)} }

// offer hands over t, just spooled, if it continues the run the replay
// waits for; else the run ends and t is left to the files.
func (h *handover) offer(t *txn.Txn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.want == 0 || t.RelaySeq != h.want || t.Parts > 0 || len(h.q) >= hotTxns || h.bytes+t.Bytes > hotBytes {
		h.want = 0
		return
	}
	h.q = append(h.q, t)
	h.bytes += t.Bytes
	h.want++
	select {
	case h.ready <- struct{}{}:
	default:
	}
}

// take returns entry seq if memory holds it. When it does not and the
// replay has read everything spooled (caughtUp), the run starts at seq.
func (h *handover) take(seq uint64, caughtUp bool) *txn.Txn {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.q) > 0 && h.q[0].RelaySeq < seq {
		h.pop()
	}
	if len(h.q) > 0 && h.q[0].RelaySeq == seq {
		return h.pop()
	}
	if len(h.q) == 0 && caughtUp {
		h.want = seq
	}
	return nil
}

func (h *handover) pop() *txn.Txn {
	t := h.q[0]
	h.q[0] = nil
	h.q = h.q[1:]
	h.bytes -= t.Bytes
	return t
}
