package apply

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// compactor folds the row changes of one batch into one net change per
// key, then writes each table with three set statements: DELETE ... IN,
// UPDATE ... JOIN (the new images), multi-row INSERT. The server parses
// three statements instead of one per row change; sysbench's
// oltp_write_only (two updates, a delete and an insert of one id per
// transaction) sends about a quarter of the rows.
//
// Safe only where keys cannot meet except by equality and statements on
// different keys cannot collide: the table's only unique key is its
// integer identifying key (no collation folds 'a' into 'A', no second
// unique key can clash between rows while they are reordered), no update
// changes a key (those flush the table and go row by row), and the target
// has no trigger on it (triggers would see net changes) and no cascading
// foreign key references it (a cascade must meet the rows in source order). Net changes keep
// the applier's checks: a row that must exist is counted by the DELETE or
// UPDATE, one that must not by the INSERT's duplicate-key error.
//
// A row inserted and deleted within the batch folds into nothing, but its
// INSERT moved the table's AUTO_INCREMENT counter (a native replica's
// counter ends past it). When the highest key inserted in the batch is
// such a row, it is written and deleted again after the net changes, so
// the counter moves as applying every change would move it (with the
// session's auto_increment_increment/offset, as row by row; ALTER TABLE
// ... AUTO_INCREMENT would commit the batch half-way and ignore them).
// Only a table whose identifying key is its AUTO_INCREMENT column alone is
// folded: that is where the highest key is the counter's high mark.
type compactor struct {
	tables map[string]*netTable
	order  []string
	n      int // row images added since the last flush
}

type netTable struct {
	p    *plan
	keys []string // first-seen order, for a stable statement text
	rows map[string]*netRow
}

// netRow is where a key started and where it ends in the batch.
type netRow struct {
	existed bool  // before the batch (its first change was an update or delete)
	image   []any // after the batch; nil: absent
	first   []any // the first image seen: its key is the row's key
	insert  []any // the last image inserted under this key in the batch, if any
}

func newCompactor() *compactor { return &compactor{tables: map[string]*netTable{}} }

// compactable tells whether a table's changes may be folded (newPlan
// records it in plan.foldable).
func compactable(p *plan, def *schema.Table) bool {
	if p.nullSafe || def.Triggers || def.Cascades || def.UniqueKeys != 1 || len(def.PK) == 0 || len(p.cols) <= len(p.key) {
		return false
	}
	for _, i := range p.key {
		if !slices.Contains(p.cols, i) {
			return false // a generated key: not in the images we write
		}
	}
	for _, ti := range def.PK {
		if !def.Columns[ti].Integer {
			return false
		}
	}
	if p.autoInc >= 0 && (len(p.key) != 1 || p.key[0] != p.autoInc) {
		return false // the counter's high mark is not the highest key (see compactor)
	}
	return true
}

// appendKey appends an image's key values (integers) encoded as a map
// key.
func (p *plan) appendKey(b []byte, row []any) []byte {
	for j, i := range p.key {
		if j > 0 {
			b = append(b, 0)
		}
		var ok bool
		if b, ok = appendInteger(b, row[i]); !ok {
			b = fmt.Append(b, row[i])
		}
	}
	return b
}

// appendInteger appends an integer image value by value (the same number
// reads the same whatever Go type the decoder gave it); false for a value
// that is not an integer.
func appendInteger(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), true
	}
	return b, false
}

// add folds one row change in. It returns false for an update that
// changes a key: the caller flushes the table and applies it row by row.
func (c *compactor) add(p *plan, rc *txn.RowChange) bool {
	if rc.Kind == txn.Update {
		var a, b [40]byte
		for i := 0; i+1 < len(rc.Rows); i += 2 {
			if !bytes.Equal(p.appendKey(a[:0], rc.Rows[i]), p.appendKey(b[:0], rc.Rows[i+1])) {
				return false
			}
		}
	}
	c.n += len(rc.Rows)
	t := c.tables[p.table]
	if t == nil {
		t = &netTable{p: p, rows: map[string]*netRow{}}
		c.tables[p.table] = t
		c.order = append(c.order, p.table)
	}
	t.p = p
	var buf [40]byte
	touch := func(row []any, existed bool) *netRow {
		k := p.appendKey(buf[:0], row)
		r := t.rows[string(k)] // looked up without a string made
		if r == nil {
			r = &netRow{existed: existed, first: row}
			ks := string(k)
			t.rows[ks] = r
			t.keys = append(t.keys, ks)
		}
		return r
	}
	switch rc.Kind {
	case txn.Insert:
		for _, row := range rc.Rows {
			r := touch(row, false)
			r.image, r.insert = row, row
		}
	case txn.Update:
		for i := 0; i+1 < len(rc.Rows); i += 2 {
			touch(rc.Rows[i], true).image = rc.Rows[i+1]
		}
	case txn.Delete:
		for _, row := range rc.Rows {
			touch(row, true).image = nil
		}
	}
	return true
}

