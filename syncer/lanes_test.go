package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/syncer"
)

// The randomised workload caught up by four lanes with small batches (so
// batches really run beside each other) and a DDL in the middle (a
// barrier): the target ends equal, a second catch-up resumes from the
// lanes' rows alone (fresh data dir), and the channel's own progress row is
// brought up to date at the end.
func TestLanesCatchUpRandomWorkload(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 5)
	if err := gen.Run(ctx, 1500); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, srcDB, "ALTER TABLE shop.counters ADD COLUMN extra VARCHAR(10) NULL")
	if err := gen.Run(ctx, 1500); err != nil {
		t.Fatal(err)
	}
	lanes := func(c *syncer.Config) { c.Lanes, c.BatchTxns = 4, 4 }
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { lanes(c); c.StartFrom = syncer.StartBeginning })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("first catch-up: %v", err)
	}
	st := s.Status()
	t.Logf("lanes: %d batches overlapped another lane's, %d barriers", st.LaneOverlaps, st.LaneBarriers)
	if st.LaneOverlaps == 0 {
		t.Error("no batch ran beside another: the lanes were not used")
	}
	if st.LaneBarriers == 0 {
		t.Error("the DDL did not run as a barrier")
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")

	if err := gen.Run(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	s2 := newSyncer(t, src, tgt, func(c *syncer.Config) { lanes(c); c.DataDir = filepath.Join(t.TempDir(), "other") })
	if err := s2.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("second catch-up: %v", err)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
	var srcPos, row string
	if err := srcDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&srcPos); err != nil {
		t.Fatal(err)
	}
	if err := tgtDB.QueryRow("SELECT gtid_set FROM _pitcrew.progress WHERE channel = 'main'").Scan(&row); err != nil {
		t.Fatal(err)
	}
	if row != srcPos {
		t.Errorf("the channel's progress row says %q after catching up to %q", row, srcPos)
	}
}

// A crash left batches committed beyond the watermark: the lanes' rows say
// the target holds the transactions up to 40 and 51..60, and it really does
// (each transaction inserts one row). A restart applies 41..50 and 61..,
// and not 51..60 again (which would fail on their duplicate keys). With
// the lane row removed it fails exactly so: the row is what saves it.
func TestLanesRestartSkipsWhatLanesCommittedBeyond(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	schema := []string{"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL)"}
	testenv.Exec(t, srcDB, schema...)
	testenv.Exec(t, tgtDB, schema...)
	after := map[int]string{} // source position after the insert of id
	for id := 1; id <= 80; id++ {
		testenv.Exec(t, srcDB, fmt.Sprintf("INSERT INTO app.t VALUES (%d, %d)", id, id*7))
		after[id] = pos(t, srcDB)
	}
	testenv.Exec(t, tgtDB, "INSERT INTO app.t SELECT seq, seq*7 FROM app.seq_1_to_40", "INSERT INTO app.t SELECT seq, seq*7 FROM app.seq_51_to_60")
	progress := checkpoint.Progress{Schema: "_pitcrew", Table: "progress"}
	if err := progress.Ensure(ctx, tgtDB); err != nil {
		t.Fatal(err)
	}
	if err := progress.EnsureLanes(ctx, tgtDB); err != nil {
		t.Fatal(err)
	}
	// The channel's row is older still: the lanes' watermark (30 < 40) and
	// a batch that continues it (31..40) move it to 40.
	if err := progress.Write(ctx, tgtDB, "main", "mariadb", after[20]); err != nil {
		t.Fatal(err)
	}
	lane := func(n int, watermark string, done ...checkpoint.LaneRange) {
		q, args := progress.LaneSQL("main", n, "mariadb", watermark, done)
		if _, err := tgtDB.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	lane(0, after[30], checkpoint.LaneRange{Before: after[50], After: after[60]})
	lane(1, after[25], checkpoint.LaneRange{Before: after[30], After: after[40]})

	run := func() error {
		s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.Lanes, c.BatchTxns = 4, 3 })
		return s.Run(ctx, syncer.RunOptions{CatchUp: true})
	}
	if err := run(); err != nil {
		t.Fatalf("catch-up after the crash: %v", err)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "app")

	// The same state without lane 0's row: 51..60 are applied again.
	testenv.Exec(t, tgtDB, "DELETE FROM app.t WHERE id BETWEEN 41 AND 50 OR id > 60", "DELETE FROM _pitcrew.progress_lanes")
	if err := progress.Write(ctx, tgtDB, "main", "mariadb", after[40]); err != nil {
		t.Fatal(err)
	}
	err := run()
	if err == nil || !strings.Contains(err.Error(), "Duplicate entry") {
		t.Fatalf("without the lane's row the catch-up should fail on a duplicate key, got %v", err)
	}
}

