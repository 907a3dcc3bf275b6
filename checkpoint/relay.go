package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Relay is the local relay spool of one channel: whole source transactions,
// as the raw binlog events they came in, read ahead of the applier so the
// source may purge its binlogs without losing what we still need.
//
// Entries are numbered 1, 2, 3... in stream order. The end record (the GTID
// set covering everything applied or spooled) is written in the same pebble
// batch as the entry it covers, so after a crash the spool and its end never
// disagree. Each entry carries a CRC32C; a mismatch is ErrRelayCorrupt.
// Entries are deleted once the applier committed them (Release).
//
// A transaction too big to hold in memory arrives in pieces first
// (AppendPart): they are stored under the number its entry will get and
// count for nothing until the entry itself is appended; the pieces of a
// transaction whose entry never came (the stream broke) are dropped.
//
// Append blocks while the spool is at its byte quota; one goroutine appends
// and one reads.
type Relay struct {
	db     *pebble.DB
	prefix string
	quota  int64

	mu      sync.Mutex
	size    int64  // bytes of entries held
	first   uint64 // lowest held entry (== next when empty)
	next    uint64 // the number the next entry gets
	end     Position
	hasEnd  bool
	formats map[uint32]bool // format descriptions already stored
	changed chan struct{}   // closed and replaced on every append and release
	// Pieces (AppendPart): those written for entry next, and those of the
	// held entries that have some.
	pending      int
	pendingBytes int64
	parts        map[uint64]partSpan

	// The reader's side (one goroutine): an iterator that serves entries
	// in order (a Get per entry re-reads index blocks), reopened when it
	// reaches what it could see, and the format descriptions it read.
	it       *pebble.Iterator
	itNext   uint64
	fmtCache map[uint32][]byte
}

// RelayEntry is one spooled transaction.
type RelayEntry struct {
	Seq    uint64
	GTID   string
	Format []byte   // format description event the events decode under
	Events [][]byte // raw binlog events, GTID event first (after the pieces)
	Size   int      // bytes in the spool, pieces included
	// Parts is the number of pieces spooled before the entry (ReadParts
	// yields their events, which come before Events).
	Parts int
}

// partSpan is the pieces of one entry: how many, and their bytes.
type partSpan struct {
	n     int
	bytes int64
}

// ErrRelayCorrupt marks an entry whose checksum or framing is wrong.
var ErrRelayCorrupt = errors.New("relay entry is corrupt")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r *Relay) entryKey(seq uint64) []byte { return fmt.Appendf(nil, "%se/%016x", r.prefix, seq) }
func (r *Relay) formatKey(id uint32) []byte { return fmt.Appendf(nil, "%sf/%08x", r.prefix, id) }
func (r *Relay) endKey() []byte             { return []byte(r.prefix + "end") }

