package checkpoint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// reader walks the relay's records in order, across segments.
type reader struct {
	f      *os.File
	num    uint64 // the segment f is
	base   int64  // its global offset
	off    int64  // global offset of the next record
	seq    uint64 // the number of the next entry record
	valid  bool   // off and seq are where entry seq's records begin
	buf    []byte // bytes read ahead from f
	bufOff int64  // global offset of buf[0]
	at     int64  // where the last Read began
}

func (rd *reader) close() {
	if rd.f != nil {
		rd.f.Close()
	}
	*rd = reader{}
}

// readAhead is how much a reader reads from a segment at a time.
const readAhead = 256 << 10

// locate returns the segment holding global offset off and the offset its
// records end at (the next segment's base, or the log's end).
func (r *Relay) locate(off int64) (segment, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.segs) - 1; i >= 0; i-- {
		if s := r.segs[i]; s.base <= off {
			limit := r.endOff
			if i+1 < len(r.segs) {
				limit = r.segs[i+1].base
			}
			return s, limit, nil
		}
	}
	return segment{}, 0, fmt.Errorf("%w: offset %d is before the relay's first segment", ErrRelayCorrupt, off)
}

// record returns the record at rd.off and moves past it. The payload is
// valid until the next call.
func (r *Relay) record(rd *reader) (kind byte, payload []byte, err error) {
	seg, limit, err := r.locate(rd.off)
	if err != nil {
		return 0, nil, err
	}
	if rd.off >= limit {
		return 0, nil, fmt.Errorf("%w: the log ends at offset %d, before the record it should hold", ErrRelayCorrupt, limit)
	}
	if rd.f == nil || rd.num != seg.num {
		if rd.f != nil {
			rd.f.Close()
		}
		if rd.f, err = os.Open(segmentPath(r.dir, seg.num)); err != nil {
			rd.f = nil
			return 0, nil, fmt.Errorf("%w: %w", ErrRelayCorrupt, err)
		}
		rd.num, rd.base, rd.buf = seg.num, seg.base, rd.buf[:0]
	}
	b, err := rd.fill(recHead, limit)
	if err != nil {
		return 0, nil, err
	}
	kind, payload, n, short, err := checkRecord(b)
	if err == nil && short {
		if b, err = rd.fill(n, limit); err == nil {
			kind, payload, _, _, err = checkRecord(b)
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("segment %s at %d: %w", segmentName(seg.num), rd.off-rd.base, err)
	}
	if kind == recHeader {
		h, err := decodeHeader(payload)
		if err == nil && (h.num != seg.num || h.base != rd.off || rd.off != seg.base) {
			err = fmt.Errorf("%w: a header out of place", ErrRelayCorrupt)
		}
		if err == nil && rd.valid && h.firstSeq != rd.seq {
			err = fmt.Errorf("%w: segment %s begins with entry %d, after entry %d", ErrRelayCorrupt, segmentName(seg.num), h.firstSeq, rd.seq-1)
		}
		if err != nil {
			return 0, nil, err
		}
	}
	rd.off += int64(n)
	return kind, payload, nil
}

// fill returns at least n bytes from rd.off on, which must end by limit.
func (rd *reader) fill(n int, limit int64) ([]byte, error) {
	if rd.off+int64(n) > limit {
		return nil, fmt.Errorf("%w: a record runs past the end of its segment", ErrRelayCorrupt)
	}
	if rd.off >= rd.bufOff && rd.off+int64(n) <= rd.bufOff+int64(len(rd.buf)) {
		return rd.buf[rd.off-rd.bufOff:], nil
	}
	want := int(min(limit-rd.off, int64(max(n, readAhead))))
	if cap(rd.buf) < want || cap(rd.buf) > 4*readAhead && want <= readAhead {
		rd.buf = make([]byte, want)
	}
	rd.buf = rd.buf[:want]
	got, err := rd.f.ReadAt(rd.buf, rd.off-rd.base)
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: segment %s is shorter than the log says", ErrRelayCorrupt, segmentName(rd.num))
		}
		return nil, err
	}
	rd.buf, rd.bufOff = rd.buf[:got], rd.off
	return rd.buf, nil
}

// seek places rd at the records of entry seq, reading its segment from the
// start (and the format descriptions on the way).
func (r *Relay) seek(rd *reader, seq uint64) error {
	r.mu.Lock()
	var seg *segment
	for i := len(r.segs) - 1; i >= 0 && seg == nil; i-- {
		if r.segs[i].firstSeq <= seq {
			seg = &r.segs[i]
		}
	}
	if seg == nil || seq >= r.next {
		r.mu.Unlock()
		return fmt.Errorf("entry %d is not in the relay", seq)
	}
	rd.off, rd.seq, rd.valid = seg.base, seg.firstSeq, true
	r.mu.Unlock()
	for rd.seq < seq {
		rd.at = rd.off
		kind, payload, err := r.record(rd)
		if err != nil {
			rd.valid = false
			return err
		}
		switch kind {
		case recFormat:
			r.addFormat(payload)
		case recEntry:
			rd.seq++
		}
	}
	return nil
}

func (r *Relay) addFormat(f []byte) {
	fid := crc32.Checksum(f, castagnoli)
	r.mu.Lock()
	if r.formats[fid] == nil {
		r.formats[fid] = bytes.Clone(f)
	}
	r.mu.Unlock()
}

