package apply

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Folding a batch into net changes per key ends where applying every
// change in order ends: random inserts, updates and deletes on a few keys
// (so keys are hit several times per batch) go to one table compacted and
// to its twin row by row; both must equal the model.
func TestCompactedBatchesEqualRowByRow(t *testing.T) {
	ex, _ := newExecutor(t)
	ctx := context.Background()
	for _, q := range []string{"CREATE DATABASE app",
		"CREATE TABLE app.a (id BIGINT PRIMARY KEY, v VARCHAR(20), n INT)",
		"CREATE TABLE app.b (id BIGINT PRIMARY KEY, v VARCHAR(20), n INT)"} {
		if _, err := ex.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(7, 11))
	model := map[int64][]any{}
	var txns []*txn.Txn
	for i := 1; i <= 600; i++ {
		var evs []*txn.RowChange
		for range 1 + r.IntN(4) {
			id := int64(r.IntN(40))
			img := []any{id, fmt.Sprintf("v%d", r.IntN(1000)), int32(r.IntN(100))}
			old, exists := model[id]
			switch {
			case !exists:
				evs = append(evs, &txn.RowChange{Kind: txn.Insert, Rows: [][]any{img}})
				model[id] = img
			case r.IntN(2) == 0:
				evs = append(evs, &txn.RowChange{Kind: txn.Update, Rows: [][]any{old, img}})
				model[id] = img
			default:
				evs = append(evs, &txn.RowChange{Kind: txn.Delete, Rows: [][]any{old}})
				delete(model, id)
			}
		}
		t := &txn.Txn{GTID: fmt.Sprintf("0-1-%d", i)}
		for _, e := range evs {
			t.Events = append(t.Events, txn.Event{Rows: e})
		}
		txns = append(txns, t)
	}
	apply := func(table string, compact bool) {
		ex.cfg.NoCompact = !compact
		tbl := &txn.Table{Schema: "app", Name: table, Types: []byte{8, 15, 3}}
		var batch []*txn.Txn
		for i, tx := range txns {
			c := &txn.Txn{GTID: tx.GTID}
			for _, e := range tx.Events {
				rc := *e.Rows
				rc.Table = tbl
				c.Events = append(c.Events, txn.Event{Rows: &rc})
			}
			batch = append(batch, c)
			if len(batch) == 50 || i == len(txns)-1 {
				if err := ex.ApplyRows(ctx, batch, gtid.MustParse(gtid.MariaDB, c.GTID)); err != nil {
					t.Fatalf("%s (compact %v): %v", table, compact, err)
				}
				batch = nil
			}
		}
	}
	apply("a", true)
	apply("b", false)
	for _, table := range []string{"a", "b"} {
		rows, err := ex.DB().Query("SELECT id, v, n FROM app." + table)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]string{}
		for rows.Next() {
			var id int64
			var v string
			var n int32
			if err := rows.Scan(&id, &v, &n); err != nil {
				t.Fatal(err)
			}
			got[id] = fmt.Sprint(v, n)
		}
		rows.Close()
		if len(got) != len(model) {
			t.Errorf("table %s has %d rows, the model %d", table, len(got), len(model))
		}
		for id, img := range model {
			if want := fmt.Sprint(img[1], img[2]); got[id] != want {
				t.Errorf("table %s row %d = %q, want %q", table, id, got[id], want)
			}
		}
	}
}

// Net changes keep the applier's checks: a net delete or update of a row
// the target does not have is a divergence, a net insert of a row it
// already has a duplicate-key error; either rolls the batch back.
func TestCompactedBatchStillDetectsDivergence(t *testing.T) {
	ex, _ := newExecutor(t)
	ctx := context.Background()
	for _, q := range []string{"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO app.t VALUES (1, 'a'), (2, 'b')"} {
		if _, err := ex.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	tbl := &txn.Table{Schema: "app", Name: "t", Types: make([]byte, 2)}
	ok := rows("0-1-1", txn.Update, tbl, []any{1, "a"}, []any{1, "a2"})
	for name, bad := range map[string]*txn.Txn{
		"delete of a missing row": rows("0-1-2", txn.Delete, tbl, []any{7, "x"}),
		"update of a missing row": rows("0-1-2", txn.Update, tbl, []any{7, "x"}, []any{7, "y"}, []any{2, "b"}, []any{2, "c"}),
		"insert of a present row": rows("0-1-2", txn.Insert, tbl, []any{2, "z"}),
	} {
		err := ex.ApplyRows(ctx, []*txn.Txn{ok, bad}, gtid.MustParse(gtid.MariaDB, "0-1-2"))
		if err == nil || (!errors.Is(err, ErrDiverged) && !strings.Contains(err.Error(), "Duplicate")) {
			t.Errorf("%s: err = %v, want a divergence or duplicate-key error", name, err)
		}
		var v string
		if err := ex.DB().QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v); err != nil || v != "a" {
			t.Errorf("%s: the failed batch left row 1 = %q (%v)", name, v, err)
		}
	}
}

