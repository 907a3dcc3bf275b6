package stored

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
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

func TestMarkDefinition(t *testing.T) {
	m := "/* pitcrew origin=a-b */ "
	for _, c := range []struct{ text, want string }{
		{"CREATE DEFINER=`root`@`127.0.0.1` TRIGGER s.t AFTER INSERT ON t FOR EACH ROW SET @a = 1", "CREATE DEFINER=`root`@`127.0.0.1` TRIGGER /* pitcrew origin=a-b */ s.t AFTER"},
		{"/* x */ create or replace definer='a b'@'%' event e ON SCHEDULE EVERY 1 HOUR DO SELECT 1", "/* x */ create or replace definer='a b'@'%' event /* pitcrew origin=a-b */ e ON"},
		{"CREATE DEFINER=CURRENT_USER() TRIGGER x BEFORE DELETE ON t FOR EACH ROW SET @a = 1", "CREATE DEFINER=CURRENT_USER() TRIGGER /* pitcrew origin=a-b */ x"},
		{"CREATE TRIGGER x BEFORE DELETE ON t FOR EACH ROW SET @a = 1", "CREATE TRIGGER /* pitcrew origin=a-b */ x"},
		{"CREATE TABLE trigger_log (id INT)", "CREATE TABLE trigger_log (id INT)"},
		{"ALTER EVENT e DISABLE", "ALTER EVENT e DISABLE"},
	} {
		if got := MarkDefinition(c.text, m); !strings.HasPrefix(got, c.want) {
			t.Errorf("MarkDefinition(%q) = %q, want it to start %q", c.text, got, c.want)
		}
	}
}

func TestEventNames(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"CREATE EVENT ev ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t", "d.ev"},
		{"/* pitcrew origin=x */ CREATE DEFINER=`root`@`localhost` EVENT IF NOT EXISTS `s`.`e v` ON SCHEDULE EVERY 1 DAY DO SELECT 1", "s.e v"},
		{"ALTER EVENT `a``b` ON SCHEDULE EVERY 2 HOUR RENAME TO s2.ev2", "d.a`b s2.ev2"},
		{"create or replace event x.y on schedule every 1 hour do select 1", "x.y"},
		{"CREATE TABLE t (id INT)", ""},
	} {
		var got []string
		if m := eventRe.FindStringSubmatch(c.text); m != nil {
			names := []string{m[1]}
			if r := renameRe.FindStringSubmatch(c.text[len(m[0]):]); r != nil {
				names = append(names, r[1])
			}
			for _, n := range names {
				s, name := splitName("d", n)
				got = append(got, s+"."+name)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%q names %q, want %q", c.text, got, c.want)
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

func status(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := conn.Strings(context.Background(), db, "SELECT CONCAT(EVENT_SCHEMA, '.', EVENT_NAME, '=', STATUS) FROM information_schema.EVENTS ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, " ")
}

// The source's events are parked on the target (enabled ones, and every
// one a DDL from the stream names), the target's own are left alone;
// SwitchEvents moves the enabled ones to the new primary and back.
func TestEventsParkedAndSwitched(t *testing.T) {
	ctx := context.Background()
	a := testenv.MustDB(t, testenv.New(t, testenv.Options{ServerID: 1}))
	b := testenv.MustDB(t, testenv.New(t, testenv.Options{ServerID: 2}))
	for _, db := range []*sql.DB{a, b} {
		testenv.Exec(t, db, "CREATE DATABASE s", "CREATE TABLE s.t (id INT)",
			"CREATE EVENT s.on1 ON SCHEDULE EVERY 1 HOUR DO INSERT INTO s.t VALUES (1)",
			"CREATE EVENT s.off ON SCHEDULE EVERY 1 HOUR DISABLE DO DELETE FROM s.t")
	}
	testenv.Exec(t, b, "CREATE DATABASE own", "CREATE EVENT own.mine ON SCHEDULE EVERY 1 HOUR DO SELECT 1")
	schema := func(db string) (string, bool) { return db, db != "own" }
	ev, state, err := DisableEvents(ctx, b, a, schema, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := status(t, b), "own.mine=ENABLED s.off=DISABLED s.on1=SLAVESIDE_DISABLED"; got != want {
		t.Errorf("after start: %s, want %s", got, want)
	}
	if fmt.Sprint(state.Parked, state.Own) != "[s.off s.on1] [own.mine]" {
		t.Errorf("state %+v", state)
	}
	// From the stream: a new event, an ALTER with a rename.
	for _, q := range []string{
		"CREATE EVENT s.new1 ON SCHEDULE EVERY 1 DAY DO SELECT 1",
		"ALTER EVENT s.off ON SCHEDULE EVERY 2 HOUR RENAME TO s.off2",
	} {
		testenv.Exec(t, b, "USE s", q)
		if err := ev.AfterDDL(ctx, "s", q); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := status(t, b), "own.mine=ENABLED s.new1=SLAVESIDE_DISABLED s.off2=SLAVESIDE_DISABLED s.on1=SLAVESIDE_DISABLED"; got != want {
		t.Errorf("after the stream's DDL: %s, want %s", got, want)
	}
	// Cut-over to b: a's enabled events move; then back.
	testenv.Exec(t, a, "ALTER EVENT s.off RENAME TO s.off2", "CREATE EVENT s.new1 ON SCHEDULE EVERY 1 DAY DO SELECT 1")
	moved, err := SwitchEvents(ctx, b, a, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := status(t, a)+" | "+status(t, b), "s.new1=SLAVESIDE_DISABLED s.off2=DISABLED s.on1=SLAVESIDE_DISABLED | own.mine=ENABLED s.new1=ENABLED s.off2=SLAVESIDE_DISABLED s.on1=ENABLED"; got != want {
		t.Errorf("after the switch to b (moved %v):\n got  %s\n want %s", moved, got, want)
	}
	if _, err := SwitchEvents(ctx, a, b, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := status(t, a), "s.new1=ENABLED s.off2=DISABLED s.on1=ENABLED"; got != want {
		t.Errorf("after the switch back: %s, want %s", got, want)
	}
	if got, want := status(t, b), "own.mine=ENABLED s.new1=SLAVESIDE_DISABLED s.off2=SLAVESIDE_DISABLED s.on1=SLAVESIDE_DISABLED"; got != want {
		t.Errorf("b after the switch back: %s, want %s", got, want)
	}
}
