package objects

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
)

// sourceObjects is a database with one of every kind: a view on a view,
// a procedure and a function with another definer, two triggers of the
// same timing (their order matters), an enabled and a disabled event, a
// user with a password, database, table, column and routine grants and a
// default role, the role, an account of another database (not carried)
// and pitcrew's own (not carried), and a counter above the table's rows.
var sourceObjects = []string{
	"CREATE DATABASE shop",
	"CREATE DATABASE other",
	"CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, note VARCHAR(20))",
	"CREATE TABLE shop.log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(50))",
	"INSERT INTO shop.t (v) VALUES (1), (2), (3)",
	"DELETE FROM shop.t WHERE id = 3", // counter 4, highest id 2
	"CREATE USER 'app'@'%' IDENTIFIED BY 'app-secret'",
	"CREATE ROLE reader",
	"GRANT SELECT ON shop.* TO reader",
	"GRANT reader TO 'app'@'%'",
	"SET DEFAULT ROLE reader FOR 'app'@'%'",
	"GRANT SELECT, INSERT, UPDATE ON shop.* TO 'app'@'%'",
	"GRANT SELECT (msg) ON shop.log TO 'app'@'%'",
	"CREATE USER 'elsewhere'@'10.%' IDENTIFIED BY 'x'",
	"GRANT ALL ON other.* TO 'elsewhere'@'10.%'",
	"CREATE USER 'pitcrew'@'%' IDENTIFIED BY 'y'",
	"GRANT ALL ON shop.* TO 'pitcrew'@'%'",
	"CREATE DEFINER='app'@'%' VIEW shop.v AS SELECT id, v FROM shop.t WHERE v > 0",
	"CREATE VIEW shop.vv AS SELECT id FROM shop.v",
	"CREATE DEFINER='app'@'%' PROCEDURE shop.bump(IN x INT) MODIFIES SQL DATA UPDATE shop.t SET v = v + x",
	"CREATE FUNCTION shop.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
	"GRANT EXECUTE ON PROCEDURE shop.bump TO 'app'@'%'",
	"CREATE TRIGGER shop.t_a BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.note = 'a'",
	"CREATE TRIGGER shop.t_b BEFORE INSERT ON shop.t FOR EACH ROW FOLLOWS t_a SET NEW.note = CONCAT(NEW.note, 'b')",
	"CREATE TRIGGER shop.t_log AFTER UPDATE ON shop.t FOR EACH ROW INSERT INTO shop.log (msg) VALUES (CONCAT('t ', NEW.id))",
	"CREATE EVENT shop.purge ON SCHEDULE EVERY 1 HOUR DO DELETE FROM shop.log WHERE id < 0",
	"CREATE EVENT shop.off ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM shop.log",
	"CREATE PROCEDURE other.p() SELECT 1",
}

func testScope() Scope {
	return Scope{Schemas: []string{"shop"}, Ours: []string{"pitcrew"}}
}

// copyTables makes the source's tables on the target and copies their
// rows with explicit ids, as load does: the counter follows the rows only.
func copyTables(t *testing.T, src, tgt *sql.DB) {
	t.Helper()
	testenv.Exec(t, tgt, "CREATE DATABASE IF NOT EXISTS shop")
	for _, tb := range []string{"t", "log"} {
		var n, text string
		if err := src.QueryRow("SHOW CREATE TABLE shop."+tb).Scan(&n, &text); err != nil {
			t.Fatal(err)
		}
		text = strings.Replace(text, "CREATE TABLE ", "CREATE TABLE shop.", 1)
		if i := strings.Index(text, " AUTO_INCREMENT="); i > 0 {
			j := strings.IndexByte(text[i+1:], ' ')
			if j < 0 {
				text = text[:i]
			} else {
				text = text[:i] + text[i+1+j:]
			}
		}
		testenv.Exec(t, tgt, text)
	}
	testenv.Exec(t, tgt, "INSERT INTO shop.t (id, v, note) VALUES (1, 1, 'ab'), (2, 2, 'ab')")
}

