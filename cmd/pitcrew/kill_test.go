package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
)

// buildBinary compiles pitcrew once for subprocess tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pitcrew")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// auditLog is the table audit triggers append to: one row per row change
// (appends, so transactions applied at once on several lanes do not
// contend on it).
func auditLog(db string) []string {
	return []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".log (id BIGINT AUTO_INCREMENT PRIMARY KEY, tbl VARCHAR(32) NOT NULL, op CHAR(6) NOT NULL)",
	}
}

// auditTriggers logs every row change a server makes to the workload's
// tables into db.log.
func auditTriggers(schema, db string) []string {
	stmts := auditLog(db)
	for _, tbl := range workload.Tables {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, fmt.Sprintf(
				"CREATE TRIGGER %s.audit_%s_%s AFTER %s ON %s.%s FOR EACH ROW INSERT INTO %s.log (tbl, op) VALUES ('%s', '%s')",
				schema, tbl, op, op, schema, tbl, db, tbl, op))
		}
	}
	return stmts
}

// auditCounts counts the logged row changes per (table, operation).
func auditCounts(t *testing.T, db *sql.DB, audit string) map[string]int64 {
	t.Helper()
	rows, err := db.Query("SELECT tbl, op, COUNT(*) FROM " + audit + ".log GROUP BY tbl, op")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var tbl, op string
		var n int64
		if err := rows.Scan(&tbl, &op, &n); err != nil {
			t.Fatal(err)
		}
		m[tbl+" "+op] = n
	}
	return m
}

// `pitcrew sync` is killed with SIGKILL at random moments while the source
// takes writes, and restarted each time. Audit triggers on the target count
// every row change the applier makes; the source's own triggers count what
// the source made. Equal counts prove that no transaction was applied twice
// (or skipped), and equal checksums that the data is the same.
func TestKill9ExactlyOnce(t *testing.T) {
	t.Run("relay off", func(t *testing.T) { kill9(t, nil, "", "relay: false", "batch_txns: 20") })
	// Every connection encrypted (verify-identity, a client certificate)
	// to servers that refuse plaintext.
	t.Run("over TLS", func(t *testing.T) { kill9(t, testenv.NewTestCerts(t), "", "batch_txns: 20") })
	// A relay so small that it is full most of the time: reading pauses,
	// the applier frees space, and kills land with a full spool.
	t.Run("relay at quota", func(t *testing.T) {
		kill9(t, nil, "relay reached its quota", "relay_quota_bytes: 4096", "batch_txns: 5")
	})
	// Four lanes, small batches: kills land while several batches are in
	// flight and some beyond the watermark have committed. The audit
	// triggers only append, so they may run on several lanes at once.
	t.Run("4 lanes", func(t *testing.T) {
		kill9(t, nil, "committed batches beyond the position", "lanes: 4", "parallel_triggers: true", "batch_txns: 3")
	})
}

