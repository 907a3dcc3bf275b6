package apply

import (
	"fmt"
	"iter"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// plan maps the positional columns of a binlog row image onto a target
// table: which image positions are written (generated columns never are)
// and which identify the row.
type plan struct {
	db          string      // quoted `db`
	table       string      // quoted `db`.`table`
	cols        []int       // image positions written by INSERT/UPDATE
	names       []string    // quoted target names of cols
	targetNames []string    // the same, unquoted
	key         []int       // image positions in the WHERE clause
	keyNames    []string    // quoted target names of key
	nullSafe    bool        // no primary key: match the whole before image with <=>
	unsigned    []int       // image positions to read as unsigned (source logged no signedness)
	pads        []padCol    // BINARY(n) columns: image positions padded back to n bytes
	autoInc     int         // image position of the AUTO_INCREMENT column; -1: none
	foldable    bool        // a batch's changes may be folded per key (see compactor)
	uniques     []uniqueKey // the target's unique indexes, for conflict keys
}

func newPlan(bt *txn.Table, def *schema.Table) (*plan, error) {
	p := &plan{db: conn.QuoteName(def.Schema)}
	p.table = p.db + "." + conn.QuoteName(def.Name)
	n := len(bt.Types)
	// target column index for each image position; -1: a hidden column of
	// the source server's own (a long unique key's DB_ROW_HASH_n), never
	// written nor compared: the target computes its own.
	target := make([]int, n)
	switch {
	case bt.Columns != nil:
		for i, name := range bt.Columns {
			if target[i] = def.Index(name); target[i] < 0 && !hashColumn(name) {
				return nil, fmt.Errorf("column %s of %s is not on the target table: add it there or let the stream's DDL create the table", name, bt.QualifiedName())
			}
		}
	case n == len(def.Columns) || n == len(def.Columns)+def.Hidden:
		// Without names: the hidden columns come after every real one.
		for i := range target {
			target[i] = i
			if i >= len(def.Columns) {
				target[i] = -1
			}
		}
	default:
		return nil, fmt.Errorf("%s: the binlog row has %d columns, the target table %d, and the source logs no column names: make the definitions equal or set binlog_row_metadata=FULL on the source", bt.QualifiedName(), n, len(def.Columns))
	}
	byTarget := make(map[int]int, n)
	p.autoInc = -1
	for i, ti := range target {
		if ti < 0 {
			continue
		}
		byTarget[ti] = i
		if def.Columns[ti].AutoIncrement {
			p.autoInc = i
		}
		if def.Columns[ti].Generated {
			continue
		}
		p.cols = append(p.cols, i)
		p.names = append(p.names, conn.QuoteName(def.Columns[ti].Name))
		p.targetNames = append(p.targetNames, def.Columns[ti].Name)
		if !bt.Signedness && def.Columns[ti].Unsigned {
			p.unsigned = append(p.unsigned, i)
		}
		if pad := def.Columns[ti].Pad; pad > 0 {
			p.pads = append(p.pads, padCol{pos: i, n: pad})
		}
	}
	for _, ti := range def.PK {
		i, ok := byTarget[ti]
		if !ok {
			p.key = nil
			break
		}
		p.key = append(p.key, i)
		p.keyNames = append(p.keyNames, conn.QuoteName(def.Columns[ti].Name))
	}
	if len(p.key) == 0 {
		p.nullSafe = true
		p.key, p.keyNames = p.cols, p.names
	}
	p.foldable = compactable(p, def)
	p.uniques = keyPlan(byTarget, def)
	return p, nil
}

// hashColumn reports a name MariaDB gives the hidden column of a long
// unique key (UNIQUE on BLOB/TEXT): DB_ROW_HASH_1, DB_ROW_HASH_2, ...
func hashColumn(name string) bool {
	rest, ok := strings.CutPrefix(name, "DB_ROW_HASH_")
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// maxParams keeps a multi-row INSERT under the server's placeholder limit
// and its packet small.
const maxParams = 20000

// maxStmtBytes bounds the values of one set statement (a multi-row
// INSERT, DELETE ... IN, UPDATE ... JOIN): escaped, at most twice as much
// text, well under the default 16 MiB max_allowed_packet. A single row
// may be larger; stmts checks each statement against the target's setting.
const maxStmtBytes = 512 << 10

// chunks cuts rows into runs of at most per rows and about maxStmtBytes
// of values each.
func chunks(rows [][]any, per int) iter.Seq[[][]any] {
	return func(yield func([][]any) bool) {
		start, size := 0, 0
		for i, row := range rows {
			n := 0
			for _, v := range row {
				n += valueSize(v)
			}
			if i > start && (i-start >= per || size+n > maxStmtBytes) {
				if !yield(rows[start:i:i]) {
					return
				}
				start, size = i, 0
			}
			size += n
		}
		if start < len(rows) {
			yield(rows[start:len(rows):len(rows)])
		}
	}
}

// valueSize is about the length of v's SQL literal (unescaped).
func valueSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x) + 3
	case []byte:
		return len(x) + 10
	}
	return 8
}

// sqlText is a statement being written: with lit each value goes in as
// its SQL literal, as conn.Interpolate would put it for its ?, straight
// into the buffer of a round trip; without, as a ? with the value in args.
// The same writer makes both, so the text a round trip carries is what
// interpolating the statement with its arguments gives (the identifiers
// around the values are quoted, where Interpolate leaves a ? alone).
type sqlText struct {
	b    []byte
	args []any
	lit  bool
	n    int // values written
	err  error
}

