package checkpoint

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
)

// Before segment files, the relay kept its entries in pebble, under
// relay/<channel>/: e/<entry> (checksum, format id, GTID, events, pieces),
// p/<entry>/<piece>, f/<format id> and end (JSON). A data dir written so
// is moved to segment files when its relay is opened: the entries go to
// segment 1 as they were, its end to the header of segment 2, which is
// appended to from then on. An entry that fails its checksum is written
// with a checksum that cannot match, so the replay finds it corrupt where
// it was and fetches it again from the source. The segments are renamed
// into place once synced, and only then are the pebble keys deleted: a
// crash in between moves them again, or only deletes them.

// migrateRelay moves the channel's pebble relay, if it has one, into dir.
func (s *Store) migrateRelay(channel, dir string) error {
	prefix := "relay/" + channel + "/"
	lo, hi := []byte(prefix), []byte(prefix+"\xff")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	found := it.First()
	if err := it.Close(); err != nil || !found {
		return err
	}
	nums, err := listSegments(dir)
	if err != nil {
		return err
	}
	if len(nums) == 0 {
		tmp := dir + ".migrating"
		if err := os.RemoveAll(tmp); err != nil {
			return err
		}
		if err := os.MkdirAll(tmp, 0o750); err != nil {
			return err
		}
		if err := s.writeLegacy(prefix, tmp); err != nil {
			return err
		}
		if err := syncDir(tmp); err != nil {
			return err
		}
		if err := os.Remove(dir); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// legacyEntry is an entry as pebble held it.
type legacyEntry struct {
	seq    uint64
	gtid   string
	fid    uint32
	events [][]byte
	parts  int
}

// decodeLegacy reads a pebble entry or piece.
func decodeLegacy(v []byte) (legacyEntry, error) {
	if len(v) < 4 || binary.LittleEndian.Uint32(v) != crc32.Checksum(v[4:], castagnoli) {
		return legacyEntry{}, fmt.Errorf("%w: checksum mismatch", ErrRelayCorrupt)
	}
	f := fields{rest: v[4:]}
	e := legacyEntry{fid: uint32(f.uvarint())}
	e.gtid = string(f.bytes())
	e.events = f.events()
	if !f.bad && len(f.rest) > 0 {
		e.parts = int(f.uvarint())
		if e.parts == 0 {
			f.bad = true
		}
	}
	return e, f.done("entry")
}

// writeLegacy writes the pebble relay under prefix as segments 1 and 2
// in dir.
func (s *Store) writeLegacy(prefix, dir string) error {
	var end Position
	hasEnd := false
	if v, closer, err := s.db.Get([]byte(prefix + "end")); err == nil {
		err = json.Unmarshal(v, &end)
		closer.Close()
		if err != nil {
			return fmt.Errorf("the relay's end: %w", err)
		}
		hasEnd = true
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix + "e/"), UpperBound: []byte(prefix + "e0")})
	if err != nil {
		return err
	}
	defer it.Close()
	f, err := os.OpenFile(segmentPath(dir, 1), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	put := func(b []byte) error {
		off += int64(len(b))
		_, err := w.Write(b)
		return err
	}
	written := map[uint32]bool{}
	var buf []byte
	first, next := end.nextSeq(), end.nextSeq()
	for ok := it.First(); ok; ok = it.Next() {
		var seq uint64
		if _, err := fmt.Sscanf(string(it.Key()[len(prefix)+2:]), "%x", &seq); err != nil {
			return fmt.Errorf("relay key %q: %w", it.Key(), err)
		}
		if next == first && off == 0 {
			first, next = seq, seq
			h := appendHeader(nil, header{num: 1, firstSeq: seq})
			if err := put(h); err != nil {
				return err
			}
		}
		if seq != next {
			return fmt.Errorf("relay entry %d follows entry %d", seq, next-1)
		}
		e, err := decodeLegacy(it.Value())
		buf = buf[:0]
		partsAt := off
		if err == nil {
			buf, err = s.legacyPieces(buf, prefix, seq, e, written)
		}
		if err == nil && !written[e.fid] {
			buf, err = s.legacyFormat(buf, prefix, e.fid)
			written[e.fid] = err == nil
		}
		if err == nil {
			buf = appendEntry(buf, seq, e.fid, e.gtid, e.events, e.parts, partsAt)
		} else {
			buf = corruptRecord(buf, recEntry, it.Value())
		}
		if err := put(buf); err != nil {
			return err
		}
		next++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if off == 0 {
		if err := put(appendHeader(nil, header{num: 1, firstSeq: next})); err != nil {
			return err
		}
	}
	end.NextSeq = next
	if err := put(appendEnd(nil, end)); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	tail, err := os.OpenFile(segmentPath(dir, 2), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	defer tail.Close()
	if _, err := tail.Write(appendHeader(nil, header{num: 2, base: off, firstSeq: next, start: end, hasStart: hasEnd})); err != nil {
		return err
	}
	return tail.Sync()
}

// legacyPieces appends the pieces of entry seq to b.
func (s *Store) legacyPieces(b []byte, prefix string, seq uint64, e legacyEntry, written map[uint32]bool) ([]byte, error) {
	for i := range e.parts {
		v, closer, err := s.db.Get(fmt.Appendf(nil, "%sp/%016x/%08x", prefix, seq, i))
		if err != nil {
			return b, fmt.Errorf("piece %d: %w", i+1, err)
		}
		p, err := decodeLegacy(v)
		if err != nil {
			b = corruptRecord(b, recPiece, v)
			closer.Close()
			continue
		}
		if !written[p.fid] {
			var ferr error
			if b, ferr = s.legacyFormat(b, prefix, p.fid); ferr == nil {
				written[p.fid] = true
			}
		}
		b = appendPiece(b, i, p.fid, p.gtid, p.events)
		closer.Close()
	}
	return b, nil
}

// legacyFormat appends the format description fid to b.
func (s *Store) legacyFormat(b []byte, prefix string, fid uint32) ([]byte, error) {
	v, closer, err := s.db.Get(fmt.Appendf(nil, "%sf/%08x", prefix, fid))
	if err != nil {
		return b, err
	}
	defer closer.Close()
	if crc32.Checksum(v, castagnoli) != fid {
		return b, fmt.Errorf("%w: format description %08x", ErrRelayCorrupt, fid)
	}
	return appendFormat(b, v), nil
}

// corruptRecord appends a record of kind holding v whose checksum cannot
// match: what rotted in pebble is found rotten in the segment.
func corruptRecord(b []byte, kind byte, v []byte) []byte {
	b, start := beginRecord(b, kind)
	b = append(b, v...)
	b = finishRecord(b, start)
	b[start+4] ^= 0xff
	return b
}
