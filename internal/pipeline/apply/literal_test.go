package apply

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// The statements a round trip carries, written with their values as
// literals (stmts.addSQL), are byte for byte what interpolating the same
// statements with ? and their arguments gives (stmts.add), whatever the
// names (a ?, quotes, comment openers in identifiers) and values.
func TestLiteralTextIsInterpolated(t *testing.T) {
	defs := []*schema.Table{
		{Schema: "sbtest", Name: "sbtest1", Columns: []schema.Column{{Name: "id", Integer: true, AutoIncrement: true}, {Name: "k", Integer: true}, {Name: "c"}, {Name: "pad"}}, PK: []int{0}, UniqueKeys: 1},
		{Schema: "d`x", Name: "t?q", Columns: []schema.Column{{Name: "a?", Integer: true}, {Name: "b-- c", Integer: true}, {Name: "#c"}, {Name: "g", Generated: true}, {Name: "v/*'"}}, PK: []int{0, 1}, UniqueKeys: 1},
		{Schema: "d", Name: "nopk", Columns: []schema.Column{{Name: "a"}, {Name: "b\""}}},
	}
	values := []any{int32(-7), "it's \"q\" ? \\ \x00\n\r\x1a -- #", []byte{0, 1, '\'', 0xff, '?'}, nil, uint64(18446744073709551615), 1.5, float32(0.1), int8(-128), uint16(65535), []byte(nil), ""}
	for _, def := range defs {
		p, err := newPlan(&txn.Table{Schema: def.Schema, Name: def.Name, Types: make([]byte, len(def.Columns))}, def)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]any
		for i := range 7 {
			r := make([]any, len(def.Columns))
			for j := range r {
				r[j] = values[(i+j)%len(values)]
			}
			rows = append(rows, r)
		}
		var keys [][]any
		for _, r := range rows {
			keys = append(keys, p.keyValues(r))
		}
		writers := map[string]func(*sqlText){
			"insert":      func(w *sqlText) { p.writeInsert(w, rows) },
			"insert one":  func(w *sqlText) { p.writeInsert(w, rows[:1]) },
			"update":      func(w *sqlText) { p.writeUpdate(w, rows[0], rows[1]) },
			"delete":      func(w *sqlText) { p.writeDelete(w, rows[2]) },
			"update join": func(w *sqlText) { p.writeUpdateJoin(w, rows) },
			"update one":  func(w *sqlText) { p.writeUpdateJoin(w, rows[3:4]) },
			"delete in":   func(w *sqlText) { p.writeDeleteIn(w, keys) },
		}
		for name, write := range writers {
			t.Run(fmt.Sprintf("%s.%s %s", def.Schema, def.Name, name), func(t *testing.T) {
				var ph sqlText
				write(&ph)
				want, err := conn.Interpolate(nil, string(ph.b), ph.args)
				if err != nil {
					t.Fatal(err)
				}
				lit := sqlText{b: []byte("x;\n"), lit: true}
				write(&lit)
				if lit.err != nil || !bytes.Equal(lit.b[3:], want) {
					t.Errorf("literal text (%v)\n%q\ninterpolated\n%q", lit.err, lit.b[3:], want)
				}
			})
		}
	}
	// A value without a literal fails as Interpolate fails.
	p, _ := newPlan(&txn.Table{Schema: "d", Name: "nopk", Types: make([]byte, 2)}, defs[2])
	row := []any{1, struct{}{}}
	var ph sqlText
	p.writeDelete(&ph, row)
	_, want := conn.Interpolate(nil, string(ph.b), ph.args)
	lit := sqlText{lit: true}
	p.writeDelete(&lit, row)
	if want == nil || lit.err == nil || lit.err.Error() != want.Error() {
		t.Errorf("error %v, Interpolate's %v", lit.err, want)
	}
}