func (r *Relay) format(fid uint32) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.formats[fid]
}

// Read returns entry seq, verified. Reading in order costs a record's
// copy; another entry first reads its segment from the start.
func (r *Relay) Read(seq uint64) (RelayEntry, error) {
	e, err := r.read(&r.rd, seq)
	if err != nil {
		return RelayEntry{}, fmt.Errorf("relay entry %d: %w", seq, err)
	}
	return e, nil
}

func (r *Relay) read(rd *reader, seq uint64) (RelayEntry, error) {
	if !rd.valid || rd.seq != seq {
		if err := r.seek(rd, seq); err != nil {
			return RelayEntry{}, err
		}
	}
	rd.at = rd.off
	for {
		kind, payload, err := r.record(rd)
		if err != nil {
			rd.valid = false
			return RelayEntry{}, err
		}
		switch kind {
		case recFormat:
			r.addFormat(payload)
			continue
		case recEntry:
		default:
			continue // a header, an end, pieces (ReadParts reads them)
		}
		// One copy per entry: the events alias it, not the read buffer.
		e, fid, err := decodeEntry(bytes.Clone(payload))
		if err == nil && e.Seq != seq {
			err = fmt.Errorf("%w: entry %d where entry %d belongs", ErrRelayCorrupt, e.Seq, seq)
		}
		if err == nil {
			if e.Format = r.format(fid); e.Format == nil {
				err = fmt.Errorf("%w: format description %08x not found before the entry", ErrRelayCorrupt, fid)
			}
		}
		if err != nil {
			rd.valid = false
			return RelayEntry{}, err
		}
		e.End, e.Size = rd.off, len(payload)+recHead
		if e.Parts > 0 {
			e.Size = int(e.End - e.PartsAt)
		}
		rd.seq = seq + 1
		return e, nil
	}
}

// ReadAt is where the last Read began: truncating there (Truncate) drops
// that entry and everything after it, and keeps every entry before.
func (r *Relay) ReadAt() int64 { return r.rd.at }

// Passed tells the reader that entry seq, whose record ends at end, was
// taken from memory: the next Read(seq+1) continues from there.
func (r *Relay) Passed(seq uint64, end int64) {
	r.rd.seq, r.rd.off, r.rd.valid = seq+1, end, true
}

// StopReading releases the reader's file (before the store closes).
func (r *Relay) StopReading() { r.rd.close() }

// GTIDs returns the GTIDs of entries [from, to), for rebuilding an end.
// Safe beside Read (it reads with its own file).
func (r *Relay) GTIDs(from, to uint64) ([]string, error) {
	var rd reader
	defer rd.close()
	var out []string
	for seq := from; seq < to; seq++ {
		e, err := r.read(&rd, seq)
		if err != nil {
			return out, fmt.Errorf("relay entry %d: %w", seq, err)
		}
		out = append(out, e.GTID)
	}
	return out, nil
}

// tailScan is what the tail segment holds up to its last complete group.
type tailScan struct {
	good    int64  // bytes up to and including the last end record
	head    int64  // bytes of the header
	entries uint64 // entry records before good
	end     Position
	hasEnd  bool
	formats map[uint32][]byte // format descriptions before good
}

// scanTail reads the tail segment from its start and stops at the first
// record that is short or fails its checksum: what a crash tore or lost.
func scanTail(f *os.File, seg segment) (tailScan, error) {
	sc := tailScan{end: seg.start, hasEnd: seg.hasStart, formats: map[uint32][]byte{}}
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, seg.size), readAhead)
	var off int64
	var entries uint64
	formats := map[uint32][]byte{}
	head := make([]byte, recHead)
	var body []byte
	for {
		if _, err := io.ReadFull(br, head); err != nil {
			break // the end, or a record torn in its framing
		}
		size := int(uint32(head[0]) | uint32(head[1])<<8 | uint32(head[2])<<16 | uint32(head[3])<<24)
		if size == 0 || size > maxRecord || off+8+int64(size) > seg.size {
			break
		}
		if cap(body) < size-1 {
			body = make([]byte, size-1)
		}
		body = body[:size-1]
		if _, err := io.ReadFull(br, body); err != nil {
			return sc, err
		}
		crc := crc32.Update(crc32.Checksum(head[8:], castagnoli), castagnoli, body)
		if crc != uint32(head[4])|uint32(head[5])<<8|uint32(head[6])<<16|uint32(head[7])<<24 {
			break
		}
		off += 8 + int64(size)
		switch head[8] {
		case recHeader:
			if off != 8+int64(size) {
				return sc, fmt.Errorf("%w: a second header", ErrRelayCorrupt)
			}
			sc.good, sc.head = off, off
		case recFormat:
			formats[crc32.Checksum(body, castagnoli)] = bytes.Clone(body)
		case recEntry:
			entries++
		case recEnd:
			end, err := decodeEnd(body)
			if err != nil {
				return sc, err
			}
			sc.good, sc.entries, sc.end, sc.hasEnd = off, sc.entries+entries, end, true
			entries = 0
			for fid, f := range formats {
				sc.formats[fid] = f
			}
			clear(formats)
		}
	}
	if sc.head == 0 {
		return sc, fmt.Errorf("%w: segment without a header", ErrRelayCorrupt)
	}
	return sc, nil
}