func pos(t *testing.T, db *sql.DB) string {
	t.Helper()
	var p string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every transaction applied as it is decoded (LazyBytes 1), serially and
// with lanes (a lazy transaction is a barrier): the random workload ends
// equal. Again with every transaction over 300 bytes spooled in pieces,
// read back a piece at a time, and, without the relay, applied as its
// pieces arrive.
func TestLazyTransactions(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	srcDB := testenv.MustDB(t, src)
	ctx := context.Background()
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 8)
	if err := gen.Run(ctx, 800); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, srcDB, "ALTER TABLE shop.counters ADD COLUMN extra VARCHAR(10) NULL")
	if err := gen.Run(ctx, 400); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		lanes, partBytes int
		noRelay          bool
	}{{1, 0, false}, {4, 0, false}, {1, 300, false}, {4, 300, false}, {1, 300, true}, {4, 300, true}} {
		name := fmt.Sprintf("%d lanes", v.lanes)
		switch {
		case v.noRelay:
			name += ", no relay, applied in pieces"
		case v.partBytes > 0:
			name += ", spooled in pieces"
		}
		t.Run(name, func(t *testing.T) {
			tgt := testenv.New(t, testenv.Options{ServerID: 2})
			s := newSyncer(t, src, tgt, func(c *syncer.Config) {
				c.StartFrom, c.LazyBytes, c.Lanes, c.BatchTxns = syncer.StartBeginning, 1, v.lanes, 4
				c.PartBytes, c.NoRelay = v.partBytes, v.noRelay
				if v.partBytes > 0 {
					// Only what is spooled in pieces goes the lazy way.
					c.LazyBytes = 1 << 30
				}
			})
			if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
				t.Fatal(err)
			}
			st := s.Status()
			t.Logf("%d transactions applied as decoded", st.LargeTxns)
			if st.LargeTxns < 100 {
				t.Errorf("only %d transactions went the lazy way", st.LargeTxns)
			}
			if st.RowsApplied < int64(gen.TotalChanges())/2 {
				t.Errorf("rows applied %d for %d changes made", st.RowsApplied, gen.TotalChanges())
			}
			testenv.AssertTablesEqual(t, srcDB, testenv.MustDB(t, tgt), "shop")
		})
	}
}

// Parallel lanes seen from the target: the order in which it committed.
// The source updates a row of app.a after 20 inserts into app.b and before
// 100 more; the target holds that row locked. The other lanes commit the
// later inserts while the update waits, so the target's binlog records
// them before it (serially they would all wait behind it); once the lock
// goes, the update lands and the target ends equal.
func TestLanesCommitAroundABlockedBatch(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	schema := []string{"CREATE DATABASE app", "CREATE TABLE app.a (id INT PRIMARY KEY, v INT NOT NULL)",
		"CREATE TABLE app.b (id INT PRIMARY KEY, v INT NOT NULL)", "INSERT INTO app.a VALUES (1, 0)"}
	testenv.Exec(t, srcDB, schema...)
	testenv.Exec(t, tgtDB, schema...)
	start := pos(t, srcDB)
	for id := 1; id <= 120; id++ {
		if id == 21 {
			testenv.Exec(t, srcDB, "UPDATE app.a SET v = v + 1 WHERE id = 1")
		}
		testenv.Exec(t, srcDB, fmt.Sprintf("INSERT INTO app.b VALUES (%d, %d)", id, id))
	}
	var file string
	var at int64
	var ignore any
	if err := tgtDB.QueryRow("SHOW MASTER STATUS").Scan(&file, &at, &ignore, &ignore); err != nil {
		t.Fatal(err)
	}

	lock, err := tgtDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec("SELECT v FROM app.a WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) {
		c.Lanes, c.BatchTxns, c.StartFrom, c.StartGTID = 4, 1, syncer.StartGTID, start
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, syncer.RunOptions{CatchUp: true}) }()
	// The inserts land while the update waits for the lock (but for what
	// queued behind it on its own lane).
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n < 100; {
		if time.Now().After(deadline) {
			t.Errorf("the target got %d of 120 inserts while the update waited: the lanes did not pass it", n)
			break
		}
		if err := tgtDB.QueryRow("SELECT COUNT(*) FROM app.b").Scan(&n); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := lock.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "app")

	// The target's binlog: which tables each transaction wrote, in commit order.
	rows, err := tgtDB.Query(fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d", file, at))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var order []string // "a" or "b" per transaction that wrote app.a or app.b
	var txn map[string]bool
	end := func() {
		switch {
		case txn["app.a"]:
			order = append(order, "a")
		case txn["app.b"]:
			order = append(order, "b")
		}
	}
	for rows.Next() {
		var logName, kind, info string
		var pos, serverID, endPos int64
		if err := rows.Scan(&logName, &pos, &kind, &serverID, &endPos, &info); err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "Gtid":
			end()
			txn = map[string]bool{}
		case "Table_map":
			if i := strings.LastIndex(info, "("); i >= 0 && txn != nil {
				txn[strings.Trim(info[i:], "()`")] = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	end()
	update := slices.Index(order, "a")
	if update < 0 || len(order) != 121 {
		t.Fatalf("the target's binlog holds %d transactions of app.a and app.b (update at %d), want 121", len(order), update)
	}
	t.Logf("the target committed the update after %d inserts (the source: after 20)", update)
	if update <= 20 {
		t.Errorf("the target committed the update after %d inserts, as the source did: no insert passed it", update)
	}
}
