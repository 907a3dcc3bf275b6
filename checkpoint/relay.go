package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Relay is the local relay log of one channel: whole source transactions,
// as the raw binlog events they came in, read ahead of the applier so the
// source may purge its binlogs without losing what we still need.
//
// Like MySQL's own relay log it is a sequence of numbered segment files in
// <data dir>/relay/<channel>/ (format: relay_segment.go). Entries
// (transactions) are numbered 1, 2, 3... in stream order and appended a
// group at a time, each group followed by an end record (the GTID set
// covering everything applied or spooled): the files are the only record
// of what the relay holds and where reading continues, so the two never
// disagree after a crash. Every record carries a CRC32C; a mismatch is
// ErrRelayCorrupt. A segment is rolled at a size and deleted whole once
// every entry in it is released (applied).
//
// What survives what (the sync policy):
//   - A process crash (kill -9, OOM kill, panic) keeps every append that
//     returned: an append is one write(2) of whole records, and what was
//     written to a file lives in the kernel's page cache whatever becomes
//     of the process. (A pebble commit without sync is not that: it may
//     wait in pebble's own WAL buffer, in the process, until a block
//     fills.) End never names a transaction a process crash takes away.
//   - A machine crash (power loss, kernel panic) keeps what was fsynced:
//     Sync (the pipeline calls it every RelaySyncInterval while there is
//     something to sync, off the append path), and a segment is fsynced
//     when it is rolled, a new segment's header and the directory before
//     anything is written to it, a truncation before the relay goes on.
//     Synced is the end as of the last fsync: what may be told to whoever
//     purges the source's binlogs.
//   - Opening cuts the tail segment after its last complete group (a write
//     torn by the crash, or lost with the page cache) and fsyncs it.
//
// A transaction too big to hold in memory arrives in pieces first
// (AppendPart): they are appended as they come and count for nothing until
// the entry itself, which says how many there were and where the first
// starts; the pieces of a transaction whose entry never came (the stream
// broke, or it never completed in the source's log) are skipped.
//
// Append blocks while the relay holds its byte quota of unreleased
// entries; one goroutine appends (and syncs), one reads.
type Relay struct {
	dir      string
	quota    int64
	segBytes int64 // a segment is rolled past this size

	mu        sync.Mutex
	segs      []segment // on disk, oldest first; the last one is appended to
	first     uint64    // lowest held entry (== next when empty)
	next      uint64    // the number the next entry gets
	end       Position  // what reading from the source continues from
	hasEnd    bool
	synced    Position // end as of the last fsync
	endOff    int64    // global offset of the log's end
	syncedOff int64
	released  int64  // global offset past the last released entry
	abandoned []span // pieces of transactions that never completed, beyond released
	lost      int64  // their bytes
	formats   map[uint32][]byte
	changed   chan struct{} // closed and replaced on every append and release
	pending   int           // pieces appended for entry next
	pendingAt int64         // where the first of them starts
	err       error         // a failed write that could not be cut back
	cut       int64         // bytes open cut from the tail segment

	// The appending goroutine's (and Truncate's, when none runs): the
	// segment appended to and the formats it holds.
	w        *os.File
	wseg     segment
	whead    int64 // bytes of its header
	wformats map[uint32]bool
	wbuf     []byte
	syncMu   sync.Mutex // one Sync at a time, and never across a roll

	rd reader // the replay's
}

// segment is one segment file as the relay knows it.
type segment struct {
	num      uint64
	base     int64  // global offset of its first byte
	firstSeq uint64 // the number of the first entry in it
	size     int64
	start    Position // the end before it
	hasStart bool
}

// span is a range of global offsets.
type span struct{ from, to int64 }

// RelayEntry is one spooled transaction.
type RelayEntry struct {
	Seq    uint64
	GTID   string
	Format []byte   // format description event the events decode under
	Events [][]byte // raw binlog events, GTID event first (after the pieces)
	Size   int      // bytes in the relay, pieces included
	// Parts is the number of pieces spooled before the entry, the first
	// of which starts at PartsAt (ReadParts yields their events, which
	// come before Events).
	Parts   int
	PartsAt int64
	// End is the global offset just past the entry's record (Release,
	// Passed).
	End int64
}

