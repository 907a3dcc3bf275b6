package apply

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

func TestPlan(t *testing.T) {
	def := &schema.Table{Schema: "db", Name: "t", Columns: []schema.Column{
		{Name: "id"}, {Name: "name"}, {Name: "full", Generated: true}, {Name: "v"},
	}, PK: []int{0}}
	cases := []struct {
		name       string
		bt         *txn.Table
		wantInsert string
		wantUpdate string
		wantDelete string
		updateArgs []any
		err        string
	}{
		{
			name:       "positional columns, generated column skipped, primary key",
			bt:         &txn.Table{Schema: "db", Name: "t", Types: make([]byte, 4)},
			wantInsert: "INSERT INTO `db`.`t` (`id`,`name`,`v`) VALUES (?,?,?),(?,?,?)",
			wantUpdate: "UPDATE `db`.`t` SET `id` = ?,`name` = ?,`v` = ? WHERE `id` = ?",
			wantDelete: "DELETE FROM `db`.`t` WHERE `id` = ?",
			updateArgs: []any{1, "b", 9, 1},
		},
		{
			name:       "logged names in another order map by name",
			bt:         &txn.Table{Schema: "db", Name: "t", Types: make([]byte, 4), Columns: []string{"v", "ID", "name", "full"}},
			wantInsert: "INSERT INTO `db`.`t` (`v`,`id`,`name`) VALUES (?,?,?),(?,?,?)",
			wantUpdate: "UPDATE `db`.`t` SET `v` = ?,`id` = ?,`name` = ? WHERE `id` = ?",
			wantDelete: "DELETE FROM `db`.`t` WHERE `id` = ?",
			updateArgs: []any{1, "b", "y", "a"}, // image order: v, id, name, full
		},
		{
			name: "column count mismatch without names",
			bt:   &txn.Table{Schema: "db", Name: "t", Types: make([]byte, 3)},
			err:  "binlog_row_metadata=FULL",
		},
		{
			name: "logged column missing on target",
			bt:   &txn.Table{Schema: "db", Name: "t", Types: make([]byte, 1), Columns: []string{"nope"}},
			err:  "column nope",
		},
	}
	before, after := []any{1, "a", "x", 8}, []any{1, "b", "y", 9}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := newPlan(c.bt, def)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one mentioning %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stmts, _ := p.inserts([][]any{before, after})
			if len(stmts) != 1 || stmts[0] != c.wantInsert {
				t.Errorf("insert %q", stmts)
			}
			q, args := p.update(before, after)
			if q != c.wantUpdate {
				t.Errorf("update %q", q)
			}
			if !reflect.DeepEqual(args, c.updateArgs) {
				t.Errorf("update args %v, want %v", args, c.updateArgs)
			}
			if q, _ := p.delete(before); q != c.wantDelete {
				t.Errorf("delete %q", q)
			}
		})
	}
}

func TestPlanWithoutPrimaryKeyMatchesWholeImage(t *testing.T) {
	def := &schema.Table{Schema: "db", Name: "log", Columns: []schema.Column{{Name: "a"}, {Name: "b"}}}
	p, err := newPlan(&txn.Table{Types: make([]byte, 2)}, def)
	if err != nil {
		t.Fatal(err)
	}
	q, args := p.delete([]any{1, nil})
	if q != "DELETE FROM `db`.`log` WHERE `a` <=> ? AND `b` <=> ? LIMIT 1" || len(args) != 2 {
		t.Errorf("delete %q %v", q, args)
	}
}

func TestInsertsSplitIntoChunks(t *testing.T) {
	def := &schema.Table{Schema: "d", Name: "t", Columns: []schema.Column{{Name: "a"}, {Name: "b"}}, PK: []int{0}}
	p, _ := newPlan(&txn.Table{Types: make([]byte, 2)}, def)
	rows := make([][]any, maxParams) // 2 params per row: two statements
	for i := range rows {
		rows[i] = []any{i, i}
	}
	stmts, args := p.inserts(rows)
	if len(stmts) != 2 || len(args[0])+len(args[1]) != 2*maxParams {
		t.Fatalf("%d statements, %d+%d args", len(stmts), len(args[0]), len(args[1]))
	}
}

