package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/syncer"
)

// Names the server accepts and SQL text trips over: a ? read as a
// placeholder (the driver refused `c?` with "skip fast-path"), quotes,
// backslashes, comment openers, spaces, unicode, 64 characters, reserved
// words. (Database and table names may not end in a space, and their
// file names must fit the file system: a ? takes 5 bytes, @003f.)
var oddIdents = []string{"c?", "t?2", "?", "quo`te", "``?", "q'x", `dq"x`, `back\slash`, `\?`,
	"a b", "ünï 日本", strings.Repeat("n", 64), strings.Repeat("?", 48), "select", "1x", "$d", "-- x", "/*x*/", "#x", ";"}

// Databases, tables and columns with such names, written by every kind of
// row change (keyed and keyless tables, folded and row by row, serial and
// in lanes) and by DDL, end on the target as on the source.
func TestCatchUpOddIdentifiers(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	dbs := []string{"d?b", "quo`te ?", strings.Repeat("d", 64), "select"}
	q := conn.QuoteName
	write := func(round int) {
		for _, d := range dbs {
			for i, n := range oddIdents {
				c := oddIdents[(i+1)%len(oddIdents)]
				tbl, kl := q(d)+"."+q(n), q(d)+"."+q(n[:min(len(n), 60)]+"_k")
				if round == 2 && n == "t?2" {
					tbl = q(d) + "." + q("t?3") // renamed in round 1
				}
				if round == 0 {
					testenv.Exec(t, srcDB,
						fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, %s INT, `v?` VARCHAR(20), KEY %s (%s))", tbl, q(c), q(c), q(c)),
						fmt.Sprintf("CREATE TABLE %s (%s VARCHAR(20), n INT)", kl, q(c)))
				}
				base := round * 10
				testenv.Exec(t, srcDB,
					fmt.Sprintf("INSERT INTO %s (id, %s, `v?`) VALUES (%d, 1, '?'), (%d, 2, 'x?y'), (%d, NULL, '`?`')", tbl, q(c), base+1, base+2, base+3),
					fmt.Sprintf("UPDATE %s SET %s = %s + 1, `v?` = '\\\\?''' WHERE id = %d", tbl, q(c), q(c), base+1),
					fmt.Sprintf("UPDATE %s SET id = id + 100 WHERE id = %d", tbl, base+2),
					fmt.Sprintf("DELETE FROM %s WHERE id = %d", tbl, base+3),
					fmt.Sprintf("INSERT INTO %s VALUES ('?', 1), ('?', 1), (NULL, 2)", kl),
					fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE %s <=> '?' LIMIT 1", kl, q(c)),
					fmt.Sprintf("DELETE FROM %s WHERE %s IS NULL LIMIT 1", kl, q(c)))
			}
			if round == 1 {
				testenv.Exec(t, srcDB,
					fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s INT DEFAULT 5", q(d), q("c?"), q("new ?")),
					fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s", q(d), q("t?2"), q(d), q("t?3")),
					fmt.Sprintf("INSERT INTO %s.%s (id, %s) VALUES (99, 9)", q(d), q("t?3"), q("?")))
			}
		}
	}
	for _, d := range dbs {
		testenv.Exec(t, srcDB, "CREATE DATABASE "+q(d))
	}
	write(0)
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.Lanes = 1 })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("serial catch-up: %v", err)
	}
	write(1)
	s = newSyncer(t, src, tgt, func(c *syncer.Config) { c.Lanes = 2 })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("catch-up in lanes: %v", err)
	}
	// Resolving conflicts (bidirectional mode's applier, row by row): rows
	// the target holds already are overwritten, source wins.
	for _, d := range dbs {
		testenv.Exec(t, tgtDB, fmt.Sprintf("INSERT INTO %s.%s (id) VALUES (21), (22)", q(d), q("c?")))
	}
	write(2)
	s = newSyncer(t, src, tgt, func(c *syncer.Config) { c.Conflicts = &conflict.Rules{} })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("catch-up resolving conflicts: %v", err)
	}
	if n := count(t, tgtDB, "SELECT COUNT(*) FROM _pitcrew.conflicts"); n < len(dbs) {
		t.Errorf("%d conflicts recorded, want at least %d", n, len(dbs))
	}
	for _, d := range dbs {
		testenv.AssertTablesEqual(t, srcDB, tgtDB, d)
	}
}