// Relay opens the channel's spool with a byte quota (<= 0: no limit).
func (s *Store) Relay(channel string, quota int64) (*Relay, error) {
	r := &Relay{db: s.db, prefix: "relay/" + channel + "/", quota: quota, formats: map[uint32]bool{}, changed: make(chan struct{}), parts: map[uint64]partSpan{}}
	s.relays = append(s.relays, r)
	if v, closer, err := s.db.Get(r.endKey()); err == nil {
		err = json.Unmarshal(v, &r.end)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("relay end of channel %q: %w", channel, err)
		}
		r.hasEnd = true
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: r.entryKey(0), UpperBound: r.entryKey(1<<63 - 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	r.first, r.next = 1, 1
	for ok := it.First(); ok; ok = it.Next() {
		seq, err := r.seqOf(it.Key())
		if err != nil {
			return nil, err
		}
		if r.size == 0 {
			r.first = seq
		}
		r.size += int64(len(it.Value()))
		r.next = seq + 1
	}
	if r.size == 0 && r.hasEnd {
		r.first, r.next = r.end.nextSeq(), r.end.nextSeq()
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return r, r.openParts()
}

func (r *Relay) seqOf(key []byte) (uint64, error) {
	var seq uint64
	_, err := fmt.Sscanf(string(key[len(r.prefix)+2:]), "%x", &seq)
	return seq, err
}

// End returns the GTID set covering everything applied or spooled, and the
// position Append continues from; ok is false for a spool never written.
func (r *Relay) End() (Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.end, r.hasEnd
}

// Bounds returns the lowest held entry and the next number; equal when empty.
func (r *Relay) Bounds() (first, next uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.next
}

// Size is the bytes the spool holds.
func (r *Relay) Size() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size
}

// Full reports whether an entry of n bytes would have to wait for space.
func (r *Relay) Full(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full(n)
}

func (r *Relay) full(n int) bool {
	// An empty spool takes any entry: one transaction larger than the
	// quota must not stop the channel (its own pieces do not count).
	return r.quota > 0 && r.size > r.pendingBytes && r.size+int64(n) > r.quota
}

// waitRoom returns, with r.mu held, once n bytes fit.
func (r *Relay) waitRoom(ctx context.Context, n int, paused func()) error {
	for waited := false; ; waited = true {
		r.mu.Lock()
		if !r.full(n) {
			return nil
		}
		ch := r.changed
		r.mu.Unlock()
		if !waited && paused != nil {
			paused()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Relay) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Changed returns a channel closed at the next append or release.
func (r *Relay) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// pointDeletes: a release of fewer entries deletes them one by one.
const pointDeletes = 256

// bigBatch: a spooled batch bigger than this is flushed at once (half the
// store's 16 MiB memtable: pebble's threshold for a batch of its own).
const bigBatch = 8 << 20

// encodeEntryTo appends an entry to b: a checksum, the format id, the GTID,
// the raw events and, when it has some, the number of its pieces.
// AppendMany encodes into the pebble batch itself, sized by entryLen, so a
// big transaction is copied once. A piece is encoded the same way.
func encodeEntryTo(b []byte, gtid string, formatID uint32, events [][]byte, parts int) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, uint64(formatID))
	b = binary.AppendUvarint(b, uint64(len(gtid)))
	b = append(b, gtid...)
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, e := range events {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	if parts > 0 {
		b = binary.AppendUvarint(b, uint64(parts))
	}
	binary.LittleEndian.PutUint32(b[start:], crc32.Checksum(b[start+4:], castagnoli))
	return b
}

// entryLen is the exact length encodeEntryTo appends.
func entryLen(gtid string, formatID uint32, events [][]byte, parts int) int {
	uv := func(n uint64) int {
		var tmp [binary.MaxVarintLen64]byte
		return binary.PutUvarint(tmp[:], n)
	}
	n := 4 + uv(uint64(formatID)) + uv(uint64(len(gtid))) + len(gtid) + uv(uint64(len(events)))
	for _, e := range events {
		n += uv(uint64(len(e))) + len(e)
	}
	if parts > 0 {
		n += uv(uint64(parts))
	}
	return n
}

// EntrySize is the most bytes an entry of these events takes in the spool
// (the format id's varint at its longest).
func EntrySize(gtid string, events [][]byte) int {
	return entryLen(gtid, math.MaxUint32, events, 0)
}

// Append spools a transaction and moves the end to end (the GTID set
// covering it), waiting while the spool is at its quota. paused is called
// once when it has to wait.
func (r *Relay) Append(ctx context.Context, gtid string, format []byte, events [][]byte, end Position, paused func()) (uint64, error) {
	return r.AppendMany(ctx, []RelayItem{{GTID: gtid, Format: format, Events: events}}, end, paused)
}

// RelayItem is one transaction to spool.
type RelayItem struct {
	GTID   string
	Format []byte
	Events [][]byte
	// Parts is the number of pieces of it spooled before (AppendPart);
	// only the first item of an AppendMany may have some.
	Parts int
}

// AppendMany spools several transactions in one pebble batch, with the end
// record covering them all (end: the GTID set up to the last one). It
// returns the number of the last entry. A group of transactions costs one
// commit, one end record and one wake-up of the reader.
func (r *Relay) AppendMany(ctx context.Context, items []RelayItem, end Position, paused func()) (uint64, error) {
	lens := make([]int, len(items))
	fids := make([]uint32, len(items))
	total := 0
	for i, it := range items {
		fids[i] = crc32.Checksum(it.Format, castagnoli)
		lens[i] = entryLen(it.GTID, fids[i], it.Events, it.Parts)
		total += lens[i]
	}
	if err := r.waitRoom(ctx, total, paused); err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	for i, it := range items {
		want := 0
		if i == 0 && it.Parts > 0 {
			want = r.pending
		}
		if it.Parts != want {
			return 0, fmt.Errorf("relay: transaction %s comes with %d pieces spooled before it, but %d were", it.GTID, it.Parts, want)
		}
	}
	seq := r.next
	end.NextSeq = seq + uint64(len(items))
	// Sized up front: a big transaction's batch is not grown by doubling.
	b := r.db.NewBatchWithSize(total + 64*len(items) + 1024)
	defer b.Close()
	if items[0].Parts == 0 {
		if err := r.abandon(b); err != nil {
			return 0, err
		}
	}
	stored := map[uint32]bool{}
	for i, it := range items {
		if !r.formats[fids[i]] && !stored[fids[i]] {
			if err := b.Set(r.formatKey(fids[i]), it.Format, nil); err != nil {
				return 0, err
			}
			stored[fids[i]] = true
		}
		// Encoded straight into the batch: no second copy of a big one.
		key := r.entryKey(seq + uint64(i))
		op := b.SetDeferred(len(key), lens[i])
		copy(op.Key, key)
		encodeEntryTo(op.Value[:0], it.GTID, fids[i], it.Events, it.Parts)
		if err := op.Finish(); err != nil {
			return 0, err
		}
	}
	endVal, err := json.Marshal(end)
	if err != nil {
		return 0, err
	}
	if err := b.Set(r.endKey(), endVal, nil); err != nil {
		return 0, err
	}
	// No fsync: a process crash keeps what the OS has; a lost tail after a
	// power cut is read again from the source, as the end moves back with it.
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, err
	}
	if total > bigBatch {
		// Pebble keeps a batch bigger than half a memtable as a memtable
		// of its own until it is flushed: write it out now rather than
		// hold a big transaction twice while it is replayed.
		if err := r.db.Flush(); err != nil {
			return 0, err
		}
	}
	for fid := range stored {
		r.formats[fid] = true
	}
	if items[0].Parts > 0 {
		r.parts[seq] = partSpan{r.pending, r.pendingBytes}
		r.pending, r.pendingBytes = 0, 0
	} else {
		r.clearPending()
	}
	if r.first == r.next {
		r.first = seq
	}
	r.next, r.size, r.end, r.hasEnd = end.NextSeq, r.size+int64(total), end, true
	r.notify()
	return end.NextSeq - 1, nil
}

// Read returns entry seq, verified.
func (r *Relay) Read(seq uint64) (RelayEntry, error) {
	v, err := r.entry(seq)
	if err != nil {
		return RelayEntry{}, fmt.Errorf("relay entry %d: %w", seq, err)
	}
	e, fid, err := decodeEntry(v)
	if err != nil {
		return RelayEntry{}, fmt.Errorf("relay entry %d: %w", seq, err)
	}
	e.Seq = seq
	if e.Parts > 0 {
		r.mu.Lock()
		e.Size += int(r.parts[seq].bytes)
		r.mu.Unlock()
	}
	if f, ok := r.fmtCache[fid]; ok {
		e.Format = f
		return e, nil
	}
	f, fcloser, err := r.db.Get(r.formatKey(fid))
	if err != nil {
		return RelayEntry{}, fmt.Errorf("relay entry %d: format description %08x: %w (%w)", seq, fid, ErrRelayCorrupt, err)
	}
	defer fcloser.Close()
	if crc32.Checksum(f, castagnoli) != fid {
		return RelayEntry{}, fmt.Errorf("relay entry %d: format description %08x: %w", seq, fid, ErrRelayCorrupt)
	}
	e.Format = bytes.Clone(f)
	if r.fmtCache == nil {
		r.fmtCache = map[uint32][]byte{}
	}
	r.fmtCache[fid] = e.Format
	return e, nil
}

// entry returns the stored bytes of entry seq (valid until the next call).
func (r *Relay) entry(seq uint64) ([]byte, error) {
	want := r.entryKey(seq)
	for attempt := 0; attempt < 2; attempt++ {
		if r.it == nil || seq != r.itNext || attempt > 0 {
			if r.it != nil {
				r.it.Close()
			}
			it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: want, UpperBound: r.entryKey(^uint64(0))})
			if err != nil {
				r.it = nil
				return nil, err
			}
			r.it = it
			r.it.First()
		} else {
			r.it.Next()
		}
		if r.it.Valid() && bytes.Equal(r.it.Key(), want) {
			r.itNext = seq + 1
			return r.it.Value(), nil
		}
		// Appended after the iterator was opened: open a new one.
	}
	if err := r.it.Error(); err != nil {
		return nil, err
	}
	return nil, pebble.ErrNotFound
}

