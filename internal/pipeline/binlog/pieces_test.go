package binlog

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// rawEvents returns a binlog file's events as they came.
func rawEvents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, replication.BinLogFileHeader) {
		t.Fatalf("%s: not a binlog file", path)
	}
	var out [][]byte
	for b = b[4:]; len(b) >= headerSize; {
		size := binary.LittleEndian.Uint32(b[9:13])
		out = append(out, b[:size:size])
		b = b[size:]
	}
	return out
}

// A transaction cut into pieces as it arrives (here after every event:
// Part with a limit of 1) decodes, its pieces first (Head) and then its
// tail, to what the whole decodes to, in both flavours (MySQL's real
// binlog files included: GTIDs with tags, table maps with names).
func TestPiecesDecodeLikeWhole(t *testing.T) {
	dir := fixtureDir(t)
	cut := 0
	for _, c := range []struct{ file, flavor string }{
		{"mysql-enum-string-set.000001", gtid.MySQL},
		{"binlog-invisible-columns.000001", gtid.MySQL},
		{"mysql_type_bit.000001", gtid.MySQL},
		{"binlog_transaction_with_GTID_TAG.000001", gtid.MySQL},
		{"mariadb-bin.000001", gtid.MariaDB},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			whole, err := DecodeFile(path, c.flavor)
			if err != nil {
				t.Fatal(err)
			}
			p := replication.NewBinlogParser()
			p.SetFlavor(c.flavor)
			p.SetTimestampStringLocation(time.UTC)
			asm := txn.NewAssembler(c.flavor)
			asm.KeepRaw()
			var pieces []*txn.Txn
			n := 0
			for _, raw := range rawEvents(t, path) {
				ev, err := p.Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				done, err := asm.Feed(ev)
				if err != nil {
					t.Fatal(err)
				}
				if done == nil {
					if piece := asm.Part(1); piece != nil {
						if piece.Parts != len(pieces) {
							t.Fatalf("piece %d says it is number %d", len(pieces), piece.Parts)
						}
						pieces = append(pieces, piece)
					}
					continue
				}
				if done.Parts != len(pieces) {
					t.Fatalf("GTID %s: %d pieces sent, the complete Txn says %d", done.GTID, len(pieces), done.Parts)
				}
				held := pieces
				// The server checksums the format description with its
				// "binlog in use" flag clear; a file copied while open
				// has it set (a replica is sent it clear). The decoder
				// verifies checksums, so clear it as a replica sees it.
				format := bytes.Clone(done.Format)
				format[17] &^= 1
				lazy := LazyParts(done.GTID, format, done.Raw, done.Bytes, func(fn func([]byte) error) error {
					for _, piece := range held {
						for _, raw := range piece.Raw {
							if err := fn(raw); err != nil {
								return err
							}
						}
					}
					return nil
				})
				got := &txn.Txn{}
				if err := NewDecoder(c.flavor).Each(lazy, func(g string, evs []txn.Event) error {
					got.GTID = g
					got.Events = append(got.Events, evs...)
					return nil
				}); err != nil {
					t.Fatalf("GTID %s in %d pieces: %v", done.GTID, len(held), err)
				}
				want := whole[n]
				if got.GTID != want.GTID || got.RowCount() != want.RowCount() || got.IsDDL() != want.IsDDL() {
					t.Errorf("transaction %d in %d pieces: GTID %q, %d rows, DDL %v; whole: %q, %d rows, DDL %v",
						n, len(held), got.GTID, got.RowCount(), got.IsDDL(), want.GTID, want.RowCount(), want.IsDDL())
				}
				if len(held) > 0 {
					cut++
				}
				pieces = nil
				n++
			}
			if n != len(whole) {
				t.Errorf("%d transactions in pieces, %d whole", n, len(whole))
			}
		})
	}
	if cut == 0 {
		t.Error("no transaction was cut into pieces")
	}
	t.Logf("%d transactions decoded from pieces", cut)
}
