package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/jobs/verify"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/syncer"
)

// againstNative is a source with a native replica and pitcrew's target
// behind it; catchUp runs pitcrew (a new process each time, on one data
// dir) to the source's position with the given lanes, waits for the native
// replica, and returns the native replica's and the target's pools.
type againstNative struct {
	t                *testing.T
	src, native, tgt *testenv.Server
	srcDB, natDB     *sql.DB
	tgtDB            *sql.DB
	dataDir          string
}

func newAgainstNative(t *testing.T, rowMetadata string) *againstNative {
	src := testenv.New(t, testenv.Options{ServerID: 1, RowMetadata: rowMetadata})
	native := testenv.NewNativeReplica(t, src, testenv.Options{ServerID: 3}, testenv.ReplicaOptions{})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	return &againstNative{t: t, src: src, native: native, tgt: tgt, srcDB: testenv.MustDB(t, src), natDB: testenv.MustDB(t, native),
		tgtDB: testenv.MustDB(t, tgt), dataDir: filepath.Join(t.TempDir(), "data")}
}

func (a *againstNative) catchUp(lanes int) {
	a.t.Helper()
	pos := binlogPos(a.t, a.srcDB)
	s := newSyncer(a.t, a.src, a.tgt, func(c *syncer.Config) {
		c.StartFrom, c.DataDir, c.Lanes = syncer.StartBeginning, a.dataDir, lanes
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true, Until: pos}); err != nil {
		a.t.Fatalf("pitcrew with %d lanes: %v", lanes, err)
	}
	if err := testenv.WaitReplica(ctx, a.natDB, pos, time.Minute); err != nil {
		a.t.Fatal(err)
	}
}

// equal compares schema on the native replica and the target: rows and
// checksums, and each table's AUTO_INCREMENT counter.
func (a *againstNative) equal(schema string) {
	a.t.Helper()
	testenv.AssertTablesEqual(a.t, a.natDB, a.tgtDB, schema)
	q := "SELECT TABLE_NAME, COALESCE(AUTO_INCREMENT, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME"
	x, y := autoIncs(a.t, a.natDB, q, schema), autoIncs(a.t, a.tgtDB, q, schema)
	if x != y {
		a.t.Errorf("AUTO_INCREMENT counters: native %s, pitcrew %s", x, y)
	}
}

func autoIncs(t *testing.T, db *sql.DB, q, schema string) string {
	t.Helper()
	rows, err := db.Query(q, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out string
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s=%d ", name, n)
	}
	return out
}