// StopReading releases the reader's iterator (before the store closes).
func (r *Relay) StopReading() {
	if r.it != nil {
		r.it.Close()
		r.it = nil
	}
}

func decodeEntry(v []byte) (RelayEntry, uint32, error) {
	if len(v) < 4 || binary.LittleEndian.Uint32(v) != crc32.Checksum(v[4:], castagnoli) {
		return RelayEntry{}, 0, fmt.Errorf("%w: checksum mismatch", ErrRelayCorrupt)
	}
	e := RelayEntry{Size: len(v)}
	rest := v[4:]
	next := func() (uint64, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			return 0, false
		}
		rest = rest[k:]
		return n, true
	}
	bad := fmt.Errorf("%w: framing", ErrRelayCorrupt)
	fid, ok := next()
	if !ok {
		return e, 0, bad
	}
	n, ok := next()
	if !ok || uint64(len(rest)) < n {
		return e, 0, bad
	}
	e.GTID, rest = string(rest[:n]), rest[n:]
	count, ok := next()
	if !ok {
		return e, 0, bad
	}
	for range count {
		n, ok := next()
		if !ok || uint64(len(rest)) < n {
			return e, 0, bad
		}
		e.Events = append(e.Events, bytes.Clone(rest[:n]))
		rest = rest[n:]
	}
	if len(rest) > 0 {
		parts, ok := next()
		if !ok || len(rest) > 0 || parts == 0 {
			return e, 0, bad
		}
		e.Parts = int(parts)
	}
	return e, uint32(fid), nil
}

