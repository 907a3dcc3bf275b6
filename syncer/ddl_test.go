package syncer_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/syncer"
)

// DDL of every kind interleaved with DML under load, and the engine
// restarted in the middle, between a DDL and the DML that depends on it.
func TestDDLStreamWithRestart(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1, RowMetadata: "MINIMAL"}) // no column names in the log
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 31)
	dataDir := filepath.Join(t.TempDir(), "data")
	catchup := func() {
		t.Helper()
		s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.DataDir = dataDir })
		if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true}); err != nil {
			t.Fatal(err)
		}
	}
	steps := [][]string{
		{"CREATE DATABASE ddl2", "CREATE TABLE ddl2.t (id INT PRIMARY KEY, a VARCHAR(10), b INT)", "INSERT INTO ddl2.t VALUES (1, 'x', 1), (2, 'y', 2)"},
		{"ALTER TABLE ddl2.t ADD COLUMN c DATETIME(3) NULL AFTER a", "UPDATE ddl2.t SET c = '2020-01-01 00:00:00.123'"},
		{"ALTER TABLE ddl2.t DROP COLUMN b", "INSERT INTO ddl2.t (id, a, c) VALUES (3, 'z', NOW(3))"},
		{"ALTER TABLE ddl2.t CHANGE COLUMN a name VARCHAR(30) NOT NULL DEFAULT ''", "UPDATE ddl2.t SET name = CONCAT(name, '-renamed')"},
		{"ALTER TABLE ddl2.t MODIFY COLUMN id BIGINT NOT NULL", "INSERT INTO ddl2.t (id, name) VALUES (9000000000, 'big')"},
		{"ALTER TABLE ddl2.t ADD INDEX by_name (name)", "ALTER TABLE ddl2.t ADD UNIQUE KEY u (id, name)", "DELETE FROM ddl2.t WHERE id = 2"},
		{"RENAME TABLE ddl2.t TO ddl2.t2", "INSERT INTO ddl2.t2 (id, name) VALUES (4, 'after rename')"},
		{"CREATE TABLE ddl2.gone (id INT PRIMARY KEY)", "INSERT INTO ddl2.gone VALUES (1)", "DROP TABLE ddl2.gone"},
		{"CREATE TABLE ddl2.tr (id INT PRIMARY KEY)", "INSERT INTO ddl2.tr VALUES (1), (2)", "TRUNCATE TABLE ddl2.tr", "INSERT INTO ddl2.tr VALUES (3)"},
		{"CREATE DATABASE tmpdb", "CREATE TABLE tmpdb.x (id INT PRIMARY KEY)", "DROP DATABASE tmpdb"},
		// MariaDB syntax the parser only knows through an equivalent.
		{"CREATE TABLE ddl2.g (id INT PRIMARY KEY, v INT AS (id * 2) PERSISTENT, h INT INVISIBLE)", "INSERT INTO ddl2.g (id, h) VALUES (1, 5)"},
		// A table without a primary key but with a unique NOT NULL key.
		{"CREATE TABLE ddl2.uk (code CHAR(3) NOT NULL, n INT, UNIQUE KEY (code))", "INSERT INTO ddl2.uk VALUES ('a', 1), ('b', 2)", "UPDATE ddl2.uk SET n = 5 WHERE code = 'b'", "DELETE FROM ddl2.uk WHERE code = 'a'"},
		// And one with no key at all: the whole before image matches.
		{"CREATE TABLE ddl2.nokey (a INT, b VARCHAR(5))", "INSERT INTO ddl2.nokey VALUES (1, 'x'), (1, 'x'), (2, NULL)", "UPDATE ddl2.nokey SET b = 'y' WHERE a = 2", "DELETE FROM ddl2.nokey WHERE a = 1 LIMIT 1"},
	}
	for i, step := range steps {
		if err := gen.Run(context.Background(), 30); err != nil {
			t.Fatal(err)
		}
		// The DDL of the step, then catch up (a restart after the DDL and
		// before the DML that depends on it), then its DML.
		testenv.Exec(t, srcDB, step[0])
		if i%3 == 1 {
			catchup()
		}
		testenv.Exec(t, srcDB, step[1:]...)
	}
	catchup()
	for _, schema := range []string{"shop", "ddl2"} {
		testenv.AssertTablesEqual(t, srcDB, tgtDB, schema)
	}
	var n int
	if err := tgtDB.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'tmpdb'").Scan(&n); err != nil || n != 0 {
		t.Errorf("dropped database still on the target (%d, %v)", n, err)
	}
}