// RelayItem is one transaction to spool.
type RelayItem struct {
	GTID   string
	Format []byte
	Events [][]byte
	// Parts is the number of pieces of it spooled before (AppendPart);
	// only the first item of an AppendMany may have some.
	Parts int
	// Set by AppendMany: the entry's number, and the global offset just
	// past its record.
	Seq uint64
	End int64
}

// RelaySyncInterval is how often the pipeline fsyncs the relay's tail
// while it has something to sync: what a machine crash may take back.
const RelaySyncInterval = time.Second

// maxSegment is the size a segment is rolled at, unless the quota is
// small (segmentBytes).
const maxSegment = 64 << 20

// segmentBytes sizes segments to an eighth of the quota, between 64 KiB
// and 64 MiB: a segment is only deleted once all of it is applied, so the
// disk holds up to one segment more than the quota counts.
func segmentBytes(quota int64) int64 {
	if quota <= 0 {
		return maxSegment
	}
	return min(maxSegment, max(64<<10, quota/8))
}

// Relay opens the channel's relay with a byte quota (<= 0: no limit). A
// relay written by an earlier version (entries in pebble) is moved to
// segment files first.
func (s *Store) Relay(channel string, quota int64) (*Relay, error) {
	if r, ok := s.relays[channel]; ok {
		return r, nil
	}
	r := &Relay{
		dir: filepath.Join(s.dir, "relay", channel), quota: quota, segBytes: segmentBytes(quota),
		first: 1, next: 1, formats: map[uint32][]byte{}, changed: make(chan struct{}),
	}
	if err := os.MkdirAll(r.dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the relay directory: %w", err)
	}
	if err := s.migrateRelay(channel, r.dir); err != nil {
		return nil, fmt.Errorf("moving the relay of channel %q from the checkpoint store to segment files in %s: %w", channel, r.dir, err)
	}
	if err := r.open(); err != nil {
		return nil, fmt.Errorf("opening the relay of channel %q in %s: %w", channel, r.dir, err)
	}
	if s.relays == nil {
		s.relays = map[string]*Relay{}
	}
	s.relays[channel] = r
	return r, nil
}

// open reads the segments' headers, cuts the tail segment after its last
// complete group, and continues appending there.
func (r *Relay) open() error {
	nums, err := listSegments(r.dir)
	if err != nil {
		return err
	}
	for i, num := range nums {
		seg, err := r.openSegment(num)
		if err == nil && len(r.segs) > 0 {
			if prev := r.segs[len(r.segs)-1]; seg.base < prev.base || seg.firstSeq < prev.firstSeq {
				err = fmt.Errorf("%w: segment %d starts before segment %d", ErrRelayCorrupt, num, prev.num)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrRelayCorrupt) {
				return err
			}
			// A segment whose header never made it to disk (the process
			// died creating it) or rotted: it and what follows are read
			// from the source again, as the end moves back.
			for _, n := range nums[i:] {
				if err := os.Remove(segmentPath(r.dir, n)); err != nil {
					return err
				}
			}
			if err := syncDir(r.dir); err != nil {
				return err
			}
			break
		}
		r.segs = append(r.segs, seg)
	}
	if len(r.segs) == 0 {
		return nil // never written: the first append creates segment 1
	}
	tail := r.segs[len(r.segs)-1]
	f, err := os.OpenFile(segmentPath(r.dir, tail.num), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	sc, err := scanTail(f, tail)
	if err == nil && sc.good < tail.size {
		err = f.Truncate(sc.good)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("segment %s: %w", segmentName(tail.num), err)
	}
	r.cut = tail.size - sc.good
	tail.size = sc.good
	r.segs[len(r.segs)-1] = tail
	r.w, r.wseg, r.whead, r.wformats = f, tail, sc.head, map[uint32]bool{}
	for fid, format := range sc.formats {
		r.formats[fid], r.wformats[fid] = format, true
	}
	r.first, r.released = r.segs[0].firstSeq, r.segs[0].base
	r.next = tail.firstSeq + sc.entries
	r.end, r.hasEnd = sc.end, sc.hasEnd
	r.end.NextSeq = r.next
	r.endOff = tail.base + sc.good
	r.synced, r.syncedOff = r.end, r.endOff
	return nil
}

// openSegment reads a segment's header and size.
func (r *Relay) openSegment(num uint64) (segment, error) {
	f, err := os.Open(segmentPath(r.dir, num))
	if err != nil {
		return segment{}, err
	}
	defer f.Close()
	h, err := readHeader(f)
	if err == nil && h.num != num {
		err = fmt.Errorf("%w: segment file %s says it is segment %d", ErrRelayCorrupt, segmentName(num), h.num)
	}
	if err != nil {
		return segment{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return segment{}, err
	}
	return segment{num: num, base: h.base, firstSeq: h.firstSeq, size: st.Size(), start: h.start, hasStart: h.hasStart}, nil
}

// Cut is the bytes opening cut from the tail segment: records after its
// last whole group, which a crash tore or lost, or which rotted there.
// What they held is read from the source again.
func (r *Relay) Cut() int64 { return r.cut }

// End returns the GTID set covering everything applied or spooled, and the
// position Append continues from; ok is false for a relay never written.
// It survives a process crash (see Relay).
func (r *Relay) End() (Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.end, r.hasEnd
}

// Synced returns End as of the last fsync: it survives a machine crash.
func (r *Relay) Synced() (Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced, r.hasEnd
}

// Start returns the end before the oldest segment held: everything in it
// was released (applied) before that segment's entries. A target that
// does not hold it lost what the relay already let go (it was restored
// from an older backup). ok is false when the relay holds no segment or
// the oldest was the relay's first.
func (r *Relay) Start() (Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.segs) == 0 {
		return Position{}, false
	}
	return r.segs[0].start, r.segs[0].hasStart
}

// Bounds returns the lowest held entry and the next number; equal when empty.
func (r *Relay) Bounds() (first, next uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.next
}

// Size is the bytes the relay holds for the applier: its log from the end
// of the last released entry on, less the pieces of transactions that
// never completed.
func (r *Relay) Size() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size()
}

