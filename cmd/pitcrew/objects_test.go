package main

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// assertAnswers checks what each query answers on db.
func assertAnswers(t *testing.T, db *sql.DB, want map[string]string) {
	t.Helper()
	for q, w := range want {
		if got := scalar(t, db, q); got != w {
			t.Errorf("%s: %q, want %q", q, got, w)
		}
	}
}

func scalar(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// pitcrew load into an empty server carries every kind of object beside
// the tables: first refused, with nothing written, while a view's definer
// exists nowhere; then carried, and verify --objects finds the two servers
// equal. The stream then carries the same kinds as DDL (CREATE USER with
// a password, GRANT, CREATE VIEW, PROCEDURE, FUNCTION, TRIGGER, EVENT),
// and verify --objects still finds them equal; a counter the stream cannot
// carry (ids handed out, then deleted) is found, and --repair raises it.
func TestLoadObjectsIntoEmptyServerAndStream(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, qty INT, tag VARCHAR(10))",
		"INSERT INTO shop.orders (qty) VALUES (1), (2), (3), (4)",
		"DELETE FROM shop.orders WHERE id > 2",
		"CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
		"CREATE ROLE clerk",
		"GRANT SELECT, INSERT ON shop.* TO clerk",
		"GRANT clerk TO 'app'@'%'",
		"GRANT UPDATE (qty) ON shop.orders TO 'app'@'%'",
		"CREATE DEFINER='app'@'%' VIEW shop.big AS SELECT id, qty FROM shop.orders WHERE qty > 1",
		"CREATE DEFINER='ghost'@'%' VIEW shop.orphan AS SELECT id FROM shop.orders",
		"CREATE DEFINER='app'@'%' PROCEDURE shop.add_order(IN q INT) INSERT INTO shop.orders (qty) VALUES (q)",
		"CREATE TRIGGER shop.tag BEFORE INSERT ON shop.orders FOR EACH ROW SET NEW.tag = 'new'",
		"CREATE EVENT shop.tidy ON SCHEDULE EVERY 1 HOUR DO DELETE FROM shop.orders WHERE qty < 0",
	)
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())

	if code, _, stderr := runCLI("load", "--config", cfg, "--objects", "views,bogus"); code != exitUsage || !strings.Contains(stderr, `unknown kind "bogus"`) {
		t.Errorf("--objects bogus: exit %d, %s", code, stderr)
	}
	code, _, stderr := runCLI("load", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "view shop.orphan has DEFINER=`ghost`@`%`") || !strings.Contains(stderr, "nothing was written") {
		t.Fatalf("load with an orphan definer: exit %d, %s", code, stderr)
	}
	if n := scalar(t, tgtDB, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"); n != "0" {
		t.Fatalf("the refused load created shop on the target")
	}
	testenv.Exec(t, srcDB, "DROP VIEW shop.orphan")
	code, out, stderr := runCLI("load", "--config", cfg)
	if code != 0 {
		t.Fatalf("load: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "and 6 objects") { // user, role, view, procedure, trigger, event (the counter came with CREATE TABLE)
		t.Errorf("load's report: %s", out)
	}
	assertAnswers(t, tgtDB, map[string]string{
		"SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_NAME = 'tidy'":                                          "SLAVESIDE_DISABLED",
		"SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_NAME = 'add_order'":                                "app@%",
		"SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_NAME = 'orders'":                                "5",
		"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'tag'":                                     "1",
		"SELECT COUNT(*) FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = \"'app'@'%'\" AND COLUMN_NAME = 'qty'": "1",
	})
	if code, out, stderr := runCLI("verify", "--objects", "--config", cfg); code != 0 || !strings.Contains(out, "objects of source and target are equal") {
		t.Fatalf("verify --objects after load: exit %d\n%s%s", code, out, stderr)
	}

	// The stream: each kind as DDL.
	testenv.Exec(t, srcDB,
		"CREATE USER 'late'@'%' IDENTIFIED BY 'late-secret'",
		"GRANT SELECT ON shop.* TO 'late'@'%'",
		"GRANT EXECUTE ON PROCEDURE shop.add_order TO 'late'@'%'",
		"CREATE DEFINER='late'@'%' VIEW shop.small AS SELECT id FROM shop.orders WHERE qty <= 1",
		"CREATE DEFINER='late'@'%' PROCEDURE shop.count_orders() SELECT COUNT(*) FROM shop.orders",
		"CREATE FUNCTION shop.double_qty(q INT) RETURNS INT DETERMINISTIC RETURN q * 2",
		"CREATE EVENT shop.weekly ON SCHEDULE EVERY 1 WEEK DISABLE DO DELETE FROM shop.orders WHERE qty < 0",
		"ALTER USER 'app'@'%' IDENTIFIED BY 'app-pw2'",
		"REVOKE UPDATE (qty) ON shop.orders FROM 'app'@'%'",
		"INSERT INTO shop.orders (qty) VALUES (7)",
	)
	// Applied a second later, the event still starts when it was created
	// on the source (its STARTS is the statement's time, as on a native
	// replica).
	time.Sleep(1100 * time.Millisecond)
	if code, _, stderr := runCLI("catchup", "--config", cfg, "--timeout", "1m"); code != 0 {
		t.Fatalf("catchup: %s", stderr)
	}
	if code, out, stderr := runCLI("verify", "--objects", "--config", cfg); code != 0 {
		t.Fatalf("verify --objects after the stream: exit %d\n%s%s", code, out, stderr)
	}
	if a, b := scalar(t, srcDB, "SHOW CREATE USER 'late'@'%'"), scalar(t, tgtDB, "SHOW CREATE USER 'late'@'%'"); a != b {
		t.Errorf("CREATE USER through the stream: source %q, target %q", a, b)
	}

	// A counter only the source moved: an insert rolled back hands out an
	// id and logs nothing.
	tx, err := srcDB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO shop.orders (qty) VALUES (8)"); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()
	if code, _, stderr := runCLI("catchup", "--config", cfg, "--timeout", "1m"); code != 0 {
		t.Fatalf("catchup: %s", stderr)
	}
	code, out, _ = runCLI("verify", "--objects", "--config", cfg)
	if code != 1 || !strings.Contains(out, "table shop.orders: AUTO_INCREMENT 6 on the target") || !strings.Contains(out, "ALTER TABLE `shop`.`orders` AUTO_INCREMENT = 7") {
		t.Errorf("verify --objects with a counter behind: exit %d\n%s", code, out)
	}
	t.Logf("verify --objects, a counter behind:\n%s", out)
	if code, out, stderr := runCLI("verify", "--objects", "--repair", "--config", cfg); code != 0 || !strings.Contains(out, "repaired: 1") {
		t.Errorf("verify --objects --repair: exit %d\n%s%s", code, out, stderr)
	}
	for _, s := range []string{out, stderr} {
		if strings.Contains(s, "secret") || strings.Contains(s, "app-pw") {
			t.Errorf("a password in the output: %s", s)
		}
	}
}

