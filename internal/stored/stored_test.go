package stored

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/conn"
	"github.com/pitcrew/pitcrew/internal/testenv"
)

func TestGuardRoundTrip(t *testing.T) {
	for _, body := range []string{
		"INSERT INTO log VALUES (NEW.id)",
		"BEGIN\n  DECLARE x INT;\n  SET x = 1;\nEND",
		"SET NEW.v = 1 -- a comment on the last line",
		"",
	} {
		g := Guard(body)
		if got, ok := Unguard(g); !ok || got != body {
			t.Errorf("Unguard(Guard(%q)) = %q, %v", body, got, ok)
		}
		if _, ok := Unguard(body); ok {
			t.Errorf("%q reads as guarded", body)
		}
	}
}

// showTrigger is SHOW CREATE TRIGGER without its Created time, and the
// trigger's order.
func showTrigger(t *testing.T, db *sql.DB, schema, name string) string {
	t.Helper()
	var n, mode, stmt, cs, coll, dbColl string
	var created sql.NullString
	if err := db.QueryRow("SHOW CREATE TRIGGER "+conn.QuoteName(schema)+"."+conn.QuoteName(name)).Scan(&n, &mode, &stmt, &cs, &coll, &dbColl, &created); err != nil {
		t.Fatal(err)
	}
	var order int
	if err := db.QueryRow("SELECT ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?", schema, name).Scan(&order); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s | %s | %s | %s %s %s | order %d", n, mode, stmt, cs, coll, dbColl, order)
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The source's triggers on the target stay silent for pitcrew's sessions
// and fire for everyone else's; the target's own fire for both; guarding
// again changes nothing; restoring gives back every definition exactly
// (definer, sql_mode, character sets, body bytes, order).
func TestTriggersGuardedAndRestored(t *testing.T) {
	ctx := context.Background()
	srv := testenv.New(t, testenv.Options{ServerID: 1})
	db := testenv.MustDB(t, srv)
	db.SetMaxOpenConns(1) // the sessions below keep their settings
	testenv.Exec(t, db,
		"CREATE DATABASE s", "CREATE DATABASE own",
		"CREATE TABLE s.t (id INT PRIMARY KEY, v INT, note VARCHAR(20))",
		"CREATE TABLE s.log (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20))",
		"CREATE TABLE own.audit (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20))", "CREATE TABLE own.t (id INT)",
		"CREATE USER app@'%'", "GRANT ALL ON s.* TO app@'%'",
		"CREATE DEFINER=app@'%' TRIGGER s.t1 AFTER INSERT ON s.t FOR EACH ROW INSERT INTO s.log (what) VALUES ('t1') -- the last line is a comment",
		"CREATE TRIGGER s.t2 AFTER INSERT ON s.t FOR EACH ROW FOLLOWS t1 BEGIN\n  DECLARE x INT DEFAULT 2;\n  INSERT INTO s.log (what) VALUES (CONCAT('t2 ', x));\nEND",
		"CREATE TRIGGER s.t0 AFTER INSERT ON s.t FOR EACH ROW PRECEDES t1 INSERT INTO s.log (what) VALUES ('t0')",
		"SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'", "SET NAMES latin1",
		"CREATE TRIGGER s.tu BEFORE UPDATE ON s.t FOR EACH ROW SET NEW.v = NEW.v * 2, NEW.note = '\xe9\\'",
		"SET SESSION sql_mode = DEFAULT", "SET NAMES utf8mb4",
		"CREATE TRIGGER own.mine AFTER INSERT ON own.t FOR EACH ROW INSERT INTO own.audit (what) VALUES ('mine')",
	)
	names := []string{"t0", "t1", "t2", "tu"}
	before := map[string]string{}
	for _, n := range names {
		before[n] = showTrigger(t, db, "s", n)
	}
	mineBefore := showTrigger(t, db, "own", "mine")
	// Every trigger in schema own is the target's own (not replicated).
	origin := func(schema, table string) (string, string, bool) { return schema, table, schema != "own" }
	g, state, err := GuardTriggers(ctx, db, db, origin, "/* pitcrew origin=test */ ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "[s.t0 s.t1 s.t2 s.tu] [own.mine]"; fmt.Sprint(state.Guarded, " ", state.Own) != want {
		t.Fatalf("guarded %v, own %v; want %s", state.Guarded, state.Own, want)
	}
	for _, n := range names {
		if got := showTrigger(t, db, "s", n); !strings.Contains(got, "IF @pitcrew_apply IS NULL THEN") || !strings.HasSuffix(got, before[n][strings.LastIndex(before[n], "|"):]) {
			t.Errorf("%s guarded: %s (order must stay: %s)", n, got, before[n])
		}
	}
	// pitcrew's session: nothing fires but the target's own trigger.
	testenv.Exec(t, db, SessionMarker, "INSERT INTO s.t VALUES (1, 5, 'x')", "UPDATE s.t SET v = 6 WHERE id = 1", "INSERT INTO own.t VALUES (1)")
	if n := count(t, db, "SELECT COUNT(*) FROM s.log"); n != 0 {
		t.Errorf("pitcrew's insert fired %d guarded trigger rows", n)
	}
	if v := count(t, db, "SELECT v FROM s.t WHERE id = 1"); v != 6 {
		t.Errorf("pitcrew's update: v = %d, want 6 (the BEFORE trigger fired)", v)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM own.audit"); n != 1 {
		t.Errorf("the target's own trigger fired %d times for pitcrew's insert, want 1", n)
	}
	// The application's session: all of them fire, in their order.
	testenv.Exec(t, db, "SET @pitcrew_apply = NULL", "INSERT INTO s.t VALUES (2, 5, 'x')", "UPDATE s.t SET v = 6 WHERE id = 2")
	if got, _ := conn.Strings(ctx, db, "SELECT what FROM s.log ORDER BY n"); fmt.Sprint(got) != "[t0 t1 t2 2]" {
		t.Errorf("the application's insert logged %q, want t0, t1, t2 in order", got)
	}
	var note string
	if err := db.QueryRow("SELECT CONCAT(v, ' ', note) FROM s.t WHERE id = 2").Scan(&note); err != nil || note != `12 é\` {
		t.Errorf("the application's update: %q %v, want 12 é\\", note, err)
	}
	// A trigger created by the stream is guarded; the own one is not.
	text := "CREATE TRIGGER s.td AFTER DELETE ON s.t FOR EACH ROW INSERT INTO s.log (what) VALUES ('td')"
	testenv.Exec(t, db, text)
	if err := g.AfterDDL(ctx, text); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, db, SessionMarker, "DELETE FROM s.t WHERE id = 1")
	if n := count(t, db, "SELECT COUNT(*) FROM s.log WHERE what = 'td'"); n != 0 {
		t.Errorf("a trigger created from the stream fired for pitcrew's delete")
	}
	if got := showTrigger(t, db, "own", "mine"); got != mineBefore {
		t.Errorf("the target's own trigger changed:\n%s\n%s", got, mineBefore)
	}
	// Again (a restart): nothing new, the guarded ones kept.
	plan, _, err := Plan(ctx, db, db, origin)
	if err != nil || len(plan.Guard) != 0 || len(plan.Kept) != 5 {
		t.Errorf("a second start would guard %d and keep %d (%v)", len(plan.Guard), len(plan.Kept), err)
	}
	done, err := RestoreTriggers(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 5 {
		t.Errorf("restored %v", done)
	}
	for _, n := range names {
		if got := showTrigger(t, db, "s", n); got != before[n] {
			t.Errorf("%s restored:\n got  %s\n want %s", n, got, before[n])
		}
	}
	if left := count(t, db, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE ACTION_STATEMENT LIKE '%pitcrew_apply%'"); left != 0 {
		t.Errorf("%d triggers still guarded", left)
	}
}