// oneConn runs stmts on one connection of db (for @@last_gtid).
func oneConn(t *testing.T, db *sql.DB, stmts ...string) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, q := range stmts {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return c
}

func lastGTID(t *testing.T, c *sql.Conn) string {
	t.Helper()
	var g string
	if err := c.QueryRowContext(context.Background(), "SELECT @@last_gtid").Scan(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func wantAll(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", parts)
	}
	t.Logf("the stop: %v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "skip fast-path") {
		t.Errorf("error is not one line of cause and fix: %q", err)
	}
}

// What the target refuses stops the channel with the source transaction,
// the table and the fix, and leaves nothing of the transaction behind:
// a row larger than the target's max_allowed_packet, a key the target
// already holds, a user that may only SELECT, or only INSERT.
func TestTargetRefusalsNamed(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	testenv.Exec(t, srcDB,
		"CREATE DATABASE p", "CREATE TABLE p.small (id INT PRIMARY KEY)", "CREATE TABLE p.big (id INT PRIMARY KEY, b LONGBLOB)",
		"CREATE DATABASE k", "CREATE TABLE k.t (id INT PRIMARY KEY, v INT)",
		"CREATE DATABASE g", "CREATE TABLE g.t (id INT PRIMARY KEY, v INT)")
	catchUp := func(channel string, mod func(*syncer.Config)) error {
		s := newSyncer(t, src, tgt, func(c *syncer.Config) {
			c.Channel, c.StartFrom, c.DataDir = channel, syncer.StartBeginning, t.TempDir()
			if mod != nil {
				mod(c)
			}
		})
		return s.Run(ctx, syncer.RunOptions{CatchUp: true})
	}
	if err := catchUp("main", nil); err != nil {
		t.Fatal(err)
	}
	progress := func(channel string) string {
		var g string
		if err := tgtDB.QueryRow("SELECT gtid_set FROM _pitcrew.progress WHERE channel = ?", channel).Scan(&g); err != nil {
			t.Fatal(err)
		}
		return g
	}

	t.Run("max_allowed_packet", func(t *testing.T) {
		testenv.Exec(t, tgtDB, "SET GLOBAL max_allowed_packet = 1048576")
		testenv.Exec(t, srcDB, "INSERT INTO p.small VALUES (10)", "INSERT INTO p.small VALUES (11)")
		c := oneConn(t, srcDB, "BEGIN", "INSERT INTO p.small VALUES (1)", "INSERT INTO p.big VALUES (1, REPEAT('x?', 1536 * 1024))", "COMMIT")
		g := lastGTID(t, c)
		before := progress("main")
		err := catchUp("main", nil)
		wantAll(t, err, "GTID "+g, "`p`.`big`", "max_allowed_packet (1048576 bytes)", "3145", "SET GLOBAL max_allowed_packet = 4194304")
		if n := count(t, tgtDB, "SELECT COUNT(*) FROM p.big") + count(t, tgtDB, "SELECT COUNT(*) FROM p.small WHERE id = 1"); n != 0 {
			t.Errorf("%d rows of the refused transaction on the target", n)
		}
		if after := progress("main"); strings.Contains(after, g) && after != before {
			t.Errorf("progress moved to %s, past the refused %s", after, g)
		}
		testenv.Exec(t, tgtDB, "SET GLOBAL max_allowed_packet = 8388608")
		if err := catchUp("main", nil); err != nil {
			t.Fatalf("after raising max_allowed_packet: %v", err)
		}
		testenv.AssertTablesEqual(t, srcDB, tgtDB, "p")
	})

	t.Run("duplicate key", func(t *testing.T) {
		testenv.Exec(t, tgtDB, "INSERT INTO k.t VALUES (7, 0)")
		for i := 1; i <= 5; i++ {
			testenv.Exec(t, srcDB, fmt.Sprintf("INSERT INTO k.t VALUES (%d, %d)", i, i))
		}
		c := oneConn(t, srcDB, "INSERT INTO k.t VALUES (7, 7)")
		g := lastGTID(t, c)
		err := catchUp("main", nil)
		wantAll(t, err, "GTID "+g, "`k`.`t`", "already holds a row with this key", "pitcrew skip --gtid "+g, "verify --repair")
		if strings.Contains(progress("main"), g) {
			t.Errorf("progress covers the refused %s", g)
		}
		testenv.Exec(t, tgtDB, "DELETE FROM k.t WHERE id = 7")
		if err := catchUp("main", nil); err != nil {
			t.Fatalf("after removing the row: %v", err)
		}
		testenv.AssertTablesEqual(t, srcDB, tgtDB, "k")
		// A row missing on the target, among the net changes of several
		// transactions: the stop names the one that needed it.
		testenv.Exec(t, tgtDB, "DELETE FROM k.t WHERE id = 3")
		testenv.Exec(t, srcDB, "UPDATE k.t SET v = 10 WHERE id = 1", "UPDATE k.t SET v = 20 WHERE id = 2")
		c = oneConn(t, srcDB, "UPDATE k.t SET v = 30 WHERE id = 3")
		g = lastGTID(t, c)
		testenv.Exec(t, srcDB, "UPDATE k.t SET v = 40 WHERE id = 4")
		wantAll(t, catchUp("main", nil), "GTID "+g+": update on `k`.`t`", "target diverged", "0 rows matched", "pitcrew skip --gtid "+g)
	})

	t.Run("privileges", func(t *testing.T) {
		testenv.Exec(t, tgtDB,
			"CREATE USER ro@'%' IDENTIFIED BY 'pw'", "CREATE USER ins@'%' IDENTIFIED BY 'pw'",
			"GRANT SELECT ON g.* TO ro@'%'", "GRANT INSERT ON g.* TO ins@'%'")
		as := func(user string) func(*syncer.Config) {
			return func(c *syncer.Config) { c.Target.User, c.Target.Password, c.StartFrom = user, "pw", syncer.StartNow }
		}
		// Without a grant on pitcrew's own schema, the first start says so.
		wantAll(t, catchUp("ro", as("ro")), "`_pitcrew`.`progress`", "GRANT ALL ON `_pitcrew`.* TO the target user")
		testenv.Exec(t, tgtDB, "GRANT ALL ON _pitcrew.* TO ro@'%'", "GRANT ALL ON _pitcrew.* TO ins@'%'")
		// Both channels start here (StartNow), then the source writes.
		for _, u := range []string{"ro", "ins"} {
			if err := catchUp(u, as(u)); err != nil {
				t.Fatalf("channel %s: %v", u, err)
			}
		}
		c := oneConn(t, srcDB, "INSERT INTO g.t VALUES (1, 1)")
		ins := lastGTID(t, c)
		err := catchUp("ro", as("ro"))
		wantAll(t, err, "GTID "+ins, "insert on `g`.`t`", "GRANT SELECT, INSERT, UPDATE, DELETE ON `g`.* TO 'ro'@'%'")
		if n := count(t, tgtDB, "SELECT COUNT(*) FROM g.t"); n != 0 {
			t.Fatalf("%d rows written by a user that may not", n)
		}
		if err := catchUp("ins", as("ins")); err != nil {
			t.Fatalf("an INSERT-only user inserting: %v", err)
		}
		oneConn(t, srcDB, "INSERT INTO g.t VALUES (2, 2)")
		c = oneConn(t, srcDB, "UPDATE g.t SET v = 10 WHERE id = 1")
		upd := lastGTID(t, c)
		err = catchUp("ins", as("ins"))
		wantAll(t, err, "GTID "+upd, "update on `g`.`t`", "GRANT SELECT, INSERT, UPDATE, DELETE ON `g`.* TO 'ins'@'%'")
		if v := count(t, tgtDB, "SELECT v FROM g.t WHERE id = 1"); v != 1 || strings.Contains(progress("ins"), upd) {
			t.Errorf("the refused update: v = %d, progress %s", v, progress("ins"))
		}
		// The grant the error names is the fix.
		grant := regexp.MustCompile(`GRANT [^:;]*? TO '[^']*'@'[^']*'`).FindString(err.Error())
		testenv.Exec(t, tgtDB, grant)
		if err := catchUp("ins", as("ins")); err != nil {
			t.Fatalf("after %s: %v", grant, err)
		}
		testenv.AssertTablesEqual(t, srcDB, tgtDB, "g")
		// DDL: the user may write rows, not change tables.
		c = oneConn(t, srcDB, "ALTER TABLE g.t ADD COLUMN w INT")
		wantAll(t, catchUp("ins", as("ins")), "GTID "+lastGTID(t, c), "ALTER TABLE g.t ADD COLUMN w INT", "lacks a privilege", "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX")
	})
}