// BINARY(n) values are logged without their trailing zero bytes: a UUID
// key ending in 00 stopped the channel at its first UPDATE ("target
// diverged"), and so did a keyless table's before image. Serial and with
// lanes, the target ends as the native replica does.
func TestBinaryValuesEndingInZero(t *testing.T) {
	a := newAgainstNative(t, "")
	testenv.Exec(t, a.srcDB, "CREATE DATABASE b",
		"CREATE TABLE b.u (id BINARY(16) PRIMARY KEY, n INT)",
		"CREATE TABLE b.nk (b BINARY(4), n INT)",
		"CREATE TABLE b.uk (id INT PRIMARY KEY, code BINARY(3) NOT NULL, n INT, UNIQUE KEY (code))")
	write := func(from int) {
		for i := from; i < from+20; i++ {
			id := fmt.Sprintf("x'%030x00'", i)
			testenv.Exec(t, a.srcDB,
				fmt.Sprintf("INSERT INTO b.u VALUES (%s, 1)", id),
				fmt.Sprintf("UPDATE b.u SET n = n + 1 WHERE id = %s", id),
				fmt.Sprintf("INSERT INTO b.nk VALUES (x'%02x0000', %d)", i%5, i),
				fmt.Sprintf("UPDATE b.nk SET n = n + 1 WHERE b = x'%02x0000' LIMIT 1", i%5),
				fmt.Sprintf("INSERT INTO b.uk VALUES (%d, x'%02x00', 1)", i, i),
				fmt.Sprintf("UPDATE b.uk SET code = x'%02x0000', n = 2 WHERE id = %d", i+100, i))
			if i%3 == 0 {
				testenv.Exec(t, a.srcDB, fmt.Sprintf("DELETE FROM b.u WHERE id = %s", id), fmt.Sprintf("DELETE FROM b.nk WHERE b = x'%02x0000' LIMIT 1", i%5))
			}
		}
	}
	write(0)
	a.catchUp(1)
	a.equal("b")
	write(20)
	a.catchUp(2)
	a.equal("b")

	// verify names and repairs a changed row whose key ends in 00.
	src, err := conn.Open(a.src.Endpoint(), conn.Options{Init: apply.Session})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tgt, err := conn.Open(a.tgt.Endpoint(), conn.Options{Init: apply.Session, Interpolate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx := context.Background()
	if err := verify.EnsureRepairs(ctx, tgt, "_pitcrew", checkpoint.InternalMarker); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, a.tgtDB, fmt.Sprintf("UPDATE b.u SET n = 99 WHERE id = x'%030x00'", 1))
	vc := verify.Config{Source: src, Target: tgt, ChunkRows: 7, Repair: true,
		Tables: []verify.Table{{SourceSchema: "b", SourceName: "u", TargetSchema: "b", TargetName: "u"}, {SourceSchema: "b", SourceName: "uk", TargetSchema: "b", TargetName: "uk"}}}
	rep, err := verify.Run(ctx, vc)
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Tables[0].Diffs; len(d) != 1 || d[0].Kind != "different" || d[0].Key["id"] != "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00" || rep.Tables[0].Repaired != 1 || rep.Tables[1].Diffs != nil {
		t.Errorf("verify: %+v", rep.Tables)
	}
	if rep, err = verify.Run(ctx, vc); err != nil || !rep.Equal {
		t.Errorf("verify after the repair: %+v %v", rep, err)
	}
}

// Long unique keys (UNIQUE on BLOB/TEXT): MariaDB logs the hidden
// DB_ROW_HASH_n column of each, after the real columns, and the channel
// stopped with "column DB_ROW_HASH_1 of t is not on the target table".
// With column names logged and without them, the hidden columns are never
// written and the rows are keyed by the real columns.
func TestLongUniqueKeys(t *testing.T) {
	for _, meta := range []string{"FULL", "NO_LOG"} {
		t.Run(meta, func(t *testing.T) {
			a := newAgainstNative(t, meta)
			testenv.Exec(t, a.srcDB, "CREATE DATABASE l",
				"CREATE TABLE l.lu (id INT PRIMARY KEY, b BLOB, t TEXT CHARACTER SET utf8mb4, UNIQUE KEY (b), UNIQUE KEY (t(2000)))",
				"CREATE TABLE l.lk (b BLOB NOT NULL, n INT, UNIQUE KEY (b))",
				"CREATE TABLE l.ln (b BLOB, n INT, UNIQUE KEY (b, n))",
				"CREATE TABLE l.lh (id INT PRIMARY KEY, k INT, UNIQUE KEY (k) USING HASH)")
			write := func(from int) {
				for i := from; i < from+15; i++ {
					testenv.Exec(t, a.srcDB,
						fmt.Sprintf("INSERT INTO l.lu VALUES (%d, REPEAT('%c', %d), CONCAT('t', %d))", i, 'a'+i%26, 1+i*300, i),
						fmt.Sprintf("UPDATE l.lu SET b = REPEAT('z', %d) WHERE id = %d", 4000+i, i/2),
						fmt.Sprintf("INSERT INTO l.lk VALUES (REPEAT('q', %d), 1)", 1+i*200),
						fmt.Sprintf("UPDATE l.lk SET n = n + 1 WHERE LENGTH(b) = %d", 1+(i/2)*200),
						fmt.Sprintf("INSERT INTO l.ln VALUES (IF(%d %% 4 = 0, NULL, REPEAT('n', %d)), %d)", i, 1+i, i%3),
						fmt.Sprintf("UPDATE l.ln SET n = n + 10 WHERE n = %d LIMIT 1", i%3),
						fmt.Sprintf("INSERT INTO l.lh VALUES (%d, %d)", i, i*7),
						fmt.Sprintf("UPDATE l.lh SET k = k + 1 WHERE id = %d", i))
					if i%4 == 0 {
						testenv.Exec(t, a.srcDB, fmt.Sprintf("DELETE FROM l.lu WHERE id = %d", i/3), fmt.Sprintf("DELETE FROM l.lk WHERE LENGTH(b) = %d", 1+(i/3)*200),
							"DELETE FROM l.ln WHERE b IS NULL LIMIT 1")
					}
				}
			}
			write(0)
			a.catchUp(1)
			a.equal("l")
			write(15)
			a.catchUp(2)
			a.equal("l")
		})
	}
}

// Indexed virtual columns under churn that leaves InnoDB's purge much to
// do (bulk deletes, updates of the virtual columns' bases through their
// own indexes): the target ends as the native replica does, its indexes
// intact, in serial and lanes mode, with the batch folded or not.
func TestIndexedVirtualColumns(t *testing.T) {
	a := newAgainstNative(t, "")
	testenv.Exec(t, a.srcDB, "CREATE DATABASE v",
		// one unique key (foldable), and one with a virtual column in a second unique key
		"CREATE TABLE v.f (id INT PRIMARY KEY, a INT, s VARCHAR(20), v INT AS (a * 2) VIRTUAL, w VARCHAR(40) AS (CONCAT(s, a)) VIRTUAL, KEY (v), KEY (w))",
		"CREATE TABLE v.u (id INT PRIMARY KEY, a INT, s VARCHAR(20), v INT AS (a * 2) VIRTUAL, w VARCHAR(40) AS (CONCAT(s, a)) VIRTUAL, UNIQUE KEY (v, id), KEY (w))",
		"CREATE TABLE v.n (a INT, s VARCHAR(20), v INT AS (a * 2) VIRTUAL, p INT AS (a + 1) PERSISTENT, KEY (v), KEY (p))")
	id := 0
	write := func(rounds int) {
		for r := 0; r < rounds; r++ {
			for _, tbl := range []string{"f", "u"} {
				var vals []string
				for k := 0; k < 30; k++ {
					id++
					vals = append(vals, fmt.Sprintf("(%d, %d, 's%d')", id, id%50, id%7))
				}
				tx := []string{"BEGIN", fmt.Sprintf("INSERT INTO v.%s (id, a, s) VALUES %s", tbl, strings.Join(vals, ", ")),
					fmt.Sprintf("UPDATE v.%s SET a = a + 1 WHERE v > %d", tbl, (r*13)%90),
					fmt.Sprintf("DELETE FROM v.%s WHERE a < %d", tbl, r%20),
					fmt.Sprintf("UPDATE v.%s SET s = IF(LENGTH(s) < 15, CONCAT(s, 'x'), 's') WHERE w LIKE 's3%%' LIMIT 5", tbl),
					fmt.Sprintf("DELETE FROM v.%s WHERE id > %d AND id < %d", tbl, id-25, id-20), "COMMIT"}
				testenv.Exec(t, a.srcDB, tx...)
			}
			testenv.Exec(t, a.srcDB, fmt.Sprintf("INSERT INTO v.n (a, s) VALUES (%d, 'n'), (%d, 'n'), (%d, NULL)", r%9, r%9, r%5),
				fmt.Sprintf("UPDATE v.n SET a = a + 1 WHERE v = %d LIMIT 2", (r%9)*2), fmt.Sprintf("DELETE FROM v.n WHERE p = %d LIMIT 1", r%5))
		}
	}
	check := func() {
		a.equal("v")
		for _, tbl := range []string{"f", "u", "n"} {
			var name, op, typ, msg string
			if err := a.tgtDB.QueryRow("CHECK TABLE v."+tbl+" EXTENDED").Scan(&name, &op, &typ, &msg); err != nil || msg != "OK" {
				t.Errorf("CHECK TABLE v.%s on the target: %s %s %v", tbl, typ, msg, err)
			}
		}
	}
	write(20)
	a.catchUp(1)
	check()
	write(20)
	a.catchUp(4)
	check()
}

// A row inserted and deleted within one batch folded into nothing, and
// the target's AUTO_INCREMENT counter stayed behind the native replica's.
// InnoDB and MyISAM, in one transaction and across transactions of one
// batch, serial and with lanes: the counters end equal.
func TestAutoIncrementAfterFoldedRows(t *testing.T) {
	a := newAgainstNative(t, "")
	testenv.Exec(t, a.srcDB, "CREATE DATABASE ai",
		"CREATE TABLE ai.a (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"CREATE TABLE ai.b (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT=1000",
		"CREATE TABLE ai.my (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=MyISAM")
	write := func() {
		for i := 0; i < 10; i++ {
			testenv.Exec(t, a.srcDB, "BEGIN", "INSERT INTO ai.a (v) VALUES (1), (2), (3)", fmt.Sprintf("DELETE FROM ai.a ORDER BY id DESC LIMIT %d", i%4), "COMMIT",
				"INSERT INTO ai.b (v) VALUES (1)", "DELETE FROM ai.b ORDER BY id DESC LIMIT 1",
				"INSERT INTO ai.my (v) VALUES (1)", "DELETE FROM ai.my ORDER BY id DESC LIMIT 1")
		}
		testenv.Exec(t, a.srcDB, "BEGIN", "INSERT INTO ai.a (v) VALUES (9)", "DELETE FROM ai.a WHERE v = 9", "COMMIT")
	}
	write()
	a.catchUp(1)
	a.equal("ai")
	write()
	a.catchUp(2)
	a.equal("ai")
}
