package binlog

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// decodeRows decodes a rows event's images as go-mysql's
// RowsEvent.DecodeData does, value for value and type for type, for the
// common case: plain (not compressed, not partial) row events with full
// images of integer, floating-point, string and blob columns. It skips
// what go-mysql spends per row (a signedness map and a skipped-columns
// list per image, a slice per image): the signedness is read once per
// event and the images share one backing array. Anything else goes to
// DecodeData.
func (d *Decoder) decodeRows(e *replication.RowsEvent, data []byte) (err error) {
	typ := d.typ
	var pos int
	if rowsType(typ) {
		pos, err = d.rowsHeader(e, data, typ)
	} else {
		// Inside a TRANSACTION_PAYLOAD: its own parser's table maps.
		pos, err = e.DecodeHeader(data)
	}
	if err != nil {
		return err
	}
	update := false
	switch typ {
	case replication.WRITE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2:
	case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2:
		update = true
	default:
		return e.DecodeData(pos, data)
	}
	cols := int(e.ColumnCount)
	if cols == 0 || cols != len(e.Table.ColumnType) || !fullBitmap(e.ColumnBitmap1, cols) || update && !fullBitmap(e.ColumnBitmap2, cols) {
		return e.DecodeData(pos, data)
	}
	for i, tp := range e.Table.ColumnType {
		if !fastType(tp, e.Table.ColumnMeta[i]) {
			return e.DecodeData(pos, data)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse rows event panic %v, table map %s.%s", r, e.Table.Schema, e.Table.Table)
		}
	}()
	unsigned := d.unsignedOf(e.Table, cols)
	images := 1
	if update {
		images = 2
	}
	// One backing array for every image: sized for one row (or pair)
	// and grown as more come.
	vals := make([]any, 0, images*cols)
	ends := make([]int, 0, 16)
	nullBytes := (cols + 7) / 8
	for pos < len(data) {
		for range images {
			nulls := data[pos : pos+nullBytes]
			pos += nullBytes
			for i, tp := range e.Table.ColumnType {
				if nulls[i>>3]&(1<<(uint(i)&7)) != 0 {
					vals = append(vals, nil)
					continue
				}
				v, n := fastValue(data[pos:], tp, e.Table.ColumnMeta[i], unsigned != nil && unsigned[i])
				vals = append(vals, v)
				pos += n
			}
			ends = append(ends, len(vals))
		}
	}
	e.Rows = make([][]any, len(ends))
	if len(ends) <= len(noSkips) {
		e.SkippedColumns = noSkips[:len(ends):len(ends)]
	} else {
		e.SkippedColumns = make([][]int, len(ends))
		for i := range e.SkippedColumns {
			e.SkippedColumns[i] = []int{}
		}
	}
	start := 0
	for i, end := range ends {
		e.Rows[i] = vals[start:end:end]
		start = end
	}
	return nil
}

// noSkips is what go-mysql gives each full image as its skipped columns
// (an empty list), shared by the events of up to 64 images: it is only
// read.
var noSkips = func() [][]int {
	s := make([][]int, 64)
	for i := range s {
		s[i] = []int{}
	}
	return s
}()

// fullBitmap reports whether the first n bits are all set.
func fullBitmap(b []byte, n int) bool {
	for i := range n {
		if b[i>>3]&(1<<(uint(i)&7)) == 0 {
			return false
		}
	}
	return true
}

// fastType tells the column types decodeRows decodes itself.
func fastType(tp byte, meta uint16) bool {
	switch tp {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG,
		mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		return true
	case mysql.MYSQL_TYPE_BLOB:
		return meta >= 1 && meta <= 4
	case mysql.MYSQL_TYPE_STRING:
		// ENUM and SET are logged as STRING with their real type in meta.
		real, _ := stringMeta(meta)
		return real == mysql.MYSQL_TYPE_STRING
	}
	return false
}

// stringMeta is a STRING column's real type and maximum length in bytes
// (as go-mysql's decodeValue reads them).
func stringMeta(meta uint16) (byte, int) {
	if meta < 256 {
		return mysql.MYSQL_TYPE_STRING, int(meta)
	}
	b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
	if b0&0x30 != 0x30 {
		return b0 | 0x30, int(uint16(b1) | (uint16((b0&0x30)^0x30) << 4))
	}
	return b0, int(meta & 0xFF)
}

