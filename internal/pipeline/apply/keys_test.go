package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// meets is the dispatcher's test: does a new batch with keys b meet an
// applying batch holding a's keys (or the other way round)?
func meets(a, b *Keys) bool {
	for k := range b.Check {
		if _, ok := a.Reg[k]; ok {
			return true
		}
	}
	for k := range a.Check {
		if _, ok := b.Reg[k]; ok {
			return true
		}
	}
	return false
}

// Every pair of values the target's unique index takes as equal must give
// keys that meet, whatever the collation: the server itself is the oracle
// (a = b under the column's collation). Values it holds distinct should
// mostly not meet; how many do is logged (false conflicts cost only
// parallelism).
func TestConflictKeysMeetWhereTheIndexCollides(t *testing.T) {
	ex, _ := newExecutor(t)
	ctx := context.Background()
	cols := map[string]string{
		"ci":     "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
		"uni":    "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci",
		"bin":    "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"latin":  "VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_german2_ci",
		"vbin":   "VARBINARY(20)",
		"prefix": "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
	}
	for _, q := range []string{"CREATE DATABASE k",
		"CREATE TABLE k.t (id INT PRIMARY KEY, ci " + cols["ci"] + ", uni " + cols["uni"] + ", bin " + cols["bin"] +
			", latin " + cols["latin"] + ", vbin " + cols["vbin"] + ", prefix " + cols["prefix"] +
			", UNIQUE (ci), UNIQUE (uni), UNIQUE (bin), UNIQUE (latin), UNIQUE (vbin), UNIQUE (prefix(3)))"} {
		if _, err := ex.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	order := []string{"id", "ci", "uni", "bin", "latin", "vbin", "prefix"}
	table := &txn.Table{Schema: "k", Name: "t", Columns: order, Types: make([]byte, len(order))}
	values := []string{"a", "A", "a ", "a  ", "b", "ab", "aB", "ss", "ß", "SS", "á", "Á", "ae", "ä", "a\x01", "abc", "abcd", "ABCx", "", " "}
	keysOf := func(col int, v any) *Keys {
		row := make([]any, len(order))
		row[0] = int32(1000) // a different id each time would not change the test: only col's index is compared
		row[col] = v
		ks := NewKeys()
		tx := &txn.Txn{GTID: "0-1-1", Events: []txn.Event{{Rows: &txn.RowChange{Table: table, Kind: txn.Insert, Rows: [][]any{row}}}}}
		if err := ex.Keys(ctx, tx, ks, false); err != nil {
			t.Fatal(err)
		}
		if ks.Barrier != "" {
			t.Fatalf("barrier: %s", ks.Barrier)
		}
		// Drop the primary key's own key: every image here has id 1000.
		pk := NewKeys()
		row2 := make([]any, len(order))
		row2[0] = int32(1000)
		tx.Events[0].Rows.Rows = [][]any{row2}
		if err := ex.Keys(ctx, tx, pk, false); err != nil {
			t.Fatal(err)
		}
		for k := range pk.Reg {
			delete(ks.Reg, k)
		}
		for k := range pk.Check {
			delete(ks.Check, k)
		}
		return ks
	}
	for col := 1; col < len(order); col++ {
		name := order[col]
		equal, falseMeets, pairs := 0, 0, 0
		for i, a := range values {
			for _, b := range values[i+1:] {
				expr := "SELECT CAST(? AS CHAR CHARACTER SET utf8mb4) COLLATE %s = CAST(? AS CHAR CHARACTER SET utf8mb4) COLLATE %s"
				var same bool
				var err error
				switch name {
				case "vbin":
					err = ex.DB().QueryRow("SELECT CAST(? AS BINARY) = CAST(? AS BINARY)", a, b).Scan(&same)
				case "prefix":
					err = ex.DB().QueryRow("SELECT LEFT(CAST(? AS CHAR CHARACTER SET utf8mb4), 3) COLLATE utf8mb4_general_ci = LEFT(CAST(? AS CHAR CHARACTER SET utf8mb4), 3) COLLATE utf8mb4_general_ci", a, b).Scan(&same)
				case "latin":
					err = ex.DB().QueryRow("SELECT CONVERT(? USING latin1) COLLATE latin1_german2_ci = CONVERT(? USING latin1) COLLATE latin1_german2_ci", a, b).Scan(&same)
				default:
					coll := map[string]string{"ci": "utf8mb4_general_ci", "uni": "utf8mb4_unicode_520_ci", "bin": "utf8mb4_bin"}[name]
					err = ex.DB().QueryRow(strings.ReplaceAll(expr, "%s", coll), a, b).Scan(&same)
				}
				if err != nil {
					t.Fatal(err)
				}
				pairs++
				m := meets(keysOf(col, a), keysOf(col, b))
				switch {
				case same && !m:
					t.Errorf("%s: %q and %q are equal in the index, but their keys do not meet", name, a, b)
				case same:
					equal++
				case m:
					falseMeets++
				}
			}
		}
		t.Logf("%s: %d pairs, %d equal in the index (all meet), %d more meet", name, pairs, equal, falseMeets)
		if equal == 0 && name != "vbin" {
			t.Errorf("%s: no pair was equal: the oracle did not test folding", name)
		}
	}
	// NULLs never collide; a NULL in a unique key keys nothing.
	if meets(keysOf(1, nil), keysOf(1, nil)) {
		t.Error("two NULLs in a unique key meet")
	}
}
