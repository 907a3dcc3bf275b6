package apply

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
	"unicode/utf8"

	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Conflict keys say which source transactions may be applied at once on
// different connections: two transactions whose keys do not meet touch no
// common row and can collide on no unique index of the target, so either
// order ends in the same state.
//
// A key is a unique index's values in one row image (before and after
// images both count), folded the way the index compares them:
//   - integers by value;
//   - binary strings by bytes (trailing 0x00 ignored: BINARY(n) pads);
//   - character strings with trailing spaces ignored (PAD SPACE), and, for
//     a collation that is not _bin, ASCII letters in one case;
//   - a character string that holds anything but printable ASCII, under a
//     collation that is not _bin, cannot be folded safely here ('ß' = 'ss',
//     'a' = 'á', ignorable controls): it takes the whole index instead (a
//     "wide" key), which meets every other key of that index;
//   - an indexed prefix (SUB_PART) keys only the prefix;
//   - a unique key with a NULL in it keys nothing: NULLs never collide.
//
// Folding errs on the side of collisions: two values that the index holds
// distinct may share a key (that only costs parallelism), never the other
// way round. Keys are 64-bit hashes; a hash collision is one more such
// false conflict.
type Keys struct {
	// Reg: what an applying batch holds; Check: what a new batch must not
	// find held. A row key holds itself and its index's "touched" mark and
	// checks itself and the index's wide key; a wide key holds itself and
	// checks itself and the touched mark.
	Reg, Check map[uint64]struct{}
	// Barrier names why the batch cannot run beside others ("" if it can).
	Barrier string
}

// NewKeys returns an empty key set.
func NewKeys() *Keys {
	return &Keys{Reg: map[uint64]struct{}{}, Check: map[uint64]struct{}{}}
}

var keySeed = maphash.MakeSeed()

// Keys adds the conflict keys of t's row changes to ks. Tables without a
// unique key on the target, tables with triggers there (unless
// parallelTriggers) and tables a cascading foreign key references make the
// batch a barrier.
func (e *Executor) Keys(ctx context.Context, t *txn.Txn, ks *Keys, parallelTriggers bool) error {
	for _, ev := range t.Events {
		rc := ev.Rows
		if rc == nil {
			continue
		}
		def, err := e.schema.Table(ctx, rc.Table.Schema, rc.Table.Name)
		if err != nil {
			return fmt.Errorf("GTID %s: %w", t.GTID, err)
		}
		p, err := e.planFor(rc.Table, def)
		if err != nil {
			// applyRows explains it; the batch runs alone.
			ks.Barrier = err.Error()
			return nil
		}
		switch {
		case len(p.uniques) == 0:
			ks.Barrier = rc.Table.QualifiedName() + " has no unique key on the target"
			return nil
		case def.Triggers && !parallelTriggers:
			ks.Barrier = rc.Table.QualifiedName() + " has triggers on the target"
			return nil
		case def.Cascades && !rc.NoFKChecks:
			// The rows its cascade changes are in no image: no key can
			// order them against other lanes.
			ks.Barrier = rc.Table.QualifiedName() + " is referenced by a cascading foreign key"
			return nil
		}
		for _, row := range rc.Rows {
			p.rowKeys(row, ks)
		}
	}
	return nil
}

// keyCol is one column of a unique index as the conflict keys read it.
type keyCol struct {
	pos    int // image position; -1: not in the image (a generated column)
	fold   fold
	prefix int // characters (bytes for binary) of an indexed prefix; 0: all
}

type fold uint8

const (
	foldExact  fold = iota // numbers, dates: as logged
	foldBinary             // binary strings: bytes, trailing 0x00 ignored
	foldBin                // _bin collations: bytes, trailing spaces ignored
	foldCase               // other collations: see Keys
)

type uniqueKey struct {
	id   uint64 // the index: table and index name
	cols []keyCol
}

// keyPlan maps the target's unique indexes onto image positions.
func keyPlan(byTarget map[int]int, def *schema.Table) []uniqueKey {
	var out []uniqueKey
	table := strings.ToLower(def.Schema + "." + def.Name)
	for _, u := range def.Uniques {
		uk := uniqueKey{id: maphash.String(keySeed, table+"\x00"+strings.ToLower(u.Name))}
		for j, ti := range u.Cols {
			kc := keyCol{pos: -1, prefix: u.Prefix[j]}
			if ti >= 0 {
				if i, ok := byTarget[ti]; ok && !def.Columns[ti].Generated {
					kc.pos = i
				}
				c := def.Columns[ti]
				switch {
				case c.Collation == "":
					kc.fold = foldBinary
					if c.Integer {
						kc.fold = foldExact
					}
				case strings.HasSuffix(c.Collation, "_bin"):
					kc.fold = foldBin
				default:
					kc.fold = foldCase
				}
			}
			uk.cols = append(uk.cols, kc)
		}
		out = append(out, uk)
	}
	return out
}

// rowKeys adds one image's keys.
func (p *plan) rowKeys(row []any, ks *Keys) {
	var buf []byte
	for _, u := range p.uniques {
		buf = binary.LittleEndian.AppendUint64(buf[:0], u.id)
		wide, null := false, false
		for _, c := range u.cols {
			if c.pos < 0 || c.pos >= len(row) {
				wide = true
				break
			}
			v := row[c.pos]
			if v == nil {
				null = true
				break
			}
			var ok bool
			if buf, ok = appendFolded(buf, v, c); !ok {
				wide = true
				break
			}
			buf = append(buf, 0xff)
		}
		switch {
		case null:
		case wide:
			w := u.id ^ 0x5749444557494445 // "WIDEWIDE"
			ks.Reg[w] = struct{}{}
			ks.Check[w] = struct{}{}
			ks.Check[u.id] = struct{}{}
		default:
			h := maphash.Bytes(keySeed, buf)
			ks.Reg[h] = struct{}{}
			ks.Reg[u.id] = struct{}{} // touched
			ks.Check[h] = struct{}{}
			ks.Check[u.id^0x5749444557494445] = struct{}{}
		}
	}
}

// appendFolded appends v as its index compares it; false when it cannot be
// folded safely (the key becomes wide).
func appendFolded(b []byte, v any, c keyCol) ([]byte, bool) {
	if b, ok := appendInteger(b, v); ok {
		return b, true
	}
	switch x := v.(type) {
	case string:
		return appendString(b, x, c)
	case []byte:
		return appendString(b, string(x), c)
	case float32, float64:
		return fmt.Appendf(b, "%v", x), true
	default:
		return fmt.Appendf(b, "%T:%v", x, x), true
	}
}

func appendString(b []byte, s string, c keyCol) ([]byte, bool) {
	switch c.fold {
	case foldExact:
		return append(b, s...), true
	case foldBinary:
		if c.prefix > 0 && len(s) > c.prefix {
			s = s[:c.prefix]
		}
		return append(b, strings.TrimRight(s, "\x00")...), true
	}
	if c.prefix > 0 && utf8.RuneCountInString(s) > c.prefix {
		n := 0
		for i := range s {
			if n == c.prefix {
				s = s[:i]
				break
			}
			n++
		}
	}
	s = strings.TrimRight(s, " ")
	if c.fold == foldBin {
		return append(b, s...), true
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch < 0x20 || ch > 0x7e:
			return b, false
		case 'A' <= ch && ch <= 'Z':
			ch += 'a' - 'A'
		}
		b = append(b, ch)
	}
	return b, true
}