// fastValue decodes one value of a fastType column: the Go type and value
// go-mysql gives it (strings and blobs share the event's bytes, as
// go-mysql's do).
func fastValue(data []byte, tp byte, meta uint16, unsigned bool) (any, int) {
	switch tp {
	case mysql.MYSQL_TYPE_TINY:
		if unsigned {
			return data[0], 1
		}
		return int8(data[0]), 1
	case mysql.MYSQL_TYPE_SHORT:
		u := binary.LittleEndian.Uint16(data)
		if unsigned {
			return u, 2
		}
		return int16(u), 2
	case mysql.MYSQL_TYPE_INT24:
		u := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16
		if unsigned {
			return u, 3
		}
		if u&0x00800000 != 0 {
			u |= 0xFF000000
		}
		return int32(u), 3
	case mysql.MYSQL_TYPE_LONG:
		u := binary.LittleEndian.Uint32(data)
		if unsigned {
			return u, 4
		}
		return int32(u), 4
	case mysql.MYSQL_TYPE_LONGLONG:
		u := binary.LittleEndian.Uint64(data)
		if unsigned {
			return u, 8
		}
		return int64(u), 8
	case mysql.MYSQL_TYPE_FLOAT:
		return math.Float32frombits(binary.LittleEndian.Uint32(data)), 4
	case mysql.MYSQL_TYPE_DOUBLE:
		return math.Float64frombits(binary.LittleEndian.Uint64(data)), 8
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		return sharedString(data, int(meta))
	case mysql.MYSQL_TYPE_STRING:
		_, length := stringMeta(meta)
		return sharedString(data, length)
	case mysql.MYSQL_TYPE_BLOB:
		var length, n int
		switch meta {
		case 1:
			length, n = int(data[0]), 1
		case 2:
			length, n = int(binary.LittleEndian.Uint16(data)), 2
		case 3:
			length, n = int(uint32(data[0])|uint32(data[1])<<8|uint32(data[2])<<16), 3
		case 4:
			length, n = int(binary.LittleEndian.Uint32(data)), 4
		}
		return data[n : n+length], n + length
	}
	panic(fmt.Sprintf("column type %d has no fast decoding", tp))
}

// sharedString is go-mysql's decodeString: the string shares the event's
// bytes (which nothing writes to afterwards).
func sharedString(data []byte, max int) (any, int) {
	length, n := int(data[0]), 1
	if max >= 256 {
		length, n = int(binary.LittleEndian.Uint16(data)), 2
	}
	b := data[n : n+length]
	if len(b) == 0 {
		return "", n
	}
	return unsafe.String(&b[0], len(b)), n + length
}

// rowsType tells the types of rows events.
func rowsType(typ replication.EventType) bool {
	switch typ {
	case replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0,
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		return true
	}
	return false
}

// rowsHeader is go-mysql's RowsEvent.DecodeHeader, with the event's table
// map looked up among the decoder's (d.tables): a table map taken from
// d.maps never reached the parser.
func (d *Decoder) rowsHeader(e *replication.RowsEvent, data []byte, typ replication.EventType) (int, error) {
	size := d.tableIDSize(typ)
	if size == 0 {
		return 0, fmt.Errorf("no post-header length for %s", typ)
	}
	pos := 0
	e.TableID = mysql.FixedLengthInt(data[0:size])
	pos += size
	e.Flags = binary.LittleEndian.Uint16(data[pos:])
	pos += 2
	if e.Version == 2 {
		dataLen := binary.LittleEndian.Uint16(data[pos:])
		pos += 2
		if dataLen > 2 {
			extraData(e, data[pos:], typ)
		}
		pos += int(dataLen - 2)
	}
	var n int
	e.ColumnCount, _, n = mysql.LengthEncodedInt(data[pos:])
	pos += n
	bitCount := (int(e.ColumnCount) + 7) / 8
	e.ColumnBitmap1 = data[pos : pos+bitCount]
	pos += bitCount
	switch typ {
	case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		e.ColumnBitmap2 = data[pos : pos+bitCount]
		pos += bitCount
	}
	var ok bool
	if e.Table, ok = d.tables[e.TableID]; !ok {
		if len(d.tables) > 0 {
			return 0, fmt.Errorf("invalid table id %d, no corresponding table map event", e.TableID)
		}
		return 0, fmt.Errorf("table id %d: invalid table id, no corresponding table map event", e.TableID)
	}
	return pos, nil
}

// extraData is go-mysql's RowsEvent.decodeExtraData (v2 rows events).
func extraData(e *replication.RowsEvent, data []byte, typ replication.EventType) {
	pos := 0
	kind := data[pos]
	pos++
	switch kind {
	case replication.ENUM_EXTRA_ROW_INFO_TYPECODE_NDB:
		ndbLength := int(data[pos])
		pos++
		e.NdbFormat = data[pos]
		pos++
		e.NdbData = data[pos : pos+ndbLength-2]
	case replication.ENUM_EXTRA_ROW_INFO_TYPECODE_PARTITION:
		e.PartitionId = binary.LittleEndian.Uint16(data[pos:])
		if typ == replication.UPDATE_ROWS_EVENTv1 || typ == replication.UPDATE_ROWS_EVENTv2 || typ == replication.PARTIAL_UPDATE_ROWS_EVENT {
			e.SourcePartitionId = binary.LittleEndian.Uint16(data[pos+2:])
		}
	}
}

// unsignedOf is a table map's UnsignedMap as a slice (nil: no signedness
// logged), kept for the table map last asked about: the decoder hands on
// the same TableMapEvent while the map stands, and it is never changed.
func (d *Decoder) unsignedOf(t *replication.TableMapEvent, cols int) []bool {
	if t == d.signsOf {
		return d.signs
	}
	var unsigned []bool
	if m := t.UnsignedMap(); m != nil {
		unsigned = make([]bool, cols)
		for i := range unsigned {
			unsigned[i] = m[i]
		}
	}
	d.signsOf, d.signs = t, unsigned
	return unsigned
}
