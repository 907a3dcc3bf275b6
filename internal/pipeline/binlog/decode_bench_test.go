package binlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// sbEvents builds MariaDB-flavour raw events the way a MariaDB source
// with binlog_row_metadata=FULL logs sysbench's oltp_write_only: per
// transaction a GTID, then for each of its four statements a table map and
// its rows event (an indexed update, a non-indexed update, a delete, an
// insert on one sbtest table), then an XID. format is the format
// description event, txns[i] the raw events of transaction i.
func sbEvents(n int) (format []byte, txns [][][]byte) {
	format = sbFormat()
	for i := range n {
		id := int32(1 + i%10000)
		table := uint64(20 + i%4)
		c := []byte(fmt.Sprintf("%011d-%011d-%011d-%011d-%011d-%011d-%011d-%011d-%011d-%011d", i, i+1, i+2, i+3, i+4, i+5, i+6, i+7, i+8, i+9))
		pad := []byte(fmt.Sprintf("%011d-%011d-%011d-%011d-%011d", i, i*3, i*5, i*7, i*11))
		row := func(id, k int32, c, pad []byte) []byte {
			b := []byte{0} // null bitmap: no NULLs
			b = binary.LittleEndian.AppendUint32(b, uint32(id))
			b = binary.LittleEndian.AppendUint32(b, uint32(k))
			b = binary.LittleEndian.AppendUint16(b, uint16(len(c)))
			b = append(b, c...)
			b = append(b, byte(len(pad)))
			return append(b, pad...)
		}
		before := row(id, id*7, c, pad)
		t := [][]byte{sbEvent(0xa2, sbGTID(uint64(i+1)))}
		ev := func(typ byte, rows ...[]byte) {
			t = append(t, sbEvent(replication.TABLE_MAP_EVENT, sbTableMap(table, fmt.Sprintf("sbtest%d", 1+i%4))))
			body := binary.LittleEndian.AppendUint64(nil, table)[:6]
			body = append(body, 1, 0) // flags: STMT_END_F, each statement its own table map
			body = append(body, 4, 0x0f)
			if typ == byte(replication.UPDATE_ROWS_EVENTv1) {
				body = append(body, 0x0f)
			}
			for _, r := range rows {
				body = append(body, r...)
			}
			t = append(t, sbEvent(replication.EventType(typ), body))
		}
		ev(byte(replication.UPDATE_ROWS_EVENTv1), before, row(id, id*7+1, c, pad))
		ev(byte(replication.UPDATE_ROWS_EVENTv1), row(id, id*7+1, c, pad), row(id, id*7+1, pad, pad))
		ev(byte(replication.DELETE_ROWS_EVENTv1), row(id, id*7+1, pad, pad))
		ev(byte(replication.WRITE_ROWS_EVENTv1), row(id, id*5, c, pad))
		t = append(t, sbEvent(replication.XID_EVENT, binary.LittleEndian.AppendUint64(nil, uint64(i+100))))
		txns = append(txns, t)
	}
	return format, txns
}

// sbEvent frames a body: the v4 header (its log position where the
// previous event framed ended: the CRC32 of the same body differs), and a
// CRC32 after it.
func sbEvent(typ replication.EventType, body []byte) []byte {
	size := uint32(19 + len(body) + 4)
	sbPos += size
	b := binary.LittleEndian.AppendUint32(nil, 1700000000+sbPos/1000)
	b = append(b, byte(typ))
	b = binary.LittleEndian.AppendUint32(b, 1) // server id
	b = binary.LittleEndian.AppendUint32(b, size)
	b = binary.LittleEndian.AppendUint32(b, sbPos)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

var sbPos uint32 = 4

func sbFormat() []byte {
	b := binary.LittleEndian.AppendUint16(nil, 4)
	v := make([]byte, 50)
	copy(v, "10.11.6-MariaDB-log")
	b = append(b, v...)
	b = binary.LittleEndian.AppendUint32(b, 1700000000)
	b = append(b, 19)
	lens := make([]byte, 0xa4)
	for i := range lens {
		lens[i] = 8 // post-header of table maps and rows events: 6-byte table ids
	}
	b = append(b, lens...)
	b = append(b, byte(replication.BINLOG_CHECKSUM_ALG_CRC32))
	// sbEvent appends the CRC32 the format description's last 4 bytes hold.
	return sbEvent(replication.FORMAT_DESCRIPTION_EVENT, b)
}

func sbGTID(seq uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, 0) // domain
	b = append(b, 0)                           // flags: a BEGIN ... COMMIT group
	return append(b, make([]byte, 6)...)
}

// sbTableMap: id INT AUTO_INCREMENT PRIMARY KEY, k INT, c CHAR(120),
// pad CHAR(60), utf8mb4, with FULL metadata (signedness, names, key).
func sbTableMap(id uint64, name string) []byte {
	b := binary.LittleEndian.AppendUint64(nil, id)[:6]
	b = append(b, 1, 0) // flags
	b = append(b, 6)
	b = append(b, "sbtest\x00"...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, 4, 3, 3, 254, 254)
	// CHAR(120) utf8mb4: 480 bytes; CHAR(60): 240.
	b = append(b, 4, 0xee, 0xe0, 0xfe, 240)
	b = append(b, 0) // no nullable column
	opt := func(t byte, v []byte) { b = append(append(append(b, t), byte(len(v))), v...) }
	opt(1, []byte{0})  // signedness: all signed
	opt(2, []byte{45}) // default charset
	names := []byte{}
	for _, n := range []string{"id", "k", "c", "pad"} {
		names = append(append(names, byte(len(n))), n...)
	}
	opt(4, names)
	opt(8, []byte{0}) // simple primary key: column 0
	return b
}

// BenchmarkDecode decodes write_only transactions as the relay does.
func BenchmarkDecode(b *testing.B) {
	format, txns := sbEvents(1000)
	d := NewDecoder(gtid.MariaDB)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t, err := d.Decode(format, txns[i%len(txns)])
		if err != nil {
			b.Fatal(err)
		}
		if t.RowCount() != 4 {
			b.Fatalf("%d rows", t.RowCount())
		}
	}
}

func TestSysbenchEvents(t *testing.T) {
	format, txns := sbEvents(3)
	d := NewDecoder(gtid.MariaDB)
	for i, raws := range txns {
		tx, err := d.Decode(format, raws)
		if err != nil {
			t.Fatal(err)
		}
		if tx.GTID != fmt.Sprintf("0-1-%d", i+1) || len(tx.Events) != 3 || tx.RowCount() != 4 {
			t.Fatalf("txn %d: %q, %d events, %d rows", i, tx.GTID, len(tx.Events), tx.RowCount())
		}
		r := tx.Events[2].Rows // the two updates form one change
		if r.Table.Name != "sbtest"+fmt.Sprint(1+i%4) || len(r.Table.Columns) != 4 || len(r.Table.PK) != 1 || r.Rows[0][0] != int32(i+1) || len(r.Rows[0][2].(string)) != 119 {
			t.Fatalf("txn %d: %+v %v", i, r.Table, r.Rows)
		}
	}
}
