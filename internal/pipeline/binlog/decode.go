package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Decoder turns spooled raw events back into transactions, through the same
// parser settings and assembler as the live stream, so a relayed
// transaction decodes exactly as it would have live. Event checksums are
// not verified again: the stream verified them as it read the events, and
// the relay's own CRC32C covers them since. Not safe for concurrent use.
// The raw events handed over must not change afterwards: decoded strings
// and blobs alias them (as go-mysql's do), and so do the table maps the
// decoder keeps to recognise the same map logged again.
type Decoder struct {
	flavor string
	format []byte
	parser *replication.BinlogParser
	// asm lives across transactions: its table maps (reused while they
	// describe the same table) let the applier keep its plans.
	asm *txn.Assembler
	// typ is the type of the event being parsed, for decodeRows.
	typ replication.EventType
	fde *replication.FormatDescriptionEvent
	// maps holds the last table map parsed per table id; tables the
	// table maps in force, as the parser's own (which a table map taken
	// from maps does not reach): rows events find theirs here.
	maps   map[uint64]tableMap
	tables map[uint64]*replication.TableMapEvent
	// keepMaps: table maps are kept in maps (Decode, whose transactions
	// are small; not Each, where one would keep a big transaction's
	// piece in memory).
	keepMaps bool
	// signs is the signedness of the columns of signsOf (unsignedOf).
	signsOf *replication.TableMapEvent
	signs   []bool
}

// NewDecoder returns a decoder for a flavour's events.
func NewDecoder(flavor string) *Decoder { return &Decoder{flavor: flavor} }

// ErrCorrupt marks raw events that fail to decode or to verify.
var ErrCorrupt = errors.New("corrupt relayed event")

// Decode decodes one transaction's raw events under its format description.
func (d *Decoder) Decode(format []byte, raws [][]byte) (t *txn.Txn, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	if err := d.setFormat(format); err != nil {
		return nil, err
	}
	if d.asm == nil {
		d.asm = txn.NewAssembler(d.flavor)
	}
	asm := d.asm
	asm.Reset()
	d.keepMaps = true
	for i, raw := range raws {
		ev, err := d.parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrCorrupt, i, err)
		}
		if t, err = asm.Feed(ev); err != nil {
			return nil, err
		}
		if t != nil {
			if i != len(raws)-1 {
				return nil, fmt.Errorf("%w: transaction ends at event %d of %d", ErrCorrupt, i+1, len(raws))
			}
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: transaction incomplete after %d events", ErrCorrupt, len(raws))
}

// LazyMinEvents: a transaction of fewer events is always decoded whole. A
// DDL is two events (GTID, query); a big transaction is thousands of rows
// events (at most binlog_row_event_max_size, 8 KiB by default, each).
const LazyMinEvents = 5

