package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
)

// The pieces of a transaction too big to hold whole are spooled as it
// arrives, before its entry: key p/<entry number>/<piece number>, each
// encoded like an entry (checksum, format id, GTID, raw events).

func (r *Relay) partKey(seq uint64, i int) []byte {
	return fmt.Appendf(nil, "%sp/%016x/%08x", r.prefix, seq, i)
}

// openParts counts the pieces of held entries and deletes those of an
// entry never appended (the process stopped while its transaction was
// arriving).
func (r *Relay) openParts() error {
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: r.partKey(0, 0), UpperBound: r.partKey(1<<63-1, 0)})
	if err != nil {
		return err
	}
	b := r.db.NewBatch()
	defer b.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var seq uint64
		var i int
		if _, err := fmt.Sscanf(string(it.Key()[len(r.prefix)+2:]), "%016x/%08x", &seq, &i); err != nil {
			it.Close()
			return fmt.Errorf("relay piece key %q: %w", it.Key(), err)
		}
		if seq < r.first || seq >= r.next {
			if err := b.Delete(it.Key(), nil); err != nil {
				it.Close()
				return err
			}
			continue
		}
		ps := r.parts[seq]
		ps.n++
		ps.bytes += int64(len(it.Value()))
		r.parts[seq] = ps
		r.size += int64(len(it.Value()))
	}
	if err := it.Close(); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// AppendPart spools piece number index (from 0) of the transaction being
// received, to be completed by the AppendMany whose first item carries the
// number of pieces. A first piece drops the pieces of a transaction that
// never completed. It waits while the spool is at its quota (the
// transaction's own pieces do not count: alone it may exceed it).
func (r *Relay) AppendPart(ctx context.Context, gtid string, format []byte, events [][]byte, index int, paused func()) error {
	fid := crc32.Checksum(format, castagnoli)
	n := entryLen(gtid, fid, events, 0)
	if err := r.waitRoom(ctx, n, paused); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if index != 0 && index != r.pending {
		return fmt.Errorf("relay: piece %d of transaction %s follows %d pieces", index+1, gtid, r.pending)
	}
	b := r.db.NewBatchWithSize(n + len(format) + 256)
	defer b.Close()
	if index == 0 {
		if err := r.abandon(b); err != nil {
			return err
		}
	}
	if !r.formats[fid] {
		if err := b.Set(r.formatKey(fid), format, nil); err != nil {
			return err
		}
	}
	key := r.partKey(r.next, index)
	op := b.SetDeferred(len(key), n)
	copy(op.Key, key)
	encodeEntryTo(op.Value[:0], gtid, fid, events, 0)
	if err := op.Finish(); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	r.formats[fid] = true
	if index == 0 {
		r.clearPending()
	}
	r.pending++
	r.pendingBytes += int64(n)
	r.size += int64(n)
	return nil
}

// abandon adds to b the deletion of the pending pieces: what comes next (a
// first piece, a whole transaction, a new stream) says their transaction
// never completed. clearPending forgets them once b is committed.
func (r *Relay) abandon(b *pebble.Batch) error {
	for i := range r.pending {
		if err := b.Delete(r.partKey(r.next, i), nil); err != nil {
			return err
		}
	}
	return nil
}

func (r *Relay) clearPending() {
	r.size -= r.pendingBytes
	r.pending, r.pendingBytes = 0, 0
}

// DropPending deletes the pieces of a transaction whose entry was never
// appended (the stream broke while it arrived, and it comes again whole)
// and returns how many there were.
func (r *Relay) DropPending() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.pending
	if n == 0 {
		return 0, nil
	}
	b := r.db.NewBatch()
	defer b.Close()
	if err := r.abandon(b); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, err
	}
	r.clearPending()
	r.notify()
	return n, nil
}

// ReadParts yields, in order, the raw events of the n pieces spooled
// before entry seq, one piece in memory at a time. Safe beside the
// reader's Read (it has no iterator of its own).
func (r *Relay) ReadParts(seq uint64, gtid string, n int, fn func(raw []byte) error) error {
	for i := range n {
		v, closer, err := r.db.Get(r.partKey(seq, i))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("relay entry %d: piece %d of %d is missing: %w", seq, i+1, n, ErrRelayCorrupt)
		}
		if err != nil {
			return fmt.Errorf("relay entry %d, piece %d: %w", seq, i+1, err)
		}
		e, _, err := decodeEntry(v)
		closer.Close()
		if err == nil && e.GTID != gtid {
			err = fmt.Errorf("%w: piece of %s where %s belongs", ErrRelayCorrupt, e.GTID, gtid)
		}
		if err != nil {
			return fmt.Errorf("relay entry %d, piece %d: %w", seq, i+1, err)
		}
		for _, raw := range e.Events {
			if err := fn(raw); err != nil {
				return err
			}
		}
	}
	return nil
}
