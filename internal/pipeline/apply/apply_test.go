package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

func newExecutor(t *testing.T) (*Executor, checkpoint.Progress) {
	t.Helper()
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	prog := checkpoint.Progress{Schema: "_pitcrew", Table: "progress"}
	ex, err := Open(context.Background(), Config{Target: tgt.Endpoint(), Channel: "c", Flavor: gtid.MariaDB, Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	if err := prog.Ensure(context.Background(), ex.DB()); err != nil {
		t.Fatal(err)
	}
	return ex, prog
}

func ddl(g, schema, q string) *txn.Txn {
	return &txn.Txn{GTID: g, Events: []txn.Event{{Query: &txn.Query{Schema: schema, Text: q}}}}
}

// pitcrew died after a CREATE TABLE ran but before its GTID was recorded:
// the progress row still marks it pending. Re-applying it must succeed
// (the table is there), and must fail when nothing marked it pending.
func TestDDLReappliedAfterCrashBetweenRunAndRecord(t *testing.T) {
	ex, prog := newExecutor(t)
	ctx := context.Background()
	before := gtid.MustParse(gtid.MariaDB, "0-1-1")
	after := gtid.MustParse(gtid.MariaDB, "0-1-2")
	create := ddl("0-1-2", "app", "CREATE TABLE t (id INT PRIMARY KEY)")
	if _, err := ex.DB().Exec("CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	// The crash window: marked, run, not recorded.
	if err := prog.MarkDDL(ctx, ex.DB(), "c", gtid.MariaDB, before.String(), "0-1-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.DB().Exec("CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	// Without the pending mark the same statement is an error: never skipped silently.
	err := ex.ApplyDDL(ctx, create, before, after, false)
	if err == nil || !strings.Contains(err.Error(), "0-1-2") {
		t.Fatalf("re-applying an unmarked DDL: %v", err)
	}
	row, _, _ := prog.Load(ctx, ex.DB(), "c")
	if err := ex.ApplyDDL(ctx, create, before, after, row.PendingDDL == "0-1-2"); err != nil {
		t.Fatalf("re-applying the pending DDL: %v", err)
	}
	row, ok, err := prog.Load(ctx, ex.DB(), "c")
	if err != nil || !ok || row.GTIDSet != "0-1-2" || row.PendingDDL != "" {
		t.Fatalf("progress after DDL: %+v %v %v", row, ok, err)
	}
}

func rows(g string, kind txn.Kind, tbl *txn.Table, images ...[]any) *txn.Txn {
	return &txn.Txn{GTID: g, Events: []txn.Event{{Rows: &txn.RowChange{Table: tbl, Kind: kind, Rows: images}}}}
}

// A batch commits whole with its progress, or not at all.
func TestBatchIsAtomicWithProgress(t *testing.T) {
	ex, prog := newExecutor(t)
	ctx := context.Background()
	if _, err := ex.DB().Exec("CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.DB().Exec("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	tbl := &txn.Table{Schema: "app", Name: "t", Types: make([]byte, 2)}
	ok1 := rows("0-1-1", txn.Insert, tbl, []any{1, "a"}, []any{2, "b"})
	missing := rows("0-1-2", txn.Update, tbl, []any{3, "x"}, []any{3, "y"}) // row 3 does not exist
	err := ex.ApplyRows(ctx, []*txn.Txn{ok1, missing}, gtid.MustParse(gtid.MariaDB, "0-1-2"))
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "0-1-2") {
		t.Fatalf("want a divergence error naming the GTID, got %v", err)
	}
	var n int
	if err := ex.DB().QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the failed batch left %d rows (%v)", n, err)
	}
	if _, ok, _ := prog.Load(ctx, ex.DB(), "c"); ok {
		t.Fatal("the failed batch left a progress row")
	}
	if err := ex.ApplyRows(ctx, []*txn.Txn{ok1}, gtid.MustParse(gtid.MariaDB, "0-1-1")); err != nil {
		t.Fatal(err)
	}
	if row, ok, _ := prog.Load(ctx, ex.DB(), "c"); !ok || row.GTIDSet != "0-1-1" {
		t.Fatalf("progress %+v", row)
	}
}

// What cannot be replayed exactly is refused with the fix.
func TestRefusals(t *testing.T) {
	tbl := &txn.Table{Schema: "a", Name: "b"}
	cases := map[string]*txn.Txn{
		"gtid_mode=ON":             {GTID: ""},
		"binlog_format=ROW":        {GTID: "0-1-1", Events: []txn.Event{{Query: &txn.Query{Text: "INSERT INTO t VALUES (1)", Statement: true}}}},
		"binlog_row_value_options": {GTID: "0-1-1", Events: []txn.Event{{Rows: &txn.RowChange{Table: tbl, Kind: txn.Update, PartialJSON: true}}}},
	}
	for fix, tx := range cases {
		if err := refuse(tx); err == nil || !strings.Contains(err.Error(), fix) {
			t.Errorf("%s: %v", fix, err)
		}
	}
}

// A DDL whose tables were named by the light reader is checked against the
// target's catalogue once it ran: a misread name stops the channel, naming
// what is wrong and the skip, instead of routing later changes wrongly.
func TestDDLCheckedAgainstCatalogue(t *testing.T) {
	ex, _ := newExecutor(t)
	ctx := context.Background()
	before := gtid.MustParse(gtid.MariaDB, "0-1-1")
	if _, err := ex.DB().Exec("CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	good := ddl("0-1-2", "app", "CREATE TABLE t (id INT PRIMARY KEY) CHARSET cp932")
	good.Events[0].Query.Expect = []txn.Expect{{Schema: "app", Table: "t", Exists: true}, {Schema: "app", Exists: true}}
	if err := ex.ApplyDDL(ctx, good, before, gtid.MustParse(gtid.MariaDB, "0-1-2"), false); err != nil {
		t.Fatalf("a DDL that did what was read: %v", err)
	}
	bad := ddl("0-1-3", "app", "CREATE TABLE u (id INT PRIMARY KEY) CHARSET cp932")
	bad.Events[0].Query.Expect = []txn.Expect{{Schema: "app", Table: "misread", Exists: true}}
	err := ex.ApplyDDL(ctx, bad, gtid.MustParse(gtid.MariaDB, "0-1-2"), gtid.MustParse(gtid.MariaDB, "0-1-3"), false)
	if err == nil || !strings.Contains(err.Error(), "table app.misread is missing") || !strings.Contains(err.Error(), "pitcrew skip --gtid 0-1-3") {
		t.Fatalf("a DDL read wrong: %v", err)
	}
}
