package binlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// ErrTruncated: the file ends inside an event or inside a transaction.
var ErrTruncated = errors.New("binlog file is truncated")

const headerSize = 19 // replication.EventHeaderSize

// DecodeFile decodes a binlog file into transactions, for tests and offline
// inspection. It frames events itself so that a file cut inside an event
// header is an error (go-mysql's file parser stops there silently); a corrupt
// event is an error too, never a panic.
func DecodeFile(path, flavor string) (txns []*txn.Txn, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, 4)
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, replication.BinLogFileHeader) {
		return nil, fmt.Errorf("decoding %s: not a binlog file (no fe'bin' header)", path)
	}
	p := replication.NewBinlogParser()
	p.SetFlavor(flavor)
	p.SetTimestampStringLocation(time.UTC)
	asm := txn.NewAssembler(flavor)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoding %s: corrupt event: %v", path, r)
		}
	}()
	offset := int64(4)
	for {
		header := make([]byte, headerSize)
		n, err := io.ReadFull(r, header)
		if err == io.EOF {
			break
		}
		if err != nil {
			return txns, fmt.Errorf("decoding %s at offset %d: %w: %d of %d header bytes", path, offset, ErrTruncated, n, headerSize)
		}
		size := binary.LittleEndian.Uint32(header[9:13])
		if size < headerSize {
			return txns, fmt.Errorf("decoding %s at offset %d: corrupt event size %d", path, offset, size)
		}
		raw := make([]byte, size)
		copy(raw, header)
		if n, err := io.ReadFull(r, raw[headerSize:]); err != nil {
			return txns, fmt.Errorf("decoding %s at offset %d: %w: %d of %d event bytes", path, offset, ErrTruncated, n+headerSize, size)
		}
		ev, err := p.Parse(raw)
		if err != nil {
			return txns, fmt.Errorf("decoding %s at offset %d: %w", path, offset, err)
		}
		t, err := asm.Feed(ev)
		if err != nil {
			return txns, fmt.Errorf("decoding %s at offset %d: %w", path, offset, err)
		}
		if t != nil {
			txns = append(txns, t)
		}
		offset += int64(size)
	}
	if asm.Pending() {
		return txns, fmt.Errorf("decoding %s: %w: it ends inside a transaction", path, ErrTruncated)
	}
	return txns, nil
}
