package checkpoint

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
)

// The pieces of a transaction too big to hold whole are appended as it
// arrives, before its entry, each a piece record (index, format id, GTID,
// raw events). The entry that completes them says how many there are and
// where the first starts; between them there is nothing but the pieces,
// and the header and format descriptions of the segments they cross.

// AppendPart spools piece number index (from 0) of the transaction being
// received, to be completed by the AppendMany whose first item carries the
// number of pieces. A first piece drops the pieces of a transaction that
// never completed. It waits while the relay is at its quota (the
// transaction's own pieces do not count: alone it may exceed it).
func (r *Relay) AppendPart(ctx context.Context, gtid string, format []byte, events [][]byte, index int, paused func()) error {
	n := EntrySize(gtid, events)
	if err := r.waitRoom(ctx, n, paused); err != nil {
		return err
	}
	pending, err := r.pending, r.err
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if index != 0 && index != pending {
		return fmt.Errorf("relay: piece %d of transaction %s follows %d pieces", index+1, gtid, pending)
	}
	if err := r.place(n + len(format)); err != nil {
		return err
	}
	at := r.wseg.base + r.wseg.size
	b := r.wbuf[:0]
	fid := crc32.Checksum(format, castagnoli)
	var added map[uint32][]byte
	if !r.wformats[fid] {
		b = appendFormat(b, format)
		added = map[uint32][]byte{fid: format}
	}
	b = appendPiece(b, index, fid, gtid, events)
	if err := r.write(b); err != nil {
		return fmt.Errorf("relay: spooling piece %d of transaction %s: %w", index+1, gtid, err)
	}
	r.keep(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addFormats(added)
	if index == 0 {
		r.abandon(at)
		r.pendingAt = at
	}
	r.pending++
	r.published()
	return nil
}

// DropPending forgets the pieces of a transaction whose entry was never
// appended (the stream broke while it arrived, and it comes again whole)
// and returns how many there were.
func (r *Relay) DropPending() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.pending
	if n == 0 {
		return 0, nil
	}
	r.abandon(r.endOff)
	r.notify()
	return n, nil
}

// ReadParts yields, in order, the raw events of the n pieces spooled
// before entry seq, the first at global offset at, one piece in memory at
// a time. Safe beside Read (it reads with its own file).
func (r *Relay) ReadParts(seq uint64, gtid string, n int, at int64, fn func(raw []byte) error) error {
	rd := reader{off: at}
	defer rd.close()
	for i := 0; i < n; {
		kind, payload, err := r.record(&rd)
		if err != nil {
			return fmt.Errorf("relay entry %d, piece %d of %d: %w", seq, i+1, n, err)
		}
		switch kind {
		case recHeader, recFormat:
			continue
		case recPiece:
		default:
			return fmt.Errorf("relay entry %d, piece %d of %d: %w: a %q record among the pieces", seq, i+1, n, ErrRelayCorrupt, kind)
		}
		// A copy per piece: the decoded rows may alias the events, and
		// the read buffer is reused.
		index, g, events, err := decodePiece(bytes.Clone(payload))
		if err == nil && (index != i || g != gtid) {
			err = fmt.Errorf("%w: piece %d of %s where piece %d of %s belongs", ErrRelayCorrupt, index+1, g, i+1, gtid)
		}
		if err != nil {
			return fmt.Errorf("relay entry %d, piece %d of %d: %w", seq, i+1, n, err)
		}
		for _, raw := range events {
			if err := fn(raw); err != nil {
				return err
			}
		}
		i++
	}
	return nil
}