func (w *sqlText) str(s string) { w.b = append(w.b, s...) }
func (w *sqlText) char(c byte)  { w.b = append(w.b, c) }

// list writes names separated by commas.
func (w *sqlText) list(names []string) {
	for j, n := range names {
		if j > 0 {
			w.char(',')
		}
		w.str(n)
	}
}

func (w *sqlText) value(v any) {
	w.n++
	if !w.lit {
		w.b = append(w.b, '?')
		w.args = append(w.args, v)
		return
	}
	if w.err != nil {
		return
	}
	var err error
	if w.b, err = conn.AppendLiteral(w.b, v); err != nil {
		w.err = fmt.Errorf("argument %d: %w", w.n, err)
	}
}

// text is the statement with ? for its values, and the values.
func (w *sqlText) text() (string, []any) { return string(w.b), w.args }

// insertsPer is how many rows one INSERT of the plan takes at most.
func (p *plan) insertsPer() int { return max(1, maxParams/max(1, len(p.cols))) }

// inserts returns multi-row INSERT statements for rows.
func (p *plan) inserts(rows [][]any) (stmts []string, args [][]any) {
	for chunk := range chunks(rows, p.insertsPer()) {
		w := sqlText{args: make([]any, 0, len(chunk)*len(p.cols))}
		p.writeInsert(&w, chunk)
		stmts, args = append(stmts, string(w.b)), append(args, w.args)
	}
	return stmts, args
}

// writeInsert writes one multi-row INSERT of rows.
func (p *plan) writeInsert(w *sqlText, rows [][]any) {
	w.str("INSERT INTO ")
	w.str(p.table)
	w.str(" (")
	w.list(p.names)
	w.str(") VALUES ")
	for j, row := range rows {
		if j > 0 {
			w.char(',')
		}
		w.char('(')
		for k, i := range p.cols {
			if k > 0 {
				w.char(',')
			}
			w.value(row[i])
		}
		w.char(')')
	}
}

func (p *plan) where(w *sqlText, before []any) {
	w.str(" WHERE ")
	for j, i := range p.key {
		if j > 0 {
			w.str(" AND ")
		}
		w.str(p.keyNames[j])
		if p.nullSafe {
			w.str(" <=> ")
		} else {
			w.str(" = ")
		}
		w.value(before[i])
	}
	if p.nullSafe {
		w.str(" LIMIT 1")
	}
}

// update returns the UPDATE for one before/after pair.
func (p *plan) update(before, after []any) (string, []any) {
	w := sqlText{args: make([]any, 0, len(p.cols)+len(p.key))}
	p.writeUpdate(&w, before, after)
	return w.text()
}

func (p *plan) writeUpdate(w *sqlText, before, after []any) {
	w.str("UPDATE ")
	w.str(p.table)
	w.str(" SET ")
	for j, i := range p.cols {
		if j > 0 {
			w.char(',')
		}
		w.str(p.names[j])
		w.str(" = ")
		w.value(after[i])
	}
	p.where(w, before)
}

// delete returns the DELETE for one before image.
func (p *plan) delete(before []any) (string, []any) {
	w := sqlText{args: make([]any, 0, len(p.key))}
	p.writeDelete(&w, before)
	return w.text()
}

func (p *plan) writeDelete(w *sqlText, before []any) {
	w.str("DELETE FROM ")
	w.str(p.table)
	p.where(w, before)
}

// fixSigns reinterprets integers decoded as signed in unsigned columns, in
// place: without signedness metadata, BIGINT UNSIGNED 2^64-1 arrives as -1.
func (p *plan) fixSigns(rows [][]any, types []byte) {
	for _, row := range rows {
		for _, i := range p.unsigned {
			row[i] = unsigned(row[i], types[i])
		}
	}
}

// padCol is a BINARY(n) column of the image.
type padCol struct{ pos, n int }

// padBinary pads BINARY(n) values with 0x00 to n bytes, in place: the
// binlog logs them without their trailing zeros (a BINARY(16) UUID ending
// in 00 arrives as 15 bytes), and compared with the stored value in a
// WHERE a short value matches nothing. Every use of the image (WHERE,
// SET, conflict keys, the resolver's reads) then sees the stored value.
// Padding a padded value changes nothing, so a retried batch is safe.
func (p *plan) padBinary(rows [][]any) {
	for _, row := range rows {
		for _, c := range p.pads {
			if c.pos < len(row) {
				row[c.pos] = padded(row[c.pos], c.n)
			}
		}
	}
}

func padded(v any, n int) any {
	switch x := v.(type) {
	case string:
		if len(x) < n {
			return x + strings.Repeat("\x00", n-len(x))
		}
	case []byte:
		if len(x) < n {
			return append(x[:len(x):len(x)], make([]byte, n-len(x))...)
		}
	}
	return v
}

func unsigned(v any, typ byte) any {
	switch x := v.(type) {
	case int8:
		return uint8(x)
	case int16:
		return uint16(x)
	case int32:
		if typ == mysql.MYSQL_TYPE_INT24 {
			return uint32(x) & 0xFFFFFF
		}
		return uint32(x)
	case int64:
		return uint64(x)
	}
	return v
}

// sameKey reports whether two images identify the same row.
func (p *plan) sameKey(a, b []any) bool {
	for _, i := range p.key {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			return false
		}
	}
	return true
}
