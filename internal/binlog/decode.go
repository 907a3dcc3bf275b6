package binlog

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/txn"
)

// Decoder turns spooled raw events back into transactions, through the same
// parser settings and assembler as the live stream, so a relayed
// transaction decodes exactly as it would have live. Event checksums are
// verified when the source logs them. Not safe for concurrent use.
type Decoder struct {
	flavor string
	format []byte
	parser *replication.BinlogParser
	// asm lives across transactions: its table maps (reused while they
	// describe the same table) let the applier keep its plans.
	asm *txn.Assembler
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
	if d.parser == nil || !bytes.Equal(format, d.format) {
		p := replication.NewBinlogParser()
		p.SetFlavor(d.flavor)
		p.SetTimestampStringLocation(time.UTC)
		p.SetVerifyChecksum(true)
		if _, err := p.Parse(format); err != nil {
			return nil, fmt.Errorf("%w: format description: %v", ErrCorrupt, err)
		}
		d.parser, d.format = p, format
	}
	if d.asm == nil {
		d.asm = txn.NewAssembler(d.flavor)
	}
	asm := d.asm
	asm.Reset()
	for i, raw := range raws {
		ev, err := d.parser.Parse(raw)
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