// kill9 runs the test; certs, when set, serve and reach both servers over
// TLS only.
func kill9(t *testing.T, certs *testenv.Certs, wantLog string, extra ...string) {
	testenv.Require(t)
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, TLS: certs})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	// Same tables on both sides; the source's triggers count into
	// audit_src (replicated like any table), the target's into audit.
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	testenv.Exec(t, tgtDB, workload.Schema("shop")...)
	testenv.Exec(t, srcDB, auditTriggers("shop", "audit_src")...)
	testenv.Exec(t, tgtDB, auditLog("audit_src")...)
	testenv.Exec(t, tgtDB, auditTriggers("shop", "audit")...)
	// A foreign key chain with ON DELETE CASCADE and SET NULL, and a
	// trigger both sides have (the target restored from a snapshot): the
	// cascades must run on the target (their rows are in no binlog) and
	// the trigger must not fire again there (plog's key would clash).
	for _, db := range []*sql.DB{srcDB, tgtDB} {
		testenv.Exec(t, db, "CREATE TABLE shop.parents (id INT PRIMARY KEY, v INT)",
			"CREATE TABLE shop.kids (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES shop.parents (id) ON DELETE CASCADE ON UPDATE CASCADE)",
			"CREATE TABLE shop.orphans (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES shop.parents (id) ON DELETE SET NULL ON UPDATE SET NULL)",
			"CREATE TABLE shop.plog (n INT AUTO_INCREMENT PRIMARY KEY, pid INT)",
			"CREATE TRIGGER shop.parents_log AFTER INSERT ON shop.parents FOR EACH ROW INSERT INTO shop.plog (pid) VALUES (NEW.id)")
	}
	if slices.Contains(extra, "lanes: 4") {
		// Batches that take uneven time on the target, so lanes commit
		// out of order and kills land while batches beyond the watermark
		// have committed (the case the lanes' rows exist for).
		testenv.Exec(t, tgtDB, "CREATE TRIGGER shop.slow_counters BEFORE UPDATE ON shop.counters FOR EACH ROW SET @slow = SLEEP(RAND() * 0.02)")
	}

	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint(), extra...)
	logPath := filepath.Join(t.TempDir(), "sync.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	// The target holds everything up to here; the workload starts after.
	var startPos string
	if err := srcDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&startPos); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var werr error
	written := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(written)
		gen := workload.New(srcDB, "shop", 9)
		for i := 0; i < 3000 && ctx.Err() == nil; i++ {
			if werr = gen.Txn(ctx); werr != nil {
				return
			}
			if i%10 == 5 {
				if werr = familyTxn(srcDB, i/10); werr != nil {
					return
				}
			}
			if i%10 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	args := []string{"sync", "--config", cfg, "--start-gtid", startPos}
	kills := 0
	// Kill at least 12 times, and keep killing while the source takes writes.
	for kills < 12 || !closed(written) {
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rnd.IntN(900)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		args = []string{"sync", "--config", cfg} // the checkpoint decides from now on
	}
	wg.Wait()
	if werr != nil {
		t.Fatalf("workload: %v", werr)
	}
	// Let a last run finish the job.
	out, err := exec.Command(bin, "catchup", "--config", cfg, "--timeout", "2m").CombinedOutput()
	if err != nil {
		logs, _ := os.ReadFile(logPath)
		t.Fatalf("final catchup: %v\n%s\nsync logs:\n%s", err, out, logs)
	}
	t.Logf("%d kills; %s", kills, out)

	logs, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logs), wantLog) {
		t.Errorf("the sync logs never say %q:\n%.3000s", wantLog, logs)
	}
	// A killed process keeps everything the relay appended, and the relay
	// appends a transaction before the applier sees it: after any kill
	// the relay still covers what the target applied.
	if n := strings.Count(string(logs), "relay does not cover"); n > 0 {
		t.Errorf("%d of %d restarts found the relay short of what the target applied", n, kills)
	}
	// How often a kill left lanes' batches committed beyond the watermark
	// (a hole: a later batch committed before an earlier one). The window
	// is milliseconds wide, so not every run sees one;
	// syncer.TestLanesRestartSkipsWhatLanesCommittedBeyond makes one.
	if n := strings.Count(string(logs), "committed batches beyond the position"); n > 0 {
		t.Logf("%d restarts found batches committed beyond the watermark", n)
	}
	if certs != nil {
		assertEncrypted(t, srcDB, tgtDB)
		if strings.Contains(string(logs), "PRIVATE KEY") {
			t.Errorf("the logs hold a private key")
		}
	}
	srcCounts, tgtCounts := auditCounts(t, srcDB, "audit_src"), auditCounts(t, tgtDB, "audit")
	if fmt.Sprint(srcCounts) != fmt.Sprint(tgtCounts) {
		t.Errorf("row changes differ:\nsource %v\ntarget %v", srcCounts, tgtCounts)
	} else {
		t.Logf("row changes on both sides: %v", srcCounts)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "audit_src")
}

// familyTxn writes parents and children, or deletes an even parent, or
// re-keys an odd one (cascading to its children there).
func familyTxn(db *sql.DB, i int) error {
	var q []string
	switch i % 3 {
	case 0:
		q = []string{fmt.Sprintf("INSERT INTO shop.parents VALUES (%d, 0)", i),
			fmt.Sprintf("INSERT INTO shop.kids VALUES (%d, %d), (%d, %d)", 2*i, i, 2*i+1, i),
			fmt.Sprintf("INSERT INTO shop.orphans VALUES (%d, %d)", i, i)}
	case 1:
		q = []string{fmt.Sprintf("DELETE FROM shop.parents WHERE id = %d AND id %% 2 = 0", i-7)}
	case 2:
		q = []string{fmt.Sprintf("UPDATE shop.parents SET id = id + 100000 WHERE id = %d AND id %% 2 = 1", i-5)}
	}
	for _, s := range q {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