// Lazy returns a big transaction without decoding its rows: its GTID (from
// its first event), its commit time (from its last event's header), and
// its raw events, for Each. One of fewer than LazyMinEvents events is
// decoded whole (Decode).
func (d *Decoder) Lazy(format []byte, raws [][]byte) (t *txn.Txn, err error) {
	if len(raws) < LazyMinEvents {
		return d.Decode(format, raws)
	}
	size := 0
	for _, r := range raws {
		size += len(r)
	}
	t = LazyParts("", format, raws, size, nil)
	err = d.Each(&txn.Txn{Raw: raws[:1], Format: format}, func(gtid string, _ []txn.Event) error {
		t.GTID = gtid
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if err == nil && t.GTID == "" {
		err = fmt.Errorf("%w: a transaction of %d bytes without GTID", ErrCorrupt, t.Bytes)
	}
	return t, err
}

var errStop = errors.New("stop")

// Each decodes a lazy transaction's raw events one by one (its pieces'
// first, from Head) and hands over the row events decoded so far after
// each, so only one event's rows are held at a time. It stops at fn's
// first error.
func (d *Decoder) Each(t *txn.Txn, fn func(gtid string, events []txn.Event) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	if err := d.setFormat(t.Format); err != nil {
		return err
	}
	asm := txn.NewAssembler(d.flavor) // its own: table maps come with the transaction
	d.keepMaps = false
	i := 0
	var done *txn.Txn
	step := func(raw []byte) error {
		if done != nil {
			return fmt.Errorf("%w: transaction ends at event %d, before its last", ErrCorrupt, i)
		}
		ev, err := d.parse(raw)
		if err != nil {
			return fmt.Errorf("%w: event %d: %v", ErrCorrupt, i, err)
		}
		i++
		if done, err = asm.Feed(ev); err != nil {
			return err
		}
		if done != nil {
			return fn(done.GTID, done.Events)
		}
		return fn(asm.TakeEvents())
	}
	if t.Head != nil {
		if err := t.Head(step); err != nil {
			return err
		}
	}
	for _, raw := range t.Raw {
		if err := step(raw); err != nil {
			return err
		}
	}
	if done == nil {
		return fmt.Errorf("%w: transaction incomplete after %d events", ErrCorrupt, i)
	}
	return nil
}

// LazyParts returns a transaction spooled in pieces, taken the lazy way
// whatever its size: Head yields its pieces' events, tail holds the rest
// (the last of which has the commit time).
func LazyParts(gtid string, format []byte, tail [][]byte, bytes int, head func(func([]byte) error) error) *txn.Txn {
	t := &txn.Txn{GTID: gtid, Raw: tail, Format: format, Lazy: true, Bytes: bytes, Head: head}
	if len(tail) > 0 && len(tail[len(tail)-1]) >= 4 {
		t.Timestamp = binary.LittleEndian.Uint32(tail[len(tail)-1])
	}
	return t
}

func (d *Decoder) setFormat(format []byte) error {
	if d.parser == nil || !bytes.Equal(format, d.format) {
		p := replication.NewBinlogParser()
		p.SetFlavor(d.flavor)
		p.SetTimestampStringLocation(time.UTC)
		p.SetVerifyChecksum(false)
		p.SetRowsEventDecodeFunc(d.decodeRows)
		ev, err := p.Parse(format)
		if err != nil {
			return fmt.Errorf("%w: format description: %v", ErrCorrupt, err)
		}
		d.parser, d.format = p, format
		d.newFormat(ev.Event)
	}
	return nil
}

// newFormat starts over with a format description: the table maps known
// so far were parsed under the previous one.
func (d *Decoder) newFormat(ev replication.Event) {
	d.fde, _ = ev.(*replication.FormatDescriptionEvent)
	d.maps = map[uint64]tableMap{}
	d.tables = map[uint64]*replication.TableMapEvent{}
}

// tableMap is a table map event as it was parsed, and its body.
type tableMap struct {
	body []byte
	ev   *replication.TableMapEvent
}

// parse parses one raw event (a whole one: its header at least). A table
// map event whose body is the last one parsed for its table id (every
// statement of a transaction logs its table maps again) is not parsed
// again: the same TableMapEvent serves, as the assembler would reuse its
// Table anyway.
func (d *Decoder) parse(raw []byte) (*replication.BinlogEvent, error) {
	d.typ = 0
	if len(raw) >= replication.EventHeaderSize {
		d.typ = replication.EventType(raw[4])
	}
	if d.typ == replication.TABLE_MAP_EVENT && d.keepMaps {
		if ev := d.knownMap(raw); ev != nil {
			return ev, nil
		}
	}
	ev, err := d.parser.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch e := ev.Event.(type) {
	case *replication.FormatDescriptionEvent:
		d.newFormat(e)
	case *replication.TableMapEvent:
		if d.keepMaps {
			if len(d.maps) >= 4096 {
				clear(d.maps)
			}
			d.maps[e.TableID] = tableMap{body: d.body(raw), ev: e}
		}
		d.tables[e.TableID] = e
	case *replication.RowsEvent:
		if e.Flags&replication.RowsEventStmtEndFlag != 0 {
			// As the parser forgets its own after a statement's end.
			clear(d.tables)
		}
	}
	return ev, nil
}

// knownMap returns the event of a table map whose body is the last one
// parsed for its table id, or nil.
func (d *Decoder) knownMap(raw []byte) *replication.BinlogEvent {
	size := d.tableIDSize(replication.TABLE_MAP_EVENT)
	body := d.body(raw)
	if size == 0 || len(body) < size {
		return nil
	}
	id := mysql.FixedLengthInt(body[:size])
	m, ok := d.maps[id]
	if !ok || !bytes.Equal(m.body, body) {
		return nil
	}
	// The event and its header in one allocation.
	ev := new(struct {
		e replication.BinlogEvent
		h replication.EventHeader
	})
	if ev.h.Decode(raw) != nil || int(ev.h.EventSize) != len(raw) {
		return nil
	}
	d.tables[id] = m.ev
	ev.e = replication.BinlogEvent{RawData: raw, Header: &ev.h, Event: m.ev}
	return &ev.e
}

// body is an event's body: after its header, before its checksum (which
// covers the header too: the same map logged again has another).
func (d *Decoder) body(raw []byte) []byte {
	b := raw[replication.EventHeaderSize:]
	if d.fde != nil && d.fde.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 && len(b) >= replication.BinlogChecksumLength {
		b = b[:len(b)-replication.BinlogChecksumLength]
	}
	return b
}

// tableIDSize is how many bytes an event type's table id takes under the
// format description (as go-mysql's parser reads it); 0: unknown.
func (d *Decoder) tableIDSize(typ replication.EventType) int {
	if d.fde == nil || int(typ) < 1 || int(typ) > len(d.fde.EventTypeHeaderLengths) {
		return 0
	}
	if d.fde.EventTypeHeaderLengths[typ-1] == 6 {
		return 4
	}
	return 6
}