// Release deletes the entries up to and including seq: the applier has
// committed them.
func (r *Relay) Release(seq uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.first {
		return nil
	}
	lo, hi := r.entryKey(r.first), r.entryKey(seq+1)
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	// Point deletes for what a release usually frees (a few entries): a
	// range tombstone is fragmented again by every new iterator while it
	// sits in the memtable, and at one release per transaction that was a
	// fifth of pitcrew's CPU at 500 tx/s. A big release takes one range.
	b := r.db.NewBatch()
	defer b.Close()
	var freed int64
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		freed += int64(len(it.Value()))
		if n < pointDeletes {
			if err := b.Delete(it.Key(), nil); err != nil {
				it.Close()
				return err
			}
		}
		n++
	}
	if err := it.Close(); err != nil {
		return err
	}
	if n >= pointDeletes {
		if err := b.DeleteRange(lo, hi, nil); err != nil {
			return err
		}
	}
	for s, ps := range r.parts {
		if s <= seq {
			for i := range ps.n {
				if err := b.Delete(r.partKey(s, i), nil); err != nil {
					return err
				}
			}
			freed += ps.bytes
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	for s := range r.parts {
		if s <= seq {
			delete(r.parts, s)
		}
	}
	r.size -= freed
	r.first = min(seq+1, r.next)
	r.notify()
	return nil
}

// Truncate drops entries from seq on and moves the end back to end: what
// they held is read from the source again.
func (r *Relay) Truncate(seq uint64, end Position) error {
	r.StopReading() // its snapshot holds entries about to be replaced
	r.mu.Lock()
	defer r.mu.Unlock()
	end.NextSeq = seq
	endVal, err := json.Marshal(end)
	if err != nil {
		return err
	}
	b := r.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(r.entryKey(seq), r.entryKey(1<<63-1), nil); err != nil {
		return err
	}
	if err := b.DeleteRange(r.partKey(seq, 0), r.partKey(1<<63-1, 0), nil); err != nil {
		return err
	}
	if err := b.Set(r.endKey(), endVal, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	// Recount what is left.
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: r.entryKey(0), UpperBound: r.entryKey(seq)})
	if err != nil {
		return err
	}
	r.size = 0
	for ok := it.First(); ok; ok = it.Next() {
		r.size += int64(len(it.Value()))
	}
	for s, ps := range r.parts {
		if s >= seq {
			delete(r.parts, s)
		} else {
			r.size += ps.bytes
		}
	}
	r.pending, r.pendingBytes = 0, 0 // what they counted is not in the recount
	r.next, r.end, r.hasEnd = seq, end, true
	r.first = min(r.first, seq)
	r.notify()
	return it.Close()
}

// GTIDs returns the GTIDs of entries [from, to), for rebuilding an end.
func (r *Relay) GTIDs(from, to uint64) ([]string, error) {
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: r.entryKey(from), UpperBound: r.entryKey(to)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		e, _, err := decodeEntry(it.Value())
		if err != nil {
			return out, err
		}
		out = append(out, e.GTID)
	}
	return out, it.Error()
}