func one(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// A target that has only the tables gets every object; Verify then finds
// nothing; a second Check finds everything there (a resumed load) and
// creates nothing; each kind of difference made on the target afterwards
// is found, named and given a fix.
func TestCarryAndVerifyEveryKind(t *testing.T) {
	ctx := context.Background()
	srcS := testenv.New(t, testenv.Options{ServerID: 1})
	tgtS := testenv.New(t, testenv.Options{ServerID: 2})
	src, tgt := testenv.MustDB(t, srcS), testenv.MustDB(t, tgtS)
	testenv.Exec(t, src, sourceObjects...)
	copyTables(t, src, tgt)

	sel, _ := ParseSelection("all")
	p, err := Check(ctx, src, tgt, testScope(), sel)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Create(ctx, src, tgt)
	if err != nil {
		t.Fatal(err)
	}
	// 2 accounts, 2 views, 2 routines, 3 triggers, 2 events, 1 counter (t; log is at 1 on both).
	if n != 12 {
		t.Errorf("created %d, want 12", n)
	}
	for q, want := range map[string]string{
		"SELECT GROUP_CONCAT(TABLE_NAME ORDER BY 1) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop'":                                                 "v,vv",
		"SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'v'":                                                                                  "app@%",
		"SELECT GROUP_CONCAT(CONCAT(ROUTINE_NAME, ':', DEFINER) ORDER BY 1) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop'":                    "bump:app@%,twice:" + one(t, src, "SELECT CURRENT_USER()"),
		"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'other'":                                                                      "0",
		"SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY ACTION_ORDER) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_TABLE = 't' AND ACTION_TIMING = 'BEFORE'": "t_a,t_b",
		"SELECT GROUP_CONCAT(CONCAT(EVENT_NAME, ':', STATUS) ORDER BY 1) FROM information_schema.EVENTS":                                                       "off:DISABLED,purge:SLAVESIDE_DISABLED",
		"SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 't'":                                                "4",
		"SELECT COUNT(*) FROM mysql.user WHERE User IN ('elsewhere', 'pitcrew')":                                                                               "0",
		"SELECT default_role FROM mysql.user WHERE User = 'app'":                                                                                               "reader",
	} {
		if got := one(t, tgt, q); got != want {
			t.Errorf("%s\n got %q, want %q", q, got, want)
		}
	}
	if a, b := one(t, src, "SHOW CREATE USER 'app'@'%'"), one(t, tgt, "SHOW CREATE USER 'app'@'%'"); a != b || !strings.Contains(a, "PASSWORD '*") {
		t.Errorf("the account's hash did not travel: source %q, target %q", a, b)
	}
	// The triggers work on the target (in their order).
	testenv.Exec(t, tgt, "INSERT INTO shop.t (v) VALUES (9)")
	if got := one(t, tgt, "SELECT CONCAT(id, note) FROM shop.t WHERE v = 9"); got != "4ab" {
		t.Errorf("new row on the target: %q, want 4ab (next id after the source's counter; triggers a then b)", got)
	}
	testenv.Exec(t, tgt, "DELETE FROM shop.t WHERE v = 9", "ALTER TABLE shop.t AUTO_INCREMENT = 4")

	// While pitcrew applies, the target's triggers carry its guard: no difference.
	testenv.Exec(t, tgt, "CREATE OR REPLACE TRIGGER shop.t_log AFTER UPDATE ON shop.t FOR EACH ROW "+stored.Guard("INSERT INTO shop.log (msg) VALUES (CONCAT('t ', NEW.id))"))
	sel[Schemas] = true
	rep, err := Verify(ctx, src, tgt, testScope(), sel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal {
		t.Fatalf("differences after the carry: %v", rep.Differences)
	}
	if rep.Compared[Views] != 2 || rep.Compared[Triggers] != 3 || rep.Compared[Users] != 2 || rep.Compared[Schemas] != 2 {
		t.Errorf("compared %v", rep.Compared)
	}

	// Resumed: everything is there, nothing is created.
	delete(sel, Schemas)
	p, err = Check(ctx, src, tgt, testScope(), sel)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 0 || len(p.Skipped) != 11 {
		t.Errorf("second check: %d to create, skipped %v", p.Len(), p.Skipped)
	}

	// Every kind of difference.
	testenv.Exec(t, tgt,
		"DROP VIEW shop.vv",
		"DROP PROCEDURE shop.bump",
		"CREATE DEFINER='app'@'%' PROCEDURE shop.bump(IN x INT) MODIFIES SQL DATA UPDATE shop.t SET v = v - x",
		"DROP TRIGGER shop.t_log",
		"CREATE TRIGGER shop.mine AFTER DELETE ON shop.t FOR EACH ROW SET @x = 1",
		"ALTER EVENT shop.purge ENABLE",
		"ALTER USER 'app'@'%' IDENTIFIED BY 'changed'",
		"REVOKE UPDATE ON shop.* FROM 'app'@'%'",
		"GRANT DELETE ON shop.log TO reader",
		"ALTER TABLE shop.t MODIFY v BIGINT, ADD INDEX by_note (note), COMMENT 'moved'",
		"ALTER DATABASE shop CHARACTER SET latin1",
	)
	testenv.Exec(t, src, "INSERT INTO shop.log (msg) VALUES ('x')", "DELETE FROM shop.log") // source counter 2, target 1
	sel[Schemas] = true
	rep, err = Verify(ctx, src, tgt, testScope(), sel, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ object, what string }{
		{"view shop.vv", "missing on the target"},
		{"procedure shop.bump", "definition differs"},
		{"trigger shop.t_log", "missing on the target"},
		{"trigger shop.mine", "only on the target"},
		{"event shop.purge", "enabled on both sides"},
		{"user `app`@`%`", "account differs"},
		{"user `app`@`%`", "grants missing on the target: GRANT SELECT, INSERT, UPDATE ON `shop`.* TO `app`@`%`"},
		{"user `app`@`%`", "grants only on the target: GRANT SELECT, INSERT ON `shop`.* TO `app`@`%`"},
		{"role `reader`", "grants only on the target: GRANT DELETE ON `shop`.`log` TO `reader`"},
		{"table shop.log", "AUTO_INCREMENT 1 on the target"},
		{"table shop.t", "column v: int(11) NULL DEFAULT NULL on the source, bigint(20) NULL DEFAULT NULL on the target"},
		{"table shop.t", "index by_note BTREE (note) only on the target"},
		{"table shop.t", "COMMENT= 'moved'"},
		{"database shop", "default character set utf8mb4"},
	}
	for _, w := range want {
		found := false
		for _, d := range rep.Differences {
			if d.Object == w.object && strings.Contains(d.What, w.what) && d.Fix != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no difference %s: %s", w.object, w.what)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, d := range rep.Differences {
			t.Logf("%s", d)
		}
	}
	for _, d := range rep.Differences {
		if strings.Contains(d.String(), "changed") || strings.Contains(d.String(), "app-secret") {
			t.Errorf("a password in the report: %s", d)
		}
	}

	// Both-writable offsets: the same offset on both sides is a difference.
	testenv.Exec(t, src, "SET GLOBAL auto_increment_increment = 2", "SET GLOBAL auto_increment_offset = 1")
	testenv.Exec(t, tgt, "SET GLOBAL auto_increment_increment = 2", "SET GLOBAL auto_increment_offset = 1")
	rep, err = Verify(ctx, src, tgt, testScope(), Selection{Counters: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) == 0 || !strings.Contains(rep.Differences[0].What, "same auto_increment_offset") {
		t.Errorf("same offsets on both sides not reported: %v", rep.Differences)
	}
	// Offsets apart: the target's next ids (on its own offset) are none the
	// source handed out, though its counters are the rows' (shop.log: 1
	// against the source's 2).
	testenv.Exec(t, tgt, "SET GLOBAL auto_increment_offset = 2")
	rep, err = Verify(ctx, src, tgt, testScope(), Selection{Counters: true}, nil)
	if err != nil || !rep.Equal {
		t.Errorf("offsets apart: %v %v", err, rep.Differences)
	}
}

// What the target cannot take is refused before anything is written, with
// the fix: a function binary logging refuses without
// log_bin_trust_function_creators, a definer that exists nowhere, and a
// definer other than the loading user without SUPER / SET USER.
func TestCheckRefuses(t *testing.T) {
	ctx := context.Background()
	srcS := testenv.New(t, testenv.Options{ServerID: 1})
	tgtS := testenv.New(t, testenv.Options{ServerID: 2})
	src, tgt := testenv.MustDB(t, srcS), testenv.MustDB(t, tgtS)
	testenv.Exec(t, src,
		"SET GLOBAL log_bin_trust_function_creators = 1",
		"CREATE DATABASE shop",
		"CREATE TABLE shop.t (id INT PRIMARY KEY)",
		"CREATE FUNCTION shop.now_id() RETURNS INT RETURN UNIX_TIMESTAMP()",
		"CREATE DEFINER='ghost'@'%' VIEW shop.v AS SELECT id FROM shop.t")
	sel, _ := ParseSelection("all")
	before := one(t, tgt, "SELECT COUNT(*) FROM information_schema.SCHEMATA")
	_, err := Check(ctx, src, tgt, testScope(), sel)
	if err == nil {
		t.Fatal("no refusal")
	}
	for _, w := range []string{"function shop.now_id", "log_bin_trust_function_creators = 1", "DEFINER=`ghost`@`%`", "does not exist on the source either", "nothing was written"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal lacks %q: %v", w, err)
		}
	}
	if after := one(t, tgt, "SELECT COUNT(*) FROM information_schema.SCHEMATA"); after != before {
		t.Errorf("the refusal wrote to the target")
	}
	// Tables only: nothing to refuse.
	if _, err := Check(ctx, src, tgt, testScope(), Selection{Counters: true}); err != nil {
		t.Errorf("counters only: %v", err)
	}

	// A loading user without SUPER / SET USER cannot create for another definer.
	testenv.Exec(t, tgt,
		"SET GLOBAL log_bin_trust_function_creators = 1",
		"CREATE USER 'ghost'@'%'",
		"CREATE USER 'loader'@'127.0.0.1' IDENTIFIED BY 'pw'",
		"GRANT ALL ON shop.* TO 'loader'@'127.0.0.1'")
	e := tgtS.Endpoint()
	e.User, e.Password = "loader", "pw"
	ldb, err := conn.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	_, err = Check(ctx, src, ldb, testScope(), Selection{Views: true})
	if err == nil || !strings.Contains(err.Error(), "needs SUPER or SET USER") {
		t.Errorf("definer without SET USER: %v", err)
	}
}