// A BINARY(16) UUID key ending in 00 is logged as 15 bytes; the WHERE of
// its UPDATE must carry the 16 the target stores, or it matches nothing.
// Other binary columns (VARBINARY, a BINARY already full) stay as logged.
func TestBinaryValuesPaddedToColumnLength(t *testing.T) {
	def := &schema.Table{Schema: "d", Name: "u", Columns: []schema.Column{
		{Name: "id", Pad: 16}, {Name: "vb"}, {Name: "b4", Pad: 4}, {Name: "n", Integer: true},
	}, PK: []int{0}}
	p, err := newPlan(&txn.Table{Types: make([]byte, 4)}, def)
	if err != nil {
		t.Fatal(err)
	}
	key := "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
	before := []any{key, []byte("ab"), []byte{1, 2, 3, 4}, 1}
	after := []any{key, []byte("ab"), []byte{7}, 2}
	rows := [][]any{before, after, {nil, nil, nil, 3}}
	p.padBinary(rows)
	p.padBinary(rows) // a retried batch pads again: no change
	_, args := p.update(before, after)
	want := []any{key + "\x00", []byte("ab"), []byte{7, 0, 0, 0}, 2, key + "\x00"}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("update args %q, want %q", args, want)
	}
	if rows[2][0] != nil || rows[2][2] != nil {
		t.Errorf("NULL padded: %v", rows[2])
	}
	// A keyless table's before image: every column in the WHERE, padded.
	nk := &schema.Table{Schema: "d", Name: "nk", Columns: []schema.Column{{Name: "b", Pad: 4}, {Name: "n"}}}
	p, _ = newPlan(&txn.Table{Types: make([]byte, 2)}, nk)
	img := [][]any{{"\x05", 1}}
	p.padBinary(img)
	if _, args := p.delete(img[0]); !reflect.DeepEqual(args, []any{"\x05\x00\x00\x00", 1}) {
		t.Errorf("keyless delete args %q", args)
	}
}

// MariaDB logs a long unique key's hidden DB_ROW_HASH_n column after the
// real ones; information_schema never shows it, so the target "lacks" it.
// It is never written nor keyed on, with names logged or without them.
func TestLongUniqueHashColumnsSkipped(t *testing.T) {
	def := &schema.Table{Schema: "d", Name: "lu", Columns: []schema.Column{{Name: "id", Integer: true}, {Name: "b"}, {Name: "t"}},
		PK: []int{0}, Uniques: []schema.Unique{{Name: "PRIMARY", Cols: []int{0}, Prefix: []int{0}}, {Name: "b", Cols: []int{1}, Prefix: []int{0}, Hash: true}}, Hidden: 1}
	for _, bt := range []*txn.Table{
		{Schema: "d", Name: "lu", Types: make([]byte, 4), Columns: []string{"id", "b", "t", "DB_ROW_HASH_1"}},
		{Schema: "d", Name: "lu", Types: make([]byte, 4)},
	} {
		p, err := newPlan(bt, def)
		if err != nil {
			t.Fatal(err)
		}
		row := []any{1, []byte("x"), "y", uint64(857)}
		stmts, args := p.inserts([][]any{row})
		if stmts[0] != "INSERT INTO `d`.`lu` (`id`,`b`,`t`) VALUES (?,?,?)" || len(args[0]) != 3 {
			t.Errorf("insert %q %v", stmts, args)
		}
		if q, _ := p.update(row, row); q != "UPDATE `d`.`lu` SET `id` = ?,`b` = ?,`t` = ? WHERE `id` = ?" {
			t.Errorf("update %q", q)
		}
	}
	// A keyless table: the before image matched on the real columns only.
	lk := &schema.Table{Schema: "d", Name: "lk", Columns: []schema.Column{{Name: "b"}, {Name: "n"}},
		Uniques: []schema.Unique{{Name: "b", Cols: []int{0}, Prefix: []int{0}, Hash: true}}, Hidden: 1}
	p, err := newPlan(&txn.Table{Types: make([]byte, 3), Columns: []string{"b", "n", "DB_ROW_HASH_1"}}, lk)
	if err != nil {
		t.Fatal(err)
	}
	if q, args := p.delete([]any{[]byte("q"), 1, uint64(820)}); q != "DELETE FROM `d`.`lk` WHERE `b` <=> ? AND `n` <=> ? LIMIT 1" || len(args) != 2 {
		t.Errorf("delete %q %v", q, args)
	}
	// Other missing names still stop, and so does a count that the
	// hidden columns do not explain.
	if _, err := newPlan(&txn.Table{Types: make([]byte, 3), Columns: []string{"b", "n", "DB_ROW_HASH_x"}}, lk); err == nil {
		t.Error("DB_ROW_HASH_x accepted")
	}
	if _, err := newPlan(&txn.Table{Types: make([]byte, 4)}, lk); err == nil {
		t.Error("two extra columns accepted for one long unique key")
	}
}