// A row inserted and deleted within one batch folds into nothing, yet its
// INSERT moved the AUTO_INCREMENT counter on the source and on a native
// replica: when it is the highest key the batch inserted, it is written
// and deleted again after the net changes. A higher net insert moves the
// counter by itself; a table whose counter is not its key is not folded.
func TestFoldedInsertKeepsAutoIncrement(t *testing.T) {
	def := &schema.Table{Schema: "d", Name: "a", Columns: []schema.Column{{Name: "id", Integer: true, AutoIncrement: true}, {Name: "v", Integer: true}},
		PK: []int{0}, UniqueKeys: 1}
	bt := &txn.Table{Schema: "d", Name: "a", Types: make([]byte, 2)}
	p, err := newPlan(bt, def)
	if err != nil || !p.foldable {
		t.Fatalf("foldable %v, %v", p != nil && p.foldable, err)
	}
	run := func(changes ...*txn.RowChange) string {
		c := newCompactor()
		for _, rc := range changes {
			if !c.add(p, rc) {
				t.Fatal("not folded")
			}
		}
		packet := &atomic.Int64{}
		packet.Store(1 << 30)
		b := &stmts{packet: packet}
		if err := c.flush(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		return string(b.buf)
	}
	ins := func(rows ...[]any) *txn.RowChange { return &txn.RowChange{Kind: txn.Insert, Rows: rows} }
	del := func(rows ...[]any) *txn.RowChange { return &txn.RowChange{Kind: txn.Delete, Rows: rows} }
	upd := func(rows ...[]any) *txn.RowChange { return &txn.RowChange{Kind: txn.Update, Rows: rows} }
	for _, c := range []struct {
		name, want string
		changes    []*txn.RowChange
	}{
		{"inserted and deleted: written and deleted again", "INSERT INTO `d`.`a` (`id`,`v`) VALUES (9,1);\nDELETE FROM `d`.`a` WHERE `id` = 9",
			[]*txn.RowChange{ins([]any{int32(9), 1}), del([]any{int32(9), 1})}},
		{"the highest of several, after the net insert", "INSERT INTO `d`.`a` (`id`,`v`) VALUES (5,2);\nINSERT INTO `d`.`a` (`id`,`v`) VALUES (12,1);\nDELETE FROM `d`.`a` WHERE `id` = 12",
			[]*txn.RowChange{ins([]any{int32(10), 1}, []any{int32(12), 1}), ins([]any{int32(5), 2}), upd([]any{int32(12), 1}, []any{int32(12), 3}), del([]any{int32(10), 1}), del([]any{int32(12), 3})}},
		{"a higher net insert moves the counter itself", "INSERT INTO `d`.`a` (`id`,`v`) VALUES (20,1)",
			[]*txn.RowChange{ins([]any{int32(9), 1}), del([]any{int32(9), 1}), ins([]any{int32(20), 1})}},
		{"deleted rows that existed move nothing", "DELETE FROM `d`.`a` WHERE `id` IN (30)",
			[]*txn.RowChange{del([]any{int32(30), 1})}},
	} {
		if got := run(c.changes...); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	// The counter on another column than the key: never folded.
	other := &schema.Table{Schema: "d", Name: "o", Columns: []schema.Column{{Name: "id", Integer: true}, {Name: "n", Integer: true, AutoIncrement: true}},
		PK: []int{0}, UniqueKeys: 1}
	if p, _ := newPlan(&txn.Table{Types: make([]byte, 2)}, other); p.foldable {
		t.Error("a table whose AUTO_INCREMENT column is not its key is folded")
	}
	if !intLess(int64(-1), uint64(0)) || intLess(uint64(1<<63), int64(5)) || !intLess(int32(4), uint64(1<<63)) || intLess("x", 1) {
		t.Error("intLess")
	}
}
