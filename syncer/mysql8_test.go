package syncer_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/mysqltest"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

// The MySQL 8 fixtures served live, and their GTIDs. Each of the first
// two begins with an ALTER USER of root to caching_sha2_password (GTID
// :1), an account statement for the source's own server, which a replica
// into MariaDB is started past (MariaDB has no such plugin).
const (
	enumUUID     = "93e95066-a2f4-11ec-9b69-9657f0ae95e2" // mysql-enum-string-set.000001, 8.0.28: mysql.t, ENUM/SET/strings, insert-update-delete
	invUUID      = "97c7af02-4c50-11ec-acd8-681842034964" // binlog-invisible-columns.000001, 8.0.26: mysql.t1 with INVISIBLE columns, no key
	bitUUID      = "fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a" // mysql_type_bit.000001, 8.0.26: mysql.foo, BIT columns
	zstdUUID     = "5bbd3c8a-0f4e-11ee-8a01-0242ac110002" // given to transaction_compression.000001 (8.0.32, gtid_mode=OFF): a zstd TRANSACTION_PAYLOAD
	pastAccounts = enumUUID + ":1," + bitUUID + ":1"
)

func mysqlFixtures(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "fixtures", "mysql-binlogs")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("PITCREW_REQUIRE_DB") == "1" {
			t.Fatalf("MySQL binlog fixtures missing at %s: %v", dir, err)
		}
		t.Skipf("MySQL binlog fixtures not found at %s", dir)
	}
	return dir
}

func mysql8Files(t *testing.T) []mysqltest.File {
	dir := mysqlFixtures(t)
	return []mysqltest.File{
		{Path: filepath.Join(dir, "mysql-enum-string-set.000001")},
		{Path: filepath.Join(dir, "mysql_type_bit.000001")},
		{Path: filepath.Join(dir, "transaction_compression.000001"), AssignUUID: zstdUUID},
	}
}

// mysql8Target is a MariaDB target ready for the fixtures: test.tb1 (the
// compressed transaction's table, created on that server before its log
// starts) exists, and so does m8: the fixtures' tables, in the source's `mysql` schema, are
// routed to m8 (MariaDB's own mysql schema is not theirs).
func mysql8Target(t *testing.T) (*testenv.Server, *sql.DB) {
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	db := testenv.MustDB(t, tgt)
	testenv.Exec(t, db, "CREATE DATABASE test", "CREATE TABLE test.tb1 (a INT)", "CREATE DATABASE m8")
	return tgt, db
}

