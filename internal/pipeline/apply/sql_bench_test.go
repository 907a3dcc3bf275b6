package apply

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// sbPlan is the plan of a sysbench table (id INT AUTO_INCREMENT PRIMARY
// KEY, k INT, c CHAR(120), pad CHAR(60)) as a FULL-metadata table map
// describes it.
func sbPlan(tb testing.TB) *plan {
	def := &schema.Table{Schema: "sbtest", Name: "sbtest1", Columns: []schema.Column{
		{Name: "id", Integer: true, AutoIncrement: true}, {Name: "k", Integer: true},
		{Name: "c", Collation: "utf8mb4_general_ci"}, {Name: "pad", Collation: "utf8mb4_general_ci"},
	}, PK: []int{0}, UniqueKeys: 1}
	bt := &txn.Table{Schema: "sbtest", Name: "sbtest1", Types: []byte{3, 3, 254, 254}, Columns: []string{"id", "k", "c", "pad"}, PK: []int{0}, Signedness: true}
	p, err := newPlan(bt, def)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// sbChanges are n oltp_write_only transactions' row changes, as the
// decoder gives them (INT as int32, CHAR as string): an indexed update
// and a non-indexed update (one change of two pairs), a delete, an insert.
func sbChanges(p *plan, n int) [][]*txn.RowChange {
	bt := &txn.Table{Schema: "sbtest", Name: "sbtest1"}
	out := make([][]*txn.RowChange, n)
	for i := range out {
		id := int32(1 + i*7919%10000)
		c := fmt.Sprintf("%011d-%011d-%011d-%011d-%011d-%011d-%011d-%011d-%011d-%011d", i, i+1, i+2, i+3, i+4, i+5, i+6, i+7, i+8, i+9)
		pad := fmt.Sprintf("%011d-%011d-%011d-%011d-%011d", i, i*3, i*5, i*7, i*11)
		row := func(k int32, c string) []any { return []any{id, k, c, pad} }
		out[i] = []*txn.RowChange{
			{Table: bt, Kind: txn.Update, Rows: [][]any{row(id*7, c), row(id*7+1, c), row(id*7+1, c), row(id*7+1, pad)}},
			{Table: bt, Kind: txn.Delete, Rows: [][]any{row(id*7+1, pad)}},
			{Table: bt, Kind: txn.Insert, Rows: [][]any{row(id*5, c)}},
		}
	}
	return out
}

func benchStmts() *stmts {
	packet := new(atomic.Int64)
	packet.Store(math.MaxInt32)
	return &stmts{packet: packet}
}

// BenchmarkRowByRow builds the statements of write_only transactions one
// by one (compaction off): per transaction two UPDATEs and a DELETE by
// key, an INSERT. ns/op is per transaction.
func BenchmarkRowByRow(b *testing.B) {
	p := sbPlan(b)
	txns := sbChanges(p, 1000)
	s := benchStmts()
	ctx := context.Background()
	what := stmtRef{what: "insert", db: p.db, table: p.table}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for _, rc := range txns[i%len(txns)] {
			if err := p.addRows(ctx, s, rc, what); err != nil {
				b.Fatal(err)
			}
		}
		if len(s.buf) > 256<<10 {
			s.buf, s.expect = s.buf[:0], s.expect[:0]
		}
	}
}

// BenchmarkCompacted folds batches of 100 write_only transactions and
// builds their set statements (DELETE ... IN, UPDATE ... JOIN, multi-row
// INSERT), as the applier does by default. ns/op is per transaction.
func BenchmarkCompacted(b *testing.B) {
	p := sbPlan(b)
	if !p.foldable {
		b.Fatal("sbtest not foldable")
	}
	txns := sbChanges(p, 1000)
	s := benchStmts()
	ctx := context.Background()
	cb := newCompactor()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for _, rc := range txns[i%len(txns)] {
			if !cb.add(p, rc) {
				b.Fatal("not folded")
			}
		}
		if i%100 == 99 {
			if err := cb.flush(ctx, s); err != nil {
				b.Fatal(err)
			}
			s.buf, s.expect = s.buf[:0], s.expect[:0]
		}
	}
}
