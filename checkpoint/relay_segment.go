package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The relay log's format. A segment file is a sequence of records:
//
//	length  uint32 LE   bytes of kind + payload
//	crc     uint32 LE   CRC32C of kind + payload
//	kind    byte
//	payload
//
// Every segment starts with a header record; a format description event
// is written once per segment, before the first record that needs it, so
// a segment reads alone. A group of entries (one append) is followed by an
// end record: on open, the tail segment is cut after its last end record,
// so a group torn by a crash counts for nothing, and the relay's end is
// that record's. Offsets are global: a segment's header says where in the
// whole log its first byte is, so a position (RelayItem.End) names a place
// across segments.
const (
	recHeader byte = 'H' // segment number, base offset, first entry number, the end before it
	recFormat byte = 'F' // a format description event (its id is its CRC32C)
	recEntry  byte = 'E' // a transaction: the events after its pieces, if any
	recPiece  byte = 'P' // a piece of a transaction still arriving
	recEnd    byte = 'N' // the end after the group of entries before it
)

// recHead is a record's framing: length, checksum, kind.
const recHead = 9

// maxRecord bounds a record's length field: more is corruption (a whole
// transaction over 1 GiB is spooled in pieces; see syncer.Config.PartBytes).
const maxRecord = 1 << 30

// segmentMagic opens every header record's payload.
const segmentMagic = "pitcrew relay segment 1\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrRelayCorrupt marks a record whose checksum, framing or place is wrong.
var ErrRelayCorrupt = errors.New("relay record is corrupt")

// beginRecord appends a record's framing to b; finishRecord fills in its
// length and checksum once the payload follows.
func beginRecord(b []byte, kind byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind), len(b)
}

func finishRecord(b []byte, start int) []byte {
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-8))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEvents(b []byte, events [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, e := range events {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

func uvarintLen(n uint64) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], n)
}

// eventsLen is the bytes appendEvents appends.
func eventsLen(events [][]byte) int {
	n := uvarintLen(uint64(len(events)))
	for _, e := range events {
		n += uvarintLen(uint64(len(e))) + len(e)
	}
	return n
}

// EntrySize is about the bytes an entry of these events takes in the relay
// (its format description and end record aside).
func EntrySize(gtid string, events [][]byte) int {
	return recHead + 3*binary.MaxVarintLen64 + uvarintLen(uint64(len(gtid))) + len(gtid) + eventsLen(events)
}

// header is a segment's first record.
type header struct {
	num      uint64
	base     int64  // global offset of the segment's first byte
	firstSeq uint64 // the number the first entry written in it gets
	start    Position
	hasStart bool // false in the first segment of a relay never written
}

func appendHeader(b []byte, h header) []byte {
	b, start := beginRecord(b, recHeader)
	b = append(b, segmentMagic...)
	b = binary.AppendUvarint(b, h.num)
	b = binary.AppendUvarint(b, uint64(h.base))
	b = binary.AppendUvarint(b, h.firstSeq)
	b = appendPosition(b, h.start, h.hasStart)
	return finishRecord(b, start)
}

func appendPosition(b []byte, p Position, ok bool) []byte {
	if !ok {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, p.NextSeq)
	b = appendString(b, p.Flavor)
	return appendString(b, p.GTIDSet)
}

// fields reads a record's payload; its first failure sticks (bad).
type fields struct {
	rest []byte
	bad  bool
}

func (f *fields) uvarint() uint64 {
	n, k := binary.Uvarint(f.rest)
	if k <= 0 {
		f.bad = true
		return 0
	}
	f.rest = f.rest[k:]
	return n
}

func (f *fields) bytes() []byte {
	n := f.uvarint()
	if f.bad || uint64(len(f.rest)) < n {
		f.bad = true
		return nil
	}
	b := f.rest[:n:n]
	f.rest = f.rest[n:]
	return b
}

func (f *fields) events() [][]byte {
	n := f.uvarint()
	if f.bad || n > uint64(len(f.rest)) {
		f.bad = true
		return nil
	}
	evs := make([][]byte, 0, n)
	for range n {
		e := f.bytes()
		if f.bad {
			return nil
		}
		evs = append(evs, e)
	}
	return evs
}

func (f *fields) position() (Position, bool) {
	if len(f.rest) == 0 {
		f.bad = true
		return Position{}, false
	}
	has := f.rest[0] == 1
	f.rest = f.rest[1:]
	if !has {
		return Position{}, false
	}
	p := Position{NextSeq: f.uvarint()}
	p.Flavor = string(f.bytes())
	p.GTIDSet = string(f.bytes())
	return p, true
}

func (f *fields) done(what string) error {
	if f.bad || len(f.rest) > 0 {
		return fmt.Errorf("%w: %s framing", ErrRelayCorrupt, what)
	}
	return nil
}

func decodeHeader(p []byte) (header, error) {
	if !strings.HasPrefix(string(p), segmentMagic) {
		return header{}, fmt.Errorf("%w: not a relay segment header", ErrRelayCorrupt)
	}
	f := fields{rest: p[len(segmentMagic):]}
	h := header{num: f.uvarint(), base: int64(f.uvarint()), firstSeq: f.uvarint()}
	h.start, h.hasStart = f.position()
	return h, f.done("segment header")
}