func mysql8Syncer(t *testing.T, p *mysqltest.Primary, tgt *testenv.Server, mod func(*syncer.Config)) *syncer.Syncer {
	t.Helper()
	cfg := syncer.Config{
		Source: p.Endpoint(), Target: tgt.Endpoint(),
		DataDir: filepath.Join(t.TempDir(), "data"), Logger: testLogger(t),
		RestartBackoffMax: time.Second,
		StreamConfig:      syncer.StreamConfig{StartFrom: syncer.StartGTID, StartGTID: pastAccounts},
		Route:             route.Rules{RenameDatabases: map[string]string{"mysql": "m8"}},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := syncer.New(cfg, syncer.NewMetrics(prometheus.NewRegistry(), cfg.Channel+"x"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rowsOf is a table's rows as text, in order, for comparison.
func rowsOf(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, v := range vals {
			if v.Valid {
				r = append(r, v.String)
			} else {
				r = append(r, "NULL")
			}
		}
		out = append(out, strings.Join(r, ","))
	}
	return strings.Join(out, "; ")
}

// assertMySQL8Copy checks the target holds what the three files did, once.
func assertMySQL8Copy(t *testing.T, db *sql.DB) {
	t.Helper()
	for q, want := range map[string]string{
		// inserted, updated, then deleted on the source (an UPDATE or
		// DELETE that matches no row stops the channel: they applied)
		"SELECT COUNT(*) FROM m8.t": "0",
		// no key: a second copy of the row would show
		"SELECT a+0, b, c+0 FROM m8.foo": "4,foo,32",
		"SELECT a FROM test.tb1":         "1",
	} {
		if got := rowsOf(t, db, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
}

// pitcrew catches up from a MySQL 8.0 and an 8.4 primary into MariaDB: the
// start check, the dump that skips what the target has, row events with
// and without column names, ENUM/SET/BIT/INVISIBLE columns, and a zstd
// TRANSACTION_PAYLOAD, all over the replica protocol.
func TestMySQL8CatchUp(t *testing.T) {
	for _, prof := range []mysqltest.Profile{mysqltest.MySQL80, mysqltest.MySQL84} {
		t.Run(prof.Name, func(t *testing.T) {
			p := mysqltest.Start(t, mysqltest.Options{Profile: prof, Files: mysql8Files(t)})
			tgt, db := mysql8Target(t)
			s := mysql8Syncer(t, p, tgt, nil)
			if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true}); err != nil {
				t.Fatal(err)
			}
			assertMySQL8Copy(t, db)
			d := p.Dumps()
			if len(d) != 1 || !gtid.MustParse(gtid.MySQL, d[0].Set).Equal(gtid.MustParse(gtid.MySQL, pastAccounts)) {
				t.Errorf("dumps %+v, want one from %s", d, pastAccounts)
			}
			if st := s.Status(); st.TxnsApplied != 7 {
				t.Errorf("applied %d transactions, want 7 (9 served, 2 skipped)", st.TxnsApplied)
			}
		})
	}
}

// Cut in the middle of a transaction (the INSERT into the keyless
// m8.foo), the channel reconnects by itself and asks for exactly what it
// does not hold: the start set plus what it received whole, never the cut
// transaction; every row lands once (relay on and off).
func TestMySQL8CutMidTransactionResumes(t *testing.T) {
	for _, relay := range []bool{true, false} {
		t.Run(map[bool]string{true: "relay", false: "no-relay"}[relay], func(t *testing.T) {
			p := mysqltest.Start(t, mysqltest.Options{Files: mysql8Files(t)})
			p.CutInside(bitUUID + ":3")
			tgt, db := mysql8Target(t)
			s := mysql8Syncer(t, p, tgt, func(c *syncer.Config) { c.NoRelay = !relay })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
				t.Fatal(err)
			}
			assertMySQL8Copy(t, db)
			d := p.Dumps()
			if len(d) != 2 {
				t.Fatalf("dumps %+v, want two (the cut, the resume)", d)
			}
			start := gtid.MustParse(gtid.MySQL, pastAccounts)
			before := gtid.MustParse(gtid.MySQL, enumUUID+":1-5,"+bitUUID+":1-2")
			resume := gtid.MustParse(gtid.MySQL, d[1].Set)
			if !resume.Contains(start) || !before.Contains(resume) || resume.ContainsOne(bitUUID+":3") {
				t.Errorf("resumed from %s: want the start set %s plus at most %s", resume, start, before)
			}
		})
	}
}

// The source purges the binlog the replica still needs while it is away
// (cut mid-stream, PURGE BINARY LOGS before it is back): the reconnect is
// refused with MySQL's 1236, and pitcrew's diagnosis names the missing set.
func TestMySQL8PurgedWhileAway(t *testing.T) {
	p := mysqltest.Start(t, mysqltest.Options{Files: mysql8Files(t)})
	p.CutInside(bitUUID + ":3")
	p.BeforeDump(func(n int) {
		if n == 2 {
			p.Purge(2)
		}
	})
	tgt, _ := mysql8Target(t)
	s := mysql8Syncer(t, p, tgt, func(c *syncer.Config) { c.NoRelay = true })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.Run(ctx, syncer.RunOptions{CatchUp: true})
	if err == nil {
		t.Fatal("caught up past a purged range")
	}
	d := p.Dumps()
	if len(d) != 2 {
		t.Fatalf("dumps %+v", d)
	}
	// What the resume lacks depends on how much was applied before the
	// cut, but it holds the cut transaction, and pitcrew names the same
	// set as the server's 1236.
	_, missing, _ := strings.Cut(d[1].Err, "the missing transactions are '")
	missing, _, _ = strings.Cut(missing, "'")
	if !gtid.MustParse(gtid.MySQL, missing).ContainsOne(bitUUID + ":3") {
		t.Errorf("the primary's 1236 does not name the cut transaction: %s", d[1].Err)
	}
	for _, want := range []string{"purged binlogs the target still needs: missing " + missing + " (", "re-seed the target"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// What MariaDB cannot hold, or pitcrew cannot place, stops the channel
// at that transaction with its GTID, the statement and the way past it:
// MySQL 9's VECTOR columns (a 9.0 file: VECTOR is 9.0+; MariaDB 10.11
// says "Unknown data type"), the ALTER USER to caching_sha2_password every
// MySQL 8 fixture starts with (MariaDB has no such plugin; here it also
// has no root@localhost), and DDL the parser reads only approximately
// (INVISIBLE columns) when it would have to be renamed.
func TestMySQL8Refusals(t *testing.T) {
	dir := mysqlFixtures(t)
	for _, c := range []struct {
		name  string
		file  mysqltest.File
		start string
		want  []string
	}{
		{"vector", mysqltest.File{Path: filepath.Join(dir, "vector.binlog"), AssignUUID: zstdUUID}, "",
			[]string{"GTID " + zstdUUID + ":2", "Unknown data type: 'VECTOR'", "a column type the target does not have", "pitcrew skip --gtid " + zstdUUID + ":2"}},
		{"account", mysqltest.File{Path: filepath.Join(dir, "mysql-enum-string-set.000001")}, "",
			[]string{"GTID " + enumUUID + ":1", "MySQL 8's caching_sha2_password plugin, which MariaDB does not have", "pitcrew skip --gtid " + enumUUID + ":1"}},
		{"invisible", mysqltest.File{Path: filepath.Join(dir, "binlog-invisible-columns.000001")}, "97c7af02-4c50-11ec-acd8-681842034964:1",
			[]string{"GTID 97c7af02-4c50-11ec-acd8-681842034964:2", "cannot be rewritten with other names", "INVISIBLE", "pitcrew skip --gtid"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mysqltest.Start(t, mysqltest.Options{Files: []mysqltest.File{c.file}})
			tgt, _ := mysql8Target(t)
			s := mysql8Syncer(t, p, tgt, func(cfg *syncer.Config) {
				cfg.StartGTID = c.start
				if c.start == "" {
					cfg.StartFrom, cfg.StartGTID = syncer.StartBeginning, ""
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := s.Run(ctx, syncer.RunOptions{CatchUp: true})
			if err == nil {
				t.Fatal("caught up")
			}
			t.Logf("refused: %v", err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
		})
	}
}

// The service against an RDS MySQL 8.4 primary: it streams live, the idle
// stream lives on the primary's heartbeats, a file the source logs later
// arrives through the open dump (rotated to), the source is polled for its
// position and its retention (RDS's procedure), and the channel stops
// cleanly when asked.
func TestMySQL8ServiceLive(t *testing.T) {
	prof := mysqltest.MySQL84
	hours := 24
	prof.RDS, prof.RetentionHours = true, &hours
	files := mysql8Files(t)
	p := mysqltest.Start(t, mysqltest.Options{Profile: prof, Files: files[:2]})
	tgt, db := mysql8Target(t)
	s := mysql8Syncer(t, p, tgt, func(c *syncer.Config) { c.Heartbeat = 200 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, syncer.RunOptions{}) }()
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("waited 30s for %s (run: %v)", what, <-done)
			}
		}
	}
	wait("the history", func() bool {
		return rowsOf(t, db, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'm8' AND TABLE_NAME = 'foo'") == "1" && rowsOf(t, db, "SELECT COUNT(*) FROM m8.foo") == "1"
	})
	// Idle for 2.5 s: more than three heartbeat periods many times over,
	// and one poll of the source.
	time.Sleep(2500 * time.Millisecond)
	if p.Heartbeats() < 5 {
		t.Errorf("%d heartbeats while idle", p.Heartbeats())
	}
	p.Append(files[2])
	wait("the appended file", func() bool { return rowsOf(t, db, "SELECT COUNT(*) FROM test.tb1") == "1" })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("service stopped with %v", err)
	}
	if d := p.Dumps(); len(d) != 1 {
		t.Errorf("dumps %+v: the idle stream reconnected", d)
	}
	// Polled every 2 s for its position, every 30 s for RDS's retention.
	if n := p.Asked("SELECT @@GLOBAL.gtid_executed"); n < 3 {
		t.Errorf("gtid_executed read %d times: the service does not poll the source", n)
	}
	if n := p.Asked("CALL mysql.rds_show_configuration"); n < 1 {
		t.Errorf("RDS retention never read")
	}
	assertMySQL8Copy(t, db)
}