// Filters and renames on row events and DDL, including a renamed database
// receiving DDL, and gh-ost's shadow table and rename swap on a renamed
// table.
func TestRouteFiltersAndRenames(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	s := newSyncer(t, src, tgt, func(c *syncer.Config) {
		c.StartFrom = syncer.StartBeginning
		c.Route = route.Rules{
			Include:         []string{"shop", "crm.customers"},
			Exclude:         []string{"shop.audit_*"},
			RenameDatabases: map[string]string{"shop": "shop_v2"},
			RenameTables:    map[string]string{"crm.customers": "crm.clients"},
		}
	})
	testenv.Exec(t, srcDB,
		"CREATE DATABASE shop", "CREATE DATABASE crm", "CREATE DATABASE other",
		"CREATE TABLE shop.orders (id INT PRIMARY KEY, total INT)",
		"CREATE TABLE shop.audit_log (id INT PRIMARY KEY)",
		"CREATE TABLE crm.customers (id INT PRIMARY KEY, name VARCHAR(20))",
		"CREATE TABLE crm.notes (id INT PRIMARY KEY)",
		"CREATE TABLE other.x (id INT PRIMARY KEY)",
		"INSERT INTO shop.orders VALUES (1, 10), (2, 20)", "INSERT INTO shop.audit_log VALUES (1)",
		"INSERT INTO crm.customers VALUES (1, 'ada')", "INSERT INTO crm.notes VALUES (1)", "INSERT INTO other.x VALUES (1)",
		"ALTER TABLE shop.orders ADD COLUMN note VARCHAR(10) DEFAULT 'n'",
		"UPDATE shop.orders SET note = 'late' WHERE id = 2",
		// gh-ost on crm.customers: shadow table, copy, cut-over swap, cleanup.
		"CREATE TABLE crm._customers_gho LIKE crm.customers",
		"ALTER TABLE crm._customers_gho ADD COLUMN email VARCHAR(40) NULL",
		"INSERT INTO crm._customers_gho (id, name) SELECT id, name FROM crm.customers",
		"INSERT INTO crm.customers VALUES (2, 'grace')",
		"INSERT INTO crm._customers_gho (id, name) VALUES (2, 'grace')",
		"RENAME TABLE crm.customers TO crm._customers_del, crm._customers_gho TO crm.customers",
		"DROP TABLE crm._customers_del",
		"UPDATE crm.customers SET email = 'g@example.org' WHERE id = 2",
	)
	if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatal(err)
	}
	have := func(q string) string {
		var v string
		if err := tgtDB.QueryRow(q).Scan(&v); err != nil {
			return "error: " + err.Error()
		}
		return v
	}
	checks := map[string]string{
		"SELECT GROUP_CONCAT(CONCAT(id, ':', total, ':', note) ORDER BY id) FROM shop_v2.orders":                                                      "1:10:n,2:20:late",
		"SELECT GROUP_CONCAT(CONCAT(id, ':', name, ':', COALESCE(email, '-')) ORDER BY id) FROM crm.clients":                                          "1:ada:-,2:grace:g@example.org",
		"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('shop', 'other') OR TABLE_NAME IN ('audit_log', 'notes', 'customers')": "0",
	}
	for q, want := range checks {
		if got := have(q); got != want {
			t.Errorf("%s\n got %s\nwant %s", q, got, want)
		}
	}
}

// A source session that writes statement-format events stops the channel
// with a clear error: statements cannot be replayed row-exact.
func TestStatementFormatEventStops(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
	c, err := srcDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"SET SESSION binlog_format = 'STATEMENT'", "BEGIN", "INSERT INTO app.t VALUES (1)", "COMMIT"} {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning })
	err = s.Run(context.Background(), syncer.RunOptions{CatchUp: true})
	if err == nil || !strings.Contains(err.Error(), "statement-format event") || !strings.Contains(err.Error(), "binlog_format=ROW") {
		t.Fatalf("want a statement-format error with the fix, got %v", err)
	}
}

// DDL runs on the target under the source session's context: its
// character set (a literal's bytes mean what they meant there) and its
// sql_mode (ANSI_QUOTES makes "q" a name, not a string).
func TestDDLSourceSessionContext(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	c, err := srcDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{
		"CREATE DATABASE app",
		"SET NAMES latin1",
		"SET SESSION sql_mode = 'ANSI_QUOTES'",
		`CREATE TABLE "app"."q" ("a" VARCHAR(5) CHARACTER SET utf8mb4 DEFAULT 'é', "b" INT)`,
		`INSERT INTO "app"."q" ("b") VALUES (1)`,
	} {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning })
	if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatal(err)
	}
	q := "SELECT HEX(COLUMN_DEFAULT) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'q' AND COLUMN_NAME = 'a'"
	var want, got string
	if err := srcDB.QueryRow(q).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if err := tgtDB.QueryRow(q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("column default: source %s, target %s", want, got)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "app")
}
