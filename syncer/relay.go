package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/binlog"
	"github.com/pitcrew/pitcrew/internal/gtid"
	"github.com/pitcrew/pitcrew/internal/txn"
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

// readFrom is where the source stream continues: the relay's end when it
// covers what the target applied, else the applied position (a relay
// behind the target, e.g. after the target was restored, is emptied).
func (p *pipeline) readFrom() (gtid.Set, error) {
	applied := p.st.snapshot()
	if p.relay == nil {
		return applied, nil
	}
	// Pieces of a transaction the last attempt was receiving: it comes
	// again whole.
	if n, err := p.relay.DropPending(); err != nil {
		return gtid.Set{}, err
	} else if n > 0 {
		p.s.cfg.Logger.Info("dropped the spooled pieces of a transaction the stream broke in; it is read again whole", "component", "relay", "pieces", n)
	}
	end, ok := p.relay.End()
	if ok {
		if set, err := gtid.Parse(p.flavor, end.GTIDSet); err == nil && set.Contains(applied) {
			return set, nil
		}
	}
	_, next := p.relay.Bounds()
	first, _ := p.relay.Bounds()
	if err := p.relay.Truncate(first, checkpoint.Position{Flavor: p.flavor, GTIDSet: applied.String()}); err != nil {
		return gtid.Set{}, err
	}
	if ok && next > first {
		p.s.cfg.Logger.Warn("relay does not cover the target's position; emptied it", "relay_end", end.GTIDSet, "gtid", applied.String())
	}
	return applied, nil
}

// spool appends every fetched transaction to the relay.
func (p *pipeline) spool(ctx context.Context, from gtid.Set, fetched <-chan *txn.Txn) error {
	end := from
	var lastLog time.Time
	paused := func() {
		// Once a minute at most: a spool at its quota pauses at every
		// transaction; /status shows the state all along.
		if time.Since(lastLog) > time.Minute {
			p.s.cfg.Logger.Warn("relay reached its quota: reading from the source paused until the applier frees space",
				"component", "relay", "quota_bytes", p.s.cfg.RelayQuota)
			lastLog = time.Now()
		}
		p.s.status.update(func(x *Status) { x.RelayState = RelayPaused })
	}
	var next *txn.Txn // taken from fetched, not yet spooled
	for {
		t := next
		next = nil
		if t == nil {
			select {
			case t = <-fetched:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if t.Part {
			if err := p.relay.AppendPart(ctx, t.GTID, t.Format, t.Raw, t.Parts, paused); err != nil {
				return fmt.Errorf("spooling a piece of GTID %s: %w", t.GTID, err)
			}
			p.fetched.free(t)
			continue
		}
		// What the stream has queued besides goes in the same pebble batch
		// (up to a piece of the next transaction).
		group, bytes := []*txn.Txn{t}, t.Bytes
	more:
		for len(group) < spoolGroup && bytes < spoolGroupBytes {
			select {
			case t2 := <-fetched:
				if t2.Part {
					next = t2
					break more
				}
				group, bytes = append(group, t2), bytes+t2.Bytes
			default:
				break more
			}
		}
		items := make([]checkpoint.RelayItem, len(group))
		next := end
		for i, t := range group {
			if t.GTID == "" {
				return errors.New("source transaction without GTID: turn GTIDs on at the source (MySQL gtid_mode=ON)")
			}
			var err error
			if next, err = next.Add(t.GTID); err != nil {
				return err
			}
			items[i] = checkpoint.RelayItem{GTID: t.GTID, Format: t.Format, Events: t.Raw, Parts: t.Parts}
			t.Raw = nil // the relay's copy is the one read from now on
		}
		if _, err := p.relay.AppendMany(ctx, items, checkpoint.Position{Flavor: p.flavor, GTIDSet: next.String()}, paused); err != nil {
			return fmt.Errorf("spooling GTIDs %s..%s: %w", group[0].GTID, group[len(group)-1].GTID, err)
		}
		p.fetched.free(group...)
		end = next
		size := p.relay.Size()
		p.s.metrics.RelayBytes.Set(float64(size))
		p.s.status.update(func(x *Status) { x.RelayBytes, x.RelayState, x.ReadGTIDSet = size, RelayReading, end.String() })
	}
}

// spoolGroup and spoolGroupBytes bound what is spooled in one pebble batch;
// spoolQueueBytes what the stream may read ahead of the spool.
const (
	spoolGroup      = 64
	spoolGroupBytes = 1 << 20
	spoolQueueBytes = 8 << 20
)

// replay decodes relay entries in order and hands them to the applier.
func (p *pipeline) replay(ctx context.Context, out chan<- *txn.Txn) error {
	dec := binlog.NewDecoder(p.flavor)
	defer p.relay.StopReading()
	cursor, _ := p.relay.Bounds()
	for {
		changed := p.relay.Changed()
		first, next := p.relay.Bounds()
		cursor = max(cursor, first)
		if cursor >= next {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		e, err := p.relay.Read(cursor)
		var t *txn.Txn
		if err == nil {
			// A transaction bigger than Config.LazyBytes, or spooled in
			// pieces, is decoded by the applier event by event as it
			// applies it (applyLazy).
			seq := cursor
			if e.Parts > 0 {
				// Checked here, a piece at a time: a corrupt piece is
				// dropped and fetched again like a corrupt entry.
				readParts := func(fn func([]byte) error) error { return p.relay.ReadParts(seq, e.GTID, e.Parts, fn) }
				if err = readParts(func([]byte) error { return nil }); err == nil {
					t = binlog.LazyParts(e.GTID, e.Format, e.Events, e.Size, readParts)
				}
			} else if e.Size > p.s.cfg.LazyBytes {
				t, err = dec.Lazy(e.Format, e.Events)
			} else {
				t, err = dec.Decode(e.Format, e.Events)
			}
		}
		if errors.Is(err, checkpoint.ErrRelayCorrupt) || errors.Is(err, binlog.ErrCorrupt) {
			return p.dropCorrupt(cursor, err)
		}
		if err != nil {
			return err
		}
		t.RelaySeq = cursor
		if err := p.queued.admit(ctx, t); err != nil {
			return err
		}
		select {
		case out <- t:
		case <-ctx.Done():
			return ctx.Err()
		}
		cursor++
	}
}

// dropCorrupt truncates the relay at a bad entry and moves its end back to
// what the target applied plus the good entries before it.
func (p *pipeline) dropCorrupt(seq uint64, cause error) error {
	end := p.st.snapshot()
	first, _ := p.relay.Bounds()
	gtids, err := p.relay.GTIDs(first, seq)
	if err != nil {
		return fmt.Errorf("relay entry %d: %w; and reading the entries before it: %w", seq, cause, err)
	}
	for _, g := range gtids {
		one, err := gtid.Parse(p.flavor, g)
		if err != nil {
			return err
		}
		if !end.Contains(one) {
			if end, err = end.Add(g); err != nil {
				return err
			}
		}
	}
	if err := p.relay.Truncate(seq, checkpoint.Position{Flavor: p.flavor, GTIDSet: end.String()}); err != nil {
		return err
	}
	p.s.cfg.Logger.Warn("relay entry is corrupt: dropped it and everything after it; reading again from the source",
		"component", "relay", "entry", seq, "gtid", end.String(), "error", cause)
	return errRelayRefetch
}