// flushTable writes one table's net changes into b and forgets them.
func (c *compactor) flushTable(ctx context.Context, b *stmts, table string) error {
	t := c.tables[table]
	if t == nil {
		return nil
	}
	delete(c.tables, table)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == table })
	var dels, upds, ins [][]any
	var gone, high []any // the highest inserted image folded away, and of all inserted
	for _, k := range t.keys {
		r := t.rows[k]
		if t.p.autoInc >= 0 && r.insert != nil {
			if high == nil || intLess(high[t.p.autoInc], r.insert[t.p.autoInc]) {
				high = r.insert
			}
			if r.image == nil && !r.existed && (gone == nil || intLess(gone[t.p.autoInc], r.insert[t.p.autoInc])) {
				gone = r.insert
			}
		}
		switch {
		case r.existed && r.image == nil:
			dels = append(dels, t.p.keyValues(r.first))
		case r.existed:
			upds = append(upds, r.image)
		case r.image != nil:
			ins = append(ins, r.image)
		}
	}
	p := t.p
	for chunk := range chunks(dels, max(1, maxParams/len(p.key))) {
		if err := b.addSQL(ctx, func(w *sqlText) { p.writeDeleteIn(w, chunk) }, int64(len(chunk)), stmtRef{what: "net delete", db: p.db, table: p.table}); err != nil {
			return err
		}
	}
	for chunk := range chunks(upds, max(1, maxParams/len(p.cols))) {
		if err := b.addSQL(ctx, func(w *sqlText) { p.writeUpdateJoin(w, chunk) }, int64(len(chunk)), stmtRef{what: "net update", db: p.db, table: p.table}); err != nil {
			return err
		}
	}
	for chunk := range chunks(ins, p.insertsPer()) {
		if err := b.addSQL(ctx, func(w *sqlText) { p.writeInsert(w, chunk) }, -1, stmtRef{what: "net insert", db: p.db, table: p.table}); err != nil {
			return err
		}
	}
	if gone != nil && !intLess(gone[p.autoInc], high[p.autoInc]) {
		// Its key is free: absent before the batch and after it.
		if err := b.addSQL(ctx, func(w *sqlText) { p.writeInsert(w, [][]any{gone}) }, 1, stmtRef{what: "AUTO_INCREMENT: inserting the highest row the batch inserted and deleted", db: p.db, table: p.table}); err != nil {
			return err
		}
		if err := b.addSQL(ctx, func(w *sqlText) { p.writeDelete(w, gone) }, 1, stmtRef{what: "AUTO_INCREMENT: deleting it again", db: p.db, table: p.table}); err != nil {
			return err
		}
	}
	return nil
}

// intLess orders two integer image values of one column (the decoder may
// give int64 or uint64 for the same column); non-integers are never less.
func intLess(a, b any) bool {
	x, xu, xok := intValue(a)
	y, yu, yok := intValue(b)
	switch {
	case !xok || !yok:
		return false
	case xu && yu:
		return uint64(x) < uint64(y)
	case xu: // a >= 0
		return y >= 0 && uint64(x) < uint64(y)
	case yu:
		return x < 0 || uint64(x) < uint64(y)
	}
	return x < y
}

// intValue is an integer as int64 bits, and whether they are unsigned.
func intValue(v any) (int64, bool, bool) {
	switch x := v.(type) {
	case int64:
		return x, false, true
	case int32:
		return int64(x), false, true
	case int16:
		return int64(x), false, true
	case int8:
		return int64(x), false, true
	case int:
		return int64(x), false, true
	case uint64:
		return int64(x), true, true
	case uint32:
		return int64(x), true, true
	case uint16:
		return int64(x), true, true
	case uint8:
		return int64(x), true, true
	}
	return 0, false, false
}

// flush writes every table's net changes.
func (c *compactor) flush(ctx context.Context, b *stmts) error {
	c.n = 0
	for len(c.order) > 0 {
		if err := c.flushTable(ctx, b, c.order[0]); err != nil {
			return err
		}
	}
	return nil
}

// keyValues are an image's key values.
func (p *plan) keyValues(row []any) []any {
	k := make([]any, len(p.key))
	for j, i := range p.key {
		k[j] = row[i]
	}
	return k
}

// writeDeleteIn deletes the rows with the given keys.
func (p *plan) writeDeleteIn(w *sqlText, keys [][]any) {
	w.str("DELETE FROM ")
	w.str(p.table)
	w.str(" WHERE ")
	if len(p.key) > 1 {
		w.char('(')
		w.list(p.keyNames)
		w.str(") IN (")
	} else {
		w.str(p.keyNames[0])
		w.str(" IN (")
	}
	for j, k := range keys {
		if j > 0 {
			w.char(',')
		}
		if len(p.key) > 1 {
			w.char('(')
		}
		for n, v := range k {
			if n > 0 {
				w.char(',')
			}
			w.value(v)
		}
		if len(p.key) > 1 {
			w.char(')')
		}
	}
	w.char(')')
}

// writeUpdateJoin sets every written column of the rows to their new
// images, matched by key; with one row, a plain UPDATE.
func (p *plan) writeUpdateJoin(w *sqlText, rows [][]any) {
	if len(rows) == 1 {
		p.writeUpdate(w, rows[0], rows[0])
		return
	}
	w.str("UPDATE ")
	w.str(p.table)
	w.str(" AS t JOIN (")
	for j, row := range rows {
		if j > 0 {
			w.str(" UNION ALL ")
		}
		w.str("SELECT ")
		for n, i := range p.cols {
			if n > 0 {
				w.char(',')
			}
			w.value(row[i])
			if j == 0 {
				w.str(" AS c")
				w.b = strconv.AppendInt(w.b, int64(n), 10)
			}
		}
	}
	w.str(") AS v ON ")
	for j, i := range p.key {
		if j > 0 {
			w.str(" AND ")
		}
		w.str("t.")
		w.str(p.keyNames[j])
		w.str(" = v.c")
		w.b = strconv.AppendInt(w.b, int64(slices.Index(p.cols, i)), 10)
	}
	w.str(" SET ")
	first := true
	for n := range p.cols {
		if slices.Contains(p.key, p.cols[n]) {
			continue
		}
		if !first {
			w.char(',')
		}
		first = false
		w.str("t.")
		w.str(p.names[n])
		w.str(" = v.c")
		w.b = strconv.AppendInt(w.b, int64(n), 10)
	}
}