// With routing, the stream filters routines, events, triggers and grants
// by their database (and table) as it filters tables: a procedure, event
// or grant of a database that is not replicated is not applied (it used
// to be, and stopped the channel on the missing database). A statement
// that fails on the target names it without its password.
func TestStreamObjectsFollowRoutingAndHidePasswords(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint(), "route:\n  include: [shop]")
	testenv.Exec(t, srcDB,
		"CREATE DATABASE shop", "CREATE DATABASE other",
		"CREATE TABLE shop.t (id INT PRIMARY KEY)", "CREATE TABLE other.t (id INT PRIMARY KEY)",
		"CREATE USER 'u'@'%' IDENTIFIED BY 'u-pw'",
		"GRANT SELECT ON shop.* TO 'u'@'%'",
		"GRANT SELECT ON other.* TO 'u'@'%'",
		"CREATE PROCEDURE other.p() SELECT 1",
		"CREATE PROCEDURE shop.p() SELECT 1",
		"GRANT EXECUTE ON PROCEDURE other.p TO 'u'@'%'",
		"CREATE EVENT other.e ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM other.t",
		"CREATE TRIGGER other.tr BEFORE INSERT ON other.t FOR EACH ROW SET NEW.id = NEW.id",
		"CREATE TRIGGER shop.tr BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.id = NEW.id",
		"INSERT INTO shop.t VALUES (1)",
	)
	if code, _, stderr := runCLI("catchup", "--config", cfg, "--start-from", "beginning", "--timeout", "1m"); code != 0 {
		t.Fatalf("catchup: %s", stderr)
	}
	assertAnswers(t, tgtDB, map[string]string{
		"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'other'":                                                              "0",
		"SELECT GROUP_CONCAT(CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME)) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN ('shop', 'other')": "shop.p",
		"SELECT GROUP_CONCAT(TRIGGER_SCHEMA) FROM information_schema.TRIGGERS":                                                                      "shop",
		"SELECT GROUP_CONCAT(TABLE_SCHEMA) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = \"'u'@'%'\"":                                   "shop",
		"SELECT COUNT(*) FROM shop.t": "1",
	})
	// An account the target already has: the channel stops, naming the
	// statement without its password.
	testenv.Exec(t, tgtDB, "CREATE USER 'dup'@'%'")
	testenv.Exec(t, srcDB, "CREATE USER 'dup'@'%' IDENTIFIED BY 'top-secret-pw'")
	code, out, stderr := runCLI("catchup", "--config", cfg, "--timeout", "30s")
	if code == 0 || !strings.Contains(stderr, "CREATE USER 'dup'@'%' IDENTIFIED BY '***'") {
		t.Errorf("catchup over a CREATE USER the target cannot run: exit %d\n%s", code, stderr)
	}
	if strings.Contains(out+stderr, "top-secret-pw") {
		t.Errorf("the password in the output:\n%s%s", out, stderr)
	}
}