// Entry records: number, format id, GTID, events, and the pieces spooled
// before it (count, and where the first one starts) when it has some.
func appendEntry(b []byte, seq uint64, fid uint32, gtid string, events [][]byte, parts int, partsAt int64) []byte {
	b, start := beginRecord(b, recEntry)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(fid))
	b = appendString(b, gtid)
	b = appendEvents(b, events)
	b = binary.AppendUvarint(b, uint64(parts))
	if parts > 0 {
		b = binary.AppendUvarint(b, uint64(partsAt))
	}
	return finishRecord(b, start)
}

// entryLen is the exact length appendEntry appends.
func entryLen(seq uint64, fid uint32, gtid string, events [][]byte, parts int, partsAt int64) int {
	n := recHead + uvarintLen(seq) + uvarintLen(uint64(fid)) + uvarintLen(uint64(len(gtid))) + len(gtid) + eventsLen(events) + uvarintLen(uint64(parts))
	if parts > 0 {
		n += uvarintLen(uint64(partsAt))
	}
	return n
}

// decodeEntry reads an entry record's payload; its events alias p.
func decodeEntry(p []byte) (e RelayEntry, fid uint32, err error) {
	f := fields{rest: p}
	e.Seq = f.uvarint()
	fid = uint32(f.uvarint())
	e.GTID = string(f.bytes())
	e.Events = f.events()
	e.Parts = int(f.uvarint())
	if e.Parts > 0 {
		e.PartsAt = int64(f.uvarint())
	}
	return e, fid, f.done("entry")
}

// Piece records: index (from 0), format id, GTID, events.
func appendPiece(b []byte, index int, fid uint32, gtid string, events [][]byte) []byte {
	b, start := beginRecord(b, recPiece)
	b = binary.AppendUvarint(b, uint64(index))
	b = binary.AppendUvarint(b, uint64(fid))
	b = appendString(b, gtid)
	b = appendEvents(b, events)
	return finishRecord(b, start)
}

func decodePiece(p []byte) (index int, gtid string, events [][]byte, err error) {
	f := fields{rest: p}
	index = int(f.uvarint())
	f.uvarint() // format id: the entry's decodes them
	gtid = string(f.bytes())
	events = f.events()
	return index, gtid, events, f.done("piece")
}

func appendFormat(b []byte, format []byte) []byte {
	b, start := beginRecord(b, recFormat)
	b = append(b, format...)
	return finishRecord(b, start)
}

func appendEnd(b []byte, end Position) []byte {
	b, start := beginRecord(b, recEnd)
	b = appendPosition(b, end, true)
	return finishRecord(b, start)
}

func decodeEnd(p []byte) (Position, error) {
	f := fields{rest: p}
	end, ok := f.position()
	if !ok {
		f.bad = true
	}
	return end, f.done("end")
}

// checkRecord verifies the record at the start of b (which holds at least
// recHead bytes) and returns its kind, payload and length; short is set
// when b ends before the record does.
func checkRecord(b []byte) (kind byte, payload []byte, n int, short bool, err error) {
	size := binary.LittleEndian.Uint32(b)
	if size == 0 || size > maxRecord {
		return 0, nil, 0, false, fmt.Errorf("%w: record length %d", ErrRelayCorrupt, size)
	}
	n = 8 + int(size)
	if len(b) < n {
		return 0, nil, n, true, nil
	}
	if binary.LittleEndian.Uint32(b[4:]) != crc32.Checksum(b[8:n], castagnoli) {
		return 0, nil, n, false, fmt.Errorf("%w: checksum mismatch", ErrRelayCorrupt)
	}
	return b[8], b[9:n], n, false, nil
}

// segmentName is a segment's file name: its number, zero-padded, so the
// names sort in log order.
func segmentName(num uint64) string { return fmt.Sprintf("%012d.seg", num) }

// listSegments returns the numbers of the segment files in dir, in order.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".seg")
		if !ok || de.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("relay directory %s holds %s, which is not a segment: move it away", dir, de.Name())
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

// readHeader reads the header record of the segment file f.
func readHeader(f *os.File) (header, error) {
	b := make([]byte, 256)
	for {
		n, err := f.ReadAt(b, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return header{}, err
		}
		if n < recHead {
			return header{}, fmt.Errorf("%w: segment without a header", ErrRelayCorrupt)
		}
		kind, payload, size, short, err := checkRecord(b[:n])
		if err == nil && short && n == len(b) {
			b = make([]byte, size) // a long GTID set
			continue
		}
		if err == nil && (short || kind != recHeader) {
			err = fmt.Errorf("%w: segment without a header", ErrRelayCorrupt)
		}
		if err != nil {
			return header{}, err
		}
		return decodeHeader(payload)
	}
}

// syncDir makes a directory's entries (files created, renamed, removed)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func segmentPath(dir string, num uint64) string { return filepath.Join(dir, segmentName(num)) }