func (r *Relay) size() int64 { return r.endOff - r.released - r.lost }

// Full reports whether an entry of n bytes would have to wait for space.
func (r *Relay) Full(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full(n)
}

func (r *Relay) full(n int) bool {
	// A relay holding no entry takes any: one transaction larger than the
	// quota must not stop the channel (its own pieces do not count).
	return r.quota > 0 && r.first < r.next && r.size()+int64(n) > r.quota
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

// Append spools a transaction and moves the end to end (the GTID set
// covering it), waiting while the relay is at its quota. paused is called
// once when it has to wait.
func (r *Relay) Append(ctx context.Context, gtid string, format []byte, events [][]byte, end Position, paused func()) (uint64, error) {
	return r.AppendMany(ctx, []RelayItem{{GTID: gtid, Format: format, Events: events}}, end, paused)
}

// AppendMany spools several transactions with one write, followed by the
// end record covering them all (end: the GTID set up to the last one),
// and numbers them (RelayItem.Seq, End). It returns the number of the
// last. A group of transactions costs one write(2) and one wake-up of the
// reader.
func (r *Relay) AppendMany(ctx context.Context, items []RelayItem, end Position, paused func()) (uint64, error) {
	if len(items) == 0 {
		return 0, errors.New("relay: nothing to spool")
	}
	total := 0
	for _, it := range items {
		total += EntrySize(it.GTID, it.Events)
	}
	if err := r.waitRoom(ctx, total, paused); err != nil {
		return 0, err
	}
	pending, pendingAt, err := r.pending, r.pendingAt, r.err
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	for i, it := range items {
		want := 0
		if i == 0 && it.Parts > 0 {
			want = pending
		}
		if it.Parts != want {
			return 0, fmt.Errorf("relay: transaction %s comes with %d pieces spooled before it, but %d were", it.GTID, it.Parts, want)
		}
	}
	if err := r.place(total); err != nil {
		return 0, err
	}
	seq := r.next
	end.NextSeq = seq + uint64(len(items))
	at := r.wseg.base + r.wseg.size
	b := r.wbuf[:0]
	var added map[uint32][]byte
	for i := range items {
		it := &items[i]
		fid := crc32.Checksum(it.Format, castagnoli)
		if !r.wformats[fid] && added[fid] == nil {
			b = appendFormat(b, it.Format)
			if added == nil {
				added = map[uint32][]byte{}
			}
			added[fid] = it.Format
		}
		var partsAt int64
		if it.Parts > 0 {
			partsAt = pendingAt
		}
		b = appendEntry(b, seq+uint64(i), fid, it.GTID, it.Events, it.Parts, partsAt)
		it.Seq, it.End = seq+uint64(i), at+int64(len(b))
	}
	b = appendEnd(b, end)
	if err := r.write(b); err != nil {
		return 0, fmt.Errorf("relay: spooling %d transactions: %w", len(items), err)
	}
	r.keep(b)
	r.mu.Lock()
	r.addFormats(added)
	if items[0].Parts == 0 && pending > 0 {
		r.abandon(at)
	}
	r.pending = 0
	r.next, r.end, r.hasEnd = end.NextSeq, end, true
	r.published()
	r.mu.Unlock()
	return end.NextSeq - 1, nil
}

// place readies the segment for about n more bytes: the relay's first
// segment, or the next one when this one is full.
func (r *Relay) place(n int) error {
	if r.w != nil && (r.wseg.size <= r.whead || r.wseg.size+int64(n) <= r.segBytes) {
		return nil
	}
	return r.roll()
}

// roll fsyncs and closes the segment appended to (so every segment but the
// last is whole after any crash) and starts the next one: its header, and
// the directory entry, are durable before anything is written to it.
func (r *Relay) roll() error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	num := uint64(1)
	if r.w != nil {
		if err := r.w.Sync(); err != nil {
			return fmt.Errorf("relay: syncing segment %s: %w", segmentName(r.wseg.num), err)
		}
		if err := r.w.Close(); err != nil {
			return err
		}
		r.mu.Lock()
		r.w = nil
		r.mu.Unlock()
	}
	r.mu.Lock()
	if len(r.segs) > 0 {
		num = r.segs[len(r.segs)-1].num + 1
	}
	seg := segment{num: num, base: r.endOff, firstSeq: r.next, start: r.end, hasStart: r.hasEnd}
	r.mu.Unlock()
	b := appendHeader(nil, header{num: seg.num, base: seg.base, firstSeq: seg.firstSeq, start: seg.start, hasStart: seg.hasStart})
	f, err := os.OpenFile(segmentPath(r.dir, num), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("relay: creating a segment: %w", err)
	}
	if _, err := f.WriteAt(b, 0); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(r.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("relay: creating segment %s: %w", segmentName(num), err)
	}
	seg.size = int64(len(b))
	r.wseg, r.whead, r.wformats = seg, seg.size, map[uint32]bool{}
	r.mu.Lock()
	r.w = f
	r.segs = append(r.segs, seg)
	r.endOff = seg.base + seg.size
	// Everything before is synced with the segment rolled, the header
	// with its own.
	r.synced, r.syncedOff = r.end, r.endOff
	r.mu.Unlock()
	return nil
}

