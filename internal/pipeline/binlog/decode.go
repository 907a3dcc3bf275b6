package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Decoder turns spooled raw events back into transactions, through the same
// parser settings and assembler as the live stream, so a relayed
// transaction decodes exactly as it would have live. Event checksums are
// not verified again: the stream verified them as it read the events, and
// the relay's own CRC32C covers them since. Not safe for concurrent use.
type Decoder struct {
	flavor string
	format []byte
	parser *replication.BinlogParser
	// asm lives across transactions: its table maps (reused while they
	// describe the same table) let the applier keep its plans.
	asm *txn.Assembler
	// typ is the type of the event being parsed, for decodeRows.
	typ replication.EventType
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
		p.SetRowsEventDecodeFunc(func(e *replication.RowsEvent, data []byte) error { return decodeRows(e, data, d.typ) })
		if _, err := p.Parse(format); err != nil {
			return fmt.Errorf("%w: format description: %v", ErrCorrupt, err)
		}
		d.parser, d.format = p, format
	}
	return nil
}

// parse parses one raw event (a whole one: its header at least).
func (d *Decoder) parse(raw []byte) (*replication.BinlogEvent, error) {
	d.typ = 0
	if len(raw) > 4 {
		d.typ = replication.EventType(raw[4])
	}
	return d.parser.Parse(raw)
}
