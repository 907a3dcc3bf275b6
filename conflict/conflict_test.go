package conflict

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

func TestTopologyEcho(t *testing.T) {
	mesh, err := Mesh([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{{Name: "a-b", Source: "a", Target: "b", Echo: []string{"b-a"}}, {Name: "b-a", Source: "b", Target: "a", Echo: []string{"a-b"}}}
	if !reflect.DeepEqual(mesh, want) {
		t.Errorf("pair: %+v", mesh)
	}
	// A chain forwards: B->C must apply what A->B applied on B.
	chain, _ := Topology([]string{"a", "b", "c"}, [][2]string{{"a", "b"}, {"b", "c"}})
	for _, c := range chain {
		if len(c.Echo) != 0 {
			t.Errorf("chain channel %s drops %v", c.Name, c.Echo)
		}
	}
	// A three-node mesh: C gets A's changes from A directly, so B->C drops
	// what A->B applied on B.
	three, _ := Mesh([]string{"a", "b", "c"})
	for _, c := range three {
		if c.Name == "b-c" && !reflect.DeepEqual(c.Echo, []string{"a-b", "c-b"}) {
			t.Errorf("b-c echoes %v", c.Echo)
		}
	}
	if _, err := Mesh([]string{"a"}); err == nil {
		t.Error("one node is not bidirectional")
	}
	if _, err := Mesh([]string{"a", "B-2"}); err == nil {
		t.Error("node names are validated")
	}
}

func TestOffsets(t *testing.T) {
	plan := Plan([]string{"a", "b", "c"})
	if len(Problems(plan)) != 0 {
		t.Errorf("the plan itself is unsafe: %v", Problems(plan))
	}
	if got := plan[1].Statements(); got[0] != "SET GLOBAL auto_increment_increment = 3;" || got[1] != "SET GLOBAL auto_increment_offset = 2;" {
		t.Errorf("statements %v", got)
	}
	bad := []Offsets{{"a", 1, 1}, {"b", 1, 1}}
	if p := Problems(bad); len(p) != 2 || !strings.Contains(p[0], "smaller than the number of nodes") {
		t.Errorf("problems %v", p)
	}
	same := []Offsets{{"a", 2, 1}, {"b", 2, 1}}
	if p := Problems(same); len(p) != 1 || !strings.Contains(p[0], "same auto_increment_offset") {
		t.Errorf("problems %v", p)
	}
	for _, c := range []struct {
		counter int64
		o       Offsets
		want    int64
	}{{1, Offsets{"", 2, 1}, 1}, {1, Offsets{"", 2, 2}, 2}, {10, Offsets{"", 2, 1}, 11}, {10, Offsets{"", 2, 2}, 10}, {11, Offsets{"", 3, 2}, 11}} {
		if got := NextID(c.counter, c.o); got != c.want {
			t.Errorf("NextID(%d, %+v) = %d, want %d", c.counter, c.o, got, c.want)
		}
	}
}

func TestLoopFilter(t *testing.T) {
	l := NewEchoFilter("_pitcrew", "progress", []string{"b-a"})
	progress := &txn.Table{Schema: "_pitcrew", Name: "progress", Columns: []string{"channel", "flavor", "gtid_set"}}
	user := &txn.Table{Schema: "app", Name: "t"}
	mk := func(channel string) *txn.Txn {
		return &txn.Txn{GTID: "0-1-5", Events: []txn.Event{
			{Rows: &txn.RowChange{Table: user, Kind: txn.Insert, Rows: [][]any{{1}}}},
			{Rows: &txn.RowChange{Table: progress, Kind: txn.Update, Rows: [][]any{{channel, "mariadb", "x"}, {channel, "mariadb", "y"}}}},
		}}
	}
	echo := mk("b-a")
	if !l.Filter(echo) || len(echo.Events) != 0 || echo.GTID != "0-1-5" {
		t.Errorf("an echo must be emptied but keep its GTID: %+v", echo)
	}
	chain := mk("z-a") // applied by a channel this one does not mirror
	if l.Filter(chain) || len(chain.Events) != 1 || chain.Events[0].Rows.Table != user {
		t.Errorf("a forwarded transaction keeps its data, loses the bookkeeping: %+v", chain.Events)
	}
	ddl := &txn.Txn{GTID: "0-1-6", Events: []txn.Event{{Query: &txn.Query{Text: OriginMarker("b-a") + "ALTER TABLE t ADD c INT"}}}}
	if !l.Filter(ddl) {
		t.Error("a DDL marked by the reverse channel is an echo")
	}
	internal := &txn.Txn{GTID: "0-1-7", Events: []txn.Event{{Query: &txn.Query{Text: "/* pitcrew internal */ CREATE DATABASE IF NOT EXISTS `_pitcrew`"}}}}
	if l.Filter(internal) || len(internal.Events) != 0 {
		t.Error("pitcrew's own DDL is never applied elsewhere")
	}
}

// latest-wins must be symmetric: node A deciding B's change against A's
// row, and node B deciding A's change against B's row, keep the same row.
func TestLatestWinsConverges(t *testing.T) {
	rule := Rule{Policy: LatestWins, Column: "ts"}
	rowA := map[string]any{"id": int64(1), "v": "a", "ts": "2026-01-01 10:00:00.000002"}
	rowB := map[string]any{"id": int64(1), "v": "b", "ts": []byte("2026-01-01 10:00:00.000001")}
	tie := map[string]any{"id": int64(1), "v": "c", "ts": "2026-01-01 10:00:00.000002"}
	for _, pair := range [][2]map[string]any{{rowA, rowB}, {rowA, tie}} {
		x, y := pair[0], pair[1]
		atX := Decide(rule, Case{Kind: txn.Update, After: y, Current: x}) // y arrives where x is
		atY := Decide(rule, Case{Kind: txn.Update, After: x, Current: y})
		winX, winY := x, y
		if atX == ApplyIncoming {
			winX = y
		}
		if atY == ApplyIncoming {
			winY = x
		}
		if !reflect.DeepEqual(winX, winY) {
			t.Errorf("nodes keep different rows: %v vs %v", winX, winY)
		}
	}
	// Update against a row deleted on the other side: the delete wins on both.
	if Decide(rule, Case{Kind: txn.Update, After: rowA, Current: nil}) != KeepTarget {
		t.Error("an update must not resurrect a deleted row")
	}
	if Decide(rule, Case{Kind: txn.Delete, Before: rowB, Current: rowA}) != ApplyIncoming {
		t.Error("a delete beats an update")
	}
	if Decide(Rule{Policy: Park}, Case{}) != Parked || Decide(Rule{Policy: TargetWins}, Case{}) != KeepTarget || Decide(Rule{Policy: SourceWins}, Case{}) != ApplyIncoming {
		t.Error("fixed policies")
	}
}

func TestRulesValidate(t *testing.T) {
	bad := []Rules{
		{Default: "first-wins"},
		{Default: LatestWins},
		{Tables: map[string]Rule{"app.t": {Policy: LatestWins}}},
		{Tables: map[string]Rule{"t": {Policy: Park}}},
	}
	for _, r := range bad {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v validated", r)
		}
	}
	r := Rules{Default: Park, Tables: map[string]Rule{"app.t": {Policy: LatestWins, Column: "ts"}}}
	if err := r.Validate(); err != nil || r.For("app", "t").Column != "ts" || r.For("app", "u").Policy != Park {
		t.Errorf("valid rules: %v %+v", err, r)
	}
}

// A migration's fence locks the application's accounts on one side; the
// statement must not reach the other side, where the application is about
// to log in (error 4151). MySQL logs account statements rewritten, without
// the fence's marker comment, so they are recognised by what they say.
func TestLoopDropsFenceStatements(t *testing.T) {
	l := NewEchoFilter("_pitcrew", "progress", nil).Fence([]string{"shop_app", "o'brien"})
	for _, tc := range []struct {
		q    string
		drop bool
	}{
		{"ALTER USER 'shop_app'@'%' ACCOUNT LOCK", true},
		{"ALTER USER 'shop_app'@'10.0.0.%', `shop_app`@`localhost` ACCOUNT UNLOCK", true},
		{"/* pitcrew internal */ ALTER USER 'shop_app'@'%' ACCOUNT LOCK", true},
		{"alter user shop_app@'%' account lock", true},
		{"ALTER USER 'o''brien'@'%' ACCOUNT LOCK", true},
		{"ALTER USER 'shop_app'@'%', 'other'@'%' ACCOUNT LOCK", false},
		{"ALTER USER 'other'@'%' ACCOUNT LOCK", false},
		{"ALTER USER 'shop_app'@'%' IDENTIFIED BY 'x' ACCOUNT LOCK", false},
		{"ALTER USER 'shop_app'@'%' IDENTIFIED BY 'x'", false},
		{"GRANT SELECT ON shop.* TO 'shop_app'@'%'", false},
	} {
		tx := &txn.Txn{GTID: "0-1-1", Events: []txn.Event{{Query: &txn.Query{Text: tc.q}}}}
		l.Filter(tx)
		if dropped := len(tx.Events) == 0; dropped != tc.drop {
			t.Errorf("%q: dropped %v, want %v", tc.q, dropped, tc.drop)
		}
	}
	plain := NewEchoFilter("_pitcrew", "progress", nil)
	tx := &txn.Txn{GTID: "0-1-2", Events: []txn.Event{{Query: &txn.Query{Text: "ALTER USER 'shop_app'@'%' ACCOUNT LOCK"}}}}
	if plain.Filter(tx); len(tx.Events) != 1 {
		t.Error("a channel without fence users dropped an account lock")
	}
}