// write appends b to the segment. A write that fails is cut back, so the
// segment never holds half a group before a later one.
func (r *Relay) write(b []byte) error {
	if _, err := r.w.WriteAt(b, r.wseg.size); err != nil {
		if terr := r.w.Truncate(r.wseg.size); terr != nil {
			r.mu.Lock()
			r.err = fmt.Errorf("relay: segment %s could not be cut back after a failed write (%w); restart pitcrew: opening the relay cuts it", segmentName(r.wseg.num), terr)
			r.mu.Unlock()
		}
		return err
	}
	r.wseg.size += int64(len(b))
	return nil
}

// keep keeps the write buffer for the next append unless it grew big.
func (r *Relay) keep(b []byte) {
	if cap(b) <= 4<<20 {
		r.wbuf = b[:0]
	} else {
		r.wbuf = nil
	}
}

// published makes what write appended visible (r.mu held).
func (r *Relay) published() {
	r.segs[len(r.segs)-1].size = r.wseg.size
	r.endOff = r.wseg.base + r.wseg.size
	r.notify()
}

// addFormats records format descriptions just written (r.mu held).
func (r *Relay) addFormats(added map[uint32][]byte) {
	for fid, f := range added {
		r.wformats[fid] = true
		if r.formats[fid] == nil {
			r.formats[fid] = bytes.Clone(f)
		}
	}
}

