package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/syncer"
)

func binlogPos(t *testing.T, db *sql.DB) string {
	t.Helper()
	var pos string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	return pos
}

var big = strings.Repeat("1234567890", 25) + "12345678" // 258 digits, from the MariaDB test corpus

// Statements a native replica applies and pitcrew refused or died on:
// CREATE TABLE ... SELECT (the CREATE and its rows in one transaction),
// savepoints in row transactions (one rolled back to, logged because a
// MyISAM table changed too), a 258-digit literal (the parser's panic
// killed the process on every restart), DDL the parser rejects (CP932,
// CREATE OR REPLACE with expression defaults). The target ends as the
// native replica does.
func TestDDLLikeNativeReplica(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	native := testenv.NewNativeReplica(t, src, testenv.Options{ServerID: 3}, testenv.ReplicaOptions{})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, nativeDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, native), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB,
		"CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, a VARCHAR(10))",
		"INSERT INTO d.t VALUES (1, 'x'), (2, 'y'), (3, NULL)",
		"CREATE TABLE d.t2 AS SELECT * FROM d.t",
		"CREATE TABLE d.t3 (id INT PRIMARY KEY, n INT DEFAULT 7) SELECT id FROM d.t WHERE id > 1",
		"CREATE OR REPLACE TABLE d.t3 ENGINE=InnoDB SELECT id, a FROM d.t WHERE id = 1",
		"CREATE TABLE IF NOT EXISTS d.t2 SELECT 9 AS id, 'late' AS a",
		"CREATE TABLE d.empty SELECT * FROM d.t WHERE 1 = 0",
		"CREATE TABLE d.my (id INT PRIMARY KEY) ENGINE=MyISAM",
		"CREATE TABLE d.bigdef (id INT PRIMARY KEY, d DECIMAL(65,0) DEFAULT "+big+")",
		"INSERT INTO d.bigdef (id) VALUES (1)",
		"CREATE TABLE d.cp (id INT PRIMARY KEY, s VARCHAR(10)) CHARACTER SET cp932",
		"INSERT INTO d.cp VALUES (1, CONVERT(_utf8mb4'日本語ｶﾅ' USING cp932))",
		"CREATE OR REPLACE TABLE d.dx (id INT PRIMARY KEY, d DATETIME DEFAULT (TIMESTAMP'2020-01-01 00:00:00' + INTERVAL 1 DAY), j INT DEFAULT (1+1)) CHARSET cp932",
		"INSERT INTO d.dx (id) VALUES (1)",
	)
	// Savepoints, set by the application in one transaction.
	tx, err := srcDB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO d.t VALUES (10, 'kept')", "SAVEPOINT `s 1`", "INSERT INTO d.t VALUES (11, 'undone')",
		"ROLLBACK TO SAVEPOINT `s 1`", "INSERT INTO d.t VALUES (12, 'kept')", "SAVEPOINT s2", "UPDATE d.t SET a = 'again' WHERE id = 12",
		"RELEASE SAVEPOINT s2",
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A rollback to a savepoint the server logs: a MyISAM change inside.
	c, err := srcDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"BEGIN", "INSERT INTO d.t VALUES (20, 'kept')", "SAVEPOINT s3", "INSERT INTO d.t VALUES (21, 'undone')",
		"INSERT INTO d.my VALUES (1)", "ROLLBACK TO s3", "COMMIT"} {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c.Close()
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning })
	if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitReplica(context.Background(), nativeDB, binlogPos(t, srcDB), time.Minute); err != nil {
		t.Fatal(err)
	}
	testenv.AssertTablesEqual(t, nativeDB, tgtDB, "d")
	for _, table := range []string{"t2", "t3", "bigdef", "cp", "dx"} {
		var a, b, x string
		if err := nativeDB.QueryRow("SHOW CREATE TABLE d."+table).Scan(&x, &a); err != nil {
			t.Fatal(err)
		}
		if err := tgtDB.QueryRow("SHOW CREATE TABLE d."+table).Scan(&x, &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("d.%s differs from the native replica's:\n%s\n%s", table, a, b)
		}
	}
	var ids string
	if err := tgtDB.QueryRow("SELECT GROUP_CONCAT(id ORDER BY id) FROM d.t").Scan(&ids); err != nil || ids != "1,2,3,10,12,20" {
		t.Errorf("rows after savepoints: %q %v", ids, err)
	}
}

// A crash between the CREATE of a CREATE TABLE ... SELECT and the commit
// of its rows: the pending mark says the CREATE may have run, the next
// run accepts "already exists" and applies the rows, once.
func TestCreateSelectCrashBetweenDDLAndRows(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, a VARCHAR(10))", "INSERT INTO d.t VALUES (1, 'x'), (2, 'y')")
	before := binlogPos(t, srcDB)
	testenv.Exec(t, srcDB, "CREATE TABLE d.t2 AS SELECT * FROM d.t")
	ctas := binlogPos(t, srcDB)
	testenv.Exec(t, srcDB, "INSERT INTO d.t2 VALUES (3, 'z')")
	dataDir := t.TempDir()
	run := func(until string) {
		t.Helper()
		s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.DataDir = dataDir })
		if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true, Until: until}); err != nil {
			t.Fatal(err)
		}
	}
	run(before)
	// What the crash left: the CREATE ran under its mark, the rows did not commit.
	var name, create string
	if err := srcDB.QueryRow("SHOW CREATE TABLE d.t2").Scan(&name, &create); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, tgtDB, "USE d", create, fmt.Sprintf("UPDATE _pitcrew.progress SET pending_ddl = '%s'", ctas))
	run("")
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "d")
}

// System-versioned tables are refused with the true reason: at their
// CREATE, and at the first change of one that exists on the target (here
// created by hand after a skip), never "column row_start is not on the
// target table".
func TestSystemVersionedRefused(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, "CREATE DATABASE d", "CREATE TABLE d.sv (id INT PRIMARY KEY, a INT) WITH SYSTEM VERSIONING")
	create := binlogPos(t, srcDB)
	testenv.Exec(t, srcDB, "INSERT INTO d.sv VALUES (1, 1)", "UPDATE d.sv SET a = 2")
	dataDir := t.TempDir()
	run := func() error {
		s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.DataDir = dataDir })
		return s.Run(context.Background(), syncer.RunOptions{CatchUp: true})
	}
	err := run()
	if err == nil || !strings.Contains(err.Error(), "system-versioned") || !strings.Contains(err.Error(), create) || !strings.Contains(err.Error(), "exclude") {
		t.Fatalf("CREATE of a versioned table: %v", err)
	}
	testenv.Exec(t, tgtDB, "CREATE TABLE d.sv (id INT PRIMARY KEY, a INT) WITH SYSTEM VERSIONING")
	store, err := checkpoint.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.AddSkip("main", create); err != nil {
		t.Fatal(err)
	}
	store.Close()
	err = run()
	if err == nil || !strings.Contains(err.Error(), "d.sv is system-versioned") || strings.Contains(err.Error(), "row_start is not on") {
		t.Fatalf("rows of a versioned table: %v", err)
	}
}
