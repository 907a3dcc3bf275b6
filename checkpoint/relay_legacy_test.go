package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// legacyValue encodes an entry or piece as the pebble relay did.
func legacyValue(gtid string, format []byte, events [][]byte, parts int) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.AppendUvarint(b, uint64(crc32.Checksum(format, castagnoli)))
	b = appendString(b, gtid)
	b = appendEvents(b, events)
	if parts > 0 {
		b = binary.AppendUvarint(b, uint64(parts))
	}
	binary.LittleEndian.PutUint32(b, crc32.Checksum(b[4:], castagnoli))
	return b
}

// writeLegacyRelay writes entries 5..9 of channel c as the pebble relay
// did (entry 7 in two pieces, entry 8 rotten), with pieces of an entry 10
// that never came, and an end covering 9.
func writeLegacyRelay(t *testing.T, s *Store) {
	t.Helper()
	b := s.db.NewBatch()
	set := func(k string, v []byte) {
		if err := b.Set([]byte("relay/c/"+k), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	format := []byte("fde")
	set(fmt.Sprintf("f/%08x", crc32.Checksum(format, castagnoli)), format)
	for seq := 5; seq <= 9; seq++ {
		g := fmt.Sprintf("0-1-%d", seq)
		parts := 0
		if seq == 7 {
			parts = 2
			for i := range parts {
				set(fmt.Sprintf("p/%016x/%08x", seq, i), legacyValue(g, format, [][]byte{[]byte(fmt.Sprintf("piece %d", i))}, 0))
			}
		}
		v := legacyValue(g, format, event(g), parts)
		if seq == 8 {
			v[len(v)-1] ^= 0xff
		}
		set(fmt.Sprintf("e/%016x", seq), v)
	}
	set(fmt.Sprintf("p/%016x/%08x", 10, 0), legacyValue("0-1-10", format, event("x"), 0))
	end, _ := json.Marshal(Position{Flavor: "mariadb", GTIDSet: "0-1-9", NextSeq: 10})
	set("end", end)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func legacyKeys(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("relay/"), UpperBound: []byte("relay0")})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// A data dir whose relay is in pebble (before segment files) is moved to
// segments on open: the same entries, pieces and end; a rotten entry is
// still found rotten; the pebble keys are gone.
func TestRelayMovesFromPebble(t *testing.T) {
	for _, crash := range []string{"", "before the rename", "before the keys are deleted"} {
		t.Run("crash "+crash, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			writeLegacyRelay(t, s)
			switch crash {
			case "before the rename":
				// A half-written move: redone from the keys.
				os.MkdirAll(dir+"/relay/c.migrating", 0o750)
				os.WriteFile(dir+"/relay/c.migrating/"+segmentName(1), []byte("half"), 0o640)
			case "before the keys are deleted":
				// The segments are in place: the keys only go.
				tmp := dir + "/relay/c"
				os.MkdirAll(tmp, 0o750)
				if err := s.writeLegacy("relay/c/", tmp); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()

			s, r := openRelay(t, dir, 0, 0)
			defer s.Close()
			if n := legacyKeys(t, s); n != 0 {
				t.Errorf("%d pebble relay keys left", n)
			}
			end, ok := r.End()
			if f, n := r.Bounds(); !ok || end.GTIDSet != "0-1-9" || f != 5 || n != 10 {
				t.Fatalf("moved relay: end %+v, bounds %d %d", end, f, n)
			}
			for seq := uint64(5); seq <= 8; seq++ {
				e, err := r.Read(seq)
				if seq == 8 {
					if !errors.Is(err, ErrRelayCorrupt) {
						t.Fatalf("the rotten entry 8: %v", err)
					}
					break
				}
				if err != nil || e.GTID != fmt.Sprintf("0-1-%d", seq) || string(e.Format) != "fde" {
					t.Fatalf("entry %d: %+v %v", seq, e, err)
				}
				if seq == 7 {
					got, err := readParts(r, e)
					if err != nil || len(got) != 2 || got[1] != "piece 1" {
						t.Fatalf("entry 7's pieces: %q %v", got, err)
					}
				}
			}
			// Fetched again from the source, as the pipeline does.
			if err := r.Truncate(8, r.ReadAt(), Position{Flavor: "mariadb", GTIDSet: "0-1-7"}); err != nil {
				t.Fatal(err)
			}
			appendN(t, r, 8, 3)
			for seq := uint64(5); seq <= 10; seq++ {
				if e, err := r.Read(seq); err != nil || e.GTID != fmt.Sprintf("0-1-%d", seq) {
					t.Fatalf("entry %d after the re-fetch: %+v %v", seq, e, err)
				}
			}
		})
	}
}