// abandon forgets the pending pieces, which end at to: their transaction
// never completed (r.mu held).
func (r *Relay) abandon(to int64) {
	if r.pending > 0 && to > r.pendingAt {
		r.abandoned = append(r.abandoned, span{r.pendingAt, to})
		r.lost += to - r.pendingAt
	}
	r.pending = 0
}

// Sync fsyncs the segment appended to, so a machine crash keeps what it
// holds (Synced). Safe beside appends.
func (r *Relay) Sync() error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.Lock()
	f, end, off, done := r.w, r.end, r.endOff, r.syncedOff
	r.mu.Unlock()
	if f == nil || off <= done {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("relay: syncing %s: %w", f.Name(), err)
	}
	r.mu.Lock()
	if off > r.syncedOff {
		r.synced, r.syncedOff = end, off
	}
	r.mu.Unlock()
	return nil
}

// Release lets go of the entries up to and including seq, whose record
// ends at end: the applier has committed them. Segments all of whose
// entries are released are deleted.
func (r *Relay) Release(seq uint64, end int64) error {
	r.mu.Lock()
	if seq < r.first {
		r.mu.Unlock()
		return nil
	}
	r.first = min(seq+1, r.next)
	r.released = max(r.released, end)
	for len(r.abandoned) > 0 && r.abandoned[0].to <= r.released {
		r.lost -= r.abandoned[0].to - r.abandoned[0].from
		r.abandoned = r.abandoned[1:]
	}
	var gone []uint64
	for len(r.segs) > 1 && r.segs[1].base <= r.released {
		gone = append(gone, r.segs[0].num)
		r.segs = r.segs[1:]
	}
	r.notify()
	r.mu.Unlock()
	for _, num := range gone {
		if err := os.Remove(segmentPath(r.dir, num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing relay segment %s, all applied: %w", segmentName(num), err)
		}
	}
	return nil
}

// Truncate drops the log from global offset at (where the records of entry
// seq begin) on, and moves the end back to end: what the dropped entries
// held is read from the source again. Only while nothing appends, reads or
// syncs.
func (r *Relay) Truncate(seq uint64, at int64, end Position) error {
	r.StopReading()
	if r.w != nil {
		if err := r.w.Close(); err != nil {
			return err
		}
		r.w = nil
	}
	r.mu.Lock()
	var keep []segment
	for _, s := range r.segs {
		if s.base < at {
			keep = append(keep, s)
			continue
		}
		if err := os.Remove(segmentPath(r.dir, s.num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.mu.Unlock()
			return fmt.Errorf("relay: truncating: %w", err)
		}
	}
	if n := len(keep); n > 0 && keep[n-1].base+keep[n-1].size > at {
		last := &keep[n-1]
		if err := cutSegment(segmentPath(r.dir, last.num), at-last.base); err != nil {
			r.mu.Unlock()
			return fmt.Errorf("relay: truncating segment %s: %w", segmentName(last.num), err)
		}
		last.size = at - last.base
	}
	r.segs, r.endOff = keep, at
	var abandoned []span
	r.lost = 0
	for _, s := range r.abandoned {
		if s.to <= at {
			abandoned = append(abandoned, s)
			r.lost += s.to - s.from
		}
	}
	end.NextSeq = seq
	r.abandoned, r.pending, r.err = abandoned, 0, nil
	r.next, r.end, r.hasEnd = seq, end, true
	r.first, r.released = min(r.first, seq), min(r.released, at)
	r.mu.Unlock()
	// The new end is durable with the next segment's header.
	if err := r.roll(); err != nil {
		return err
	}
	r.mu.Lock()
	r.notify()
	r.mu.Unlock()
	return nil
}

// Reset empties the relay and moves its end to end. Only while nothing
// appends, reads or syncs.
func (r *Relay) Reset(end Position) error {
	r.mu.Lock()
	at, seq := r.endOff, r.next
	if len(r.segs) > 0 {
		at = r.segs[0].base
	}
	r.first = seq
	r.mu.Unlock()
	return r.Truncate(seq, at, end)
}

func cutSegment(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// close fsyncs and closes the segment files (the store closes).
func (r *Relay) close() error {
	r.StopReading()
	if r.w == nil {
		return nil
	}
	err := r.Sync()
	if cerr := r.w.Close(); err == nil {
		err = cerr
	}
	r.w = nil
	return err
}
