package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

func writeBidiConfig(t *testing.T, a, b conn.Endpoint, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf(`nodes:
  - name: a
    host: %s
    port: %d
    user: root
%s  - name: b
    host: %s
    port: %d
    user: root
%sdata_dir: %s
`, a.Host, a.Port, tlsYAMLAt("    ", a.TLS), b.Host, b.Port, tlsYAMLAt("    ", b.TLS), filepath.Join(dir, "data")) + strings.Join(extra, "\n") + "\n"
	path := filepath.Join(dir, "bidi.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Offsets: check finds the unsafe defaults, sync refuses to run both ways
// with them, plan prints what fixes them, and check then passes.
func TestBidiPlanCheckRefuse(t *testing.T) {
	a := testenv.New(t, testenv.Options{ServerID: 1})
	b := testenv.New(t, testenv.Options{ServerID: 2})
	adb, bdb := testenv.MustDB(t, a), testenv.MustDB(t, b)
	testenv.Exec(t, adb, "CREATE DATABASE app", "CREATE TABLE app.tags (name VARCHAR(20) PRIMARY KEY)", "CREATE TABLE app.ids (id INT AUTO_INCREMENT PRIMARY KEY)")
	cfg := writeBidiConfig(t, a.Endpoint(), b.Endpoint(), `http_addr: "off"`)

	code, out, _ := runCLI("bidi", "check", "--config", cfg)
	if code != exitError || !strings.Contains(out, "UNSAFE") || !strings.Contains(out, "RISK   node a: app.tags") {
		t.Fatalf("check on default offsets: exit %d\n%s", code, out)
	}
	code, _, stderr := runCLI("bidi", "sync", "--config", cfg, "--start-from", "now")
	if code != exitError || !strings.Contains(stderr, "refusing to run both directions") || !strings.Contains(stderr, "--force") {
		t.Fatalf("sync with unsafe offsets: exit %d: %s", code, stderr)
	}
	assertNoProgressSchema(t, bdb)

	code, out, _ = runCLI("bidi", "plan", "--config", cfg)
	if code != 0 || !strings.Contains(out, "SET GLOBAL auto_increment_offset = 2;") || !strings.Contains(out, "parameter group") {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	for i, db := range []*sql.DB{adb, bdb} {
		testenv.Exec(t, db, "SET GLOBAL auto_increment_increment = 2", fmt.Sprintf("SET GLOBAL auto_increment_offset = %d", i+1))
	}
	if code, out, _ = runCLI("bidi", "check", "--config", cfg); code != 0 || !strings.Contains(out, "SAFE") {
		t.Fatalf("check after the plan: exit %d\n%s", code, out)
	}
}

// kill -9 of `pitcrew bidi sync` while both nodes take writes, again and
// again: no loop (executed sets go flat), no loss, no double apply. Each
// node's audit triggers count every row change made on it, locally or by
// pitcrew; with disjoint writers both nodes must count the same.
//
// Over TLS: both nodes refuse plaintext, and every connection (streams,
// appliers, checks) is verify-identity with a client certificate.
func TestBidiKill9(t *testing.T) {
	testenv.Require(t)
	bin := buildBinary(t)
	certs := testenv.NewTestCerts(t)
	// Offsets from the start (SET GLOBAL reaches only new sessions).
	a := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	b := testenv.New(t, testenv.Options{ServerID: 2, TLS: certs, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	dbs := []*sql.DB{testenv.MustDB(t, a), testenv.MustDB(t, b)}
	for i, db := range dbs {
		node := string(rune('a' + i))
		testenv.Exec(t, db, "CREATE DATABASE app", "CREATE TABLE app.acc (id BIGINT AUTO_INCREMENT PRIMARY KEY, node CHAR(1) NOT NULL, n INT NOT NULL)",
			"CREATE DATABASE audit",
			"CREATE TABLE audit.counts_a (op CHAR(6) PRIMARY KEY, n BIGINT NOT NULL)",
			"CREATE TABLE audit.counts_b (op CHAR(6) PRIMARY KEY, n BIGINT NOT NULL)")
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			testenv.Exec(t, db, fmt.Sprintf("CREATE TRIGGER app.audit_%s AFTER %s ON app.acc FOR EACH ROW INSERT INTO audit.counts_%s VALUES ('%s', 1) ON DUPLICATE KEY UPDATE n = n + 1", op, op, node, op))
		}
	}
	cfg := writeBidiConfig(t, a.Endpoint(), b.Endpoint(), "batch_txns: 10", "relay_quota_bytes: 8192", "http_addr: "+freeAddr(t))
	// Both nodes hold the same (empty) data: every direction starts now.
	logPath := filepath.Join(t.TempDir(), "bidi.log")
	logf, _ := os.Create(logPath)
	defer logf.Close()
	startSync := func() *exec.Cmd {
		cmd := exec.Command(bin, "bidi", "sync", "--config", cfg, "--start-from", "now")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// The first run records where each channel starts before any write:
	// in sync once both progress rows are on their targets.
	first := startSync()
	waitBidiInSync(t, cfg, 30*time.Second, logPath, "the first run did not record where the channels start")
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	written := make(chan struct{})
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ownRows(ctx, db, string(rune('a'+i)), 600)
		}()
	}
	go func() { wg.Wait(); close(written) }()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	kills := 0
	for kills < 10 || !closed(written) {
		cmd := startSync()
		// Deliberate: a random lifetime, so the kills land anywhere (in
		// start-up, mid-batch, between commits).
		time.Sleep(time.Duration(200+rnd.IntN(900)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A last run until both directions are in sync, then a clean stop.
	last := startSync()
	waitBidiInSync(t, cfg, 90*time.Second, logPath, "not in sync after the kills")
	// Deliberate: time passes to prove that the executed sets stay flat.
	execA, execB := executedPos(t, dbs[0]), executedPos(t, dbs[1])
	time.Sleep(2 * time.Second)
	if executedPos(t, dbs[0]) != execA || executedPos(t, dbs[1]) != execB {
		t.Errorf("executed sets still moving: a %s -> %s, b %s -> %s", execA, executedPos(t, dbs[0]), execB, executedPos(t, dbs[1]))
	}
	_ = last.Process.Signal(syscall.SIGTERM)
	if err := last.Wait(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
	t.Logf("%d kills", kills)
	assertEncrypted(t, dbs...)
	testenv.AssertTablesEqual(t, dbs[0], dbs[1], "app")
	// The writers never touch the same row: any conflict on app.acc would
	// be a transaction applied twice. (The audit tables do conflict, by
	// design: a node's triggers also fire for rows pitcrew applies there,
	// and those writes belong to echo transactions, which never go back.)
	for i, db := range dbs {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM _pitcrew.conflicts WHERE tbl LIKE 'app.%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("node %c: %d conflicts between writers that never touch the same row", 'a'+i, n)
			lr, _ := db.Query("SELECT channel, gtid, tbl, op, reason, source_image, target_image FROM _pitcrew.conflicts WHERE tbl LIKE 'app.%' ORDER BY id LIMIT 3")
			for lr.Next() {
				var ch, g, tbl, op, reason, src, tgt string
				lr.Scan(&ch, &g, &tbl, &op, &reason, &src, &tgt)
				t.Logf("  %s %s %s %s %s src=%s tgt=%s", ch, g, tbl, op, reason, src, tgt)
			}
			lr.Close()
		}
	}
	ca, cb := countsOf(t, dbs[0], "audit.counts_a"), countsOf(t, dbs[1], "audit.counts_b")
	if ca != cb {
		t.Errorf("row changes counted on a %s, on b %s", ca, cb)
	} else {
		t.Logf("row changes on each node: %s", ca)
	}
}

// ownRows inserts rows and updates/deletes only rows this node inserted:
// the writers never conflict.
func ownRows(ctx context.Context, db *sql.DB, node string, n int) error {
	var ids []int64
	r := rand.New(rand.NewPCG(uint64(node[0]), 3))
	for i := 0; i < n && ctx.Err() == nil; i++ {
		switch op := r.IntN(6); {
		case op < 3 || len(ids) < 3:
			res, err := execRetry(db, "INSERT INTO app.acc (node, n) VALUES (?, ?)", node, i)
			if err != nil {
				return err
			}
			id, _ := res.LastInsertId()
			ids = append(ids, id)
		case op < 5:
			if _, err := execRetry(db, "UPDATE app.acc SET n = n + 1 WHERE id = ?", ids[r.IntN(len(ids))]); err != nil {
				return err
			}
		default:
			k := r.IntN(len(ids))
			if _, err := execRetry(db, "DELETE FROM app.acc WHERE id = ?", ids[k]); err != nil {
				return err
			}
			ids = append(ids[:k], ids[k+1:]...)
		}
		if i%20 == 0 {
			time.Sleep(10 * time.Millisecond) // the application's pace, spread over the kills
		}
	}
	return nil
}

// waitBidiInSync polls `bidi status` until both directions are in sync,
// failing the test with what, the last status and the log at logPath after
// timeout.
func waitBidiInSync(t *testing.T, cfg string, timeout time.Duration, logPath, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, out, _ := runCLI("bidi", "status", "--config", cfg, "--json")
		var st struct {
			InSync bool `json:"in_sync"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.InSync {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logPath)
			t.Fatalf("%s: %s\n%.4000s", what, out, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func executedPos(t *testing.T, db *sql.DB) string {
	var s string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func countsOf(t *testing.T, db *sql.DB, table string) string {
	rows, err := db.Query("SELECT op, n FROM " + table + " ORDER BY op")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var op string
		var n int64
		rows.Scan(&op, &n)
		fmt.Fprintf(&b, "%s=%d ", op, n)
	}
	return b.String()
}

// execRetry retries deadlocks and lock waits, as an application would.
func execRetry(db *sql.DB, q string, args ...any) (sql.Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := db.Exec(q, args...)
		if err == nil {
			return res, nil
		}
		if c := conn.Code(err); (c != 1213 && c != 1205) || attempt > 20 {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond) // back off, as an application would
	}
}

// A parked conflict waits in the ledger for a person: the same row updated
// on both nodes while the channels were stopped. `conflicts list` shows
// both sides' entries, `resolve --take source` writes the source's row (and
// replicates it), `--take target` keeps the row; then the nodes are equal.
func TestConflictsParkAndResolve(t *testing.T) {
	testenv.Require(t)
	bin := buildBinary(t)
	a := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	b := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	adb, bdb := testenv.MustDB(t, a), testenv.MustDB(t, b)
	for _, db := range []*sql.DB{adb, bdb} {
		testenv.Exec(t, db, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)")
	}
	// bidi status asks the running service (echoes never reach a target's
	// progress row; the service knows how far each direction got).
	cfg := writeBidiConfig(t, a.Endpoint(), b.Endpoint(), "conflicts:", "  default: park", "http_addr: "+freeAddr(t))
	inSync := func() bool {
		code, out, _ := runCLI("bidi", "status", "--config", cfg, "--json")
		return code == 0 && strings.Contains(out, `"in_sync":true`)
	}
	parked := func(db *sql.DB) int {
		var n int
		db.QueryRow("SELECT COUNT(*) FROM _pitcrew.conflicts WHERE outcome = 'parked'").Scan(&n)
		return n
	}
	run := func(until func() bool) {
		t.Helper()
		cmd := exec.Command(bin, "bidi", "sync", "--config", cfg, "--start-from", "now")
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !until() {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_, st, stErr := runCLI("bidi", "status", "--config", cfg)
				t.Fatalf("condition not reached (a %q, b %q, parked %d/%d); status:\n%s%s\nlogs:\n%s", rowValue(adb), rowValue(bdb), parked(adb), parked(bdb), st, stErr, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("bidi sync: %v\n%s", err, logs.String())
		}
	}
	// Equal nodes to start from; the first run records each channel's start.
	testenv.Exec(t, adb, "INSERT INTO app.t VALUES (1, 'one')")
	testenv.Exec(t, bdb, "INSERT INTO app.t VALUES (1, 'one')")
	run(inSync)
	// Both nodes change the row while nothing replicates.
	testenv.Exec(t, adb, "UPDATE app.t SET v = 'from-a' WHERE id = 1")
	testenv.Exec(t, bdb, "UPDATE app.t SET v = 'from-b' WHERE id = 1")
	run(func() bool { return parked(adb) == 1 && parked(bdb) == 1 && inSync() })
	if rowValue(adb) != "from-a" || rowValue(bdb) != "from-b" {
		t.Fatalf("park must keep each node's row: a %q, b %q", rowValue(adb), rowValue(bdb))
	}
	code, out, _ := runCLI("conflicts", "list", "--config", cfg, "--outcome", "parked", "--json")
	var list []struct {
		Node string `json:"node"`
		ID   int64  `json:"id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("conflicts list: exit %d\n%s", code, out)
	}
	var onB int64
	for _, e := range list {
		if e.Node == "b" {
			onB = e.ID
		}
	}
	if code, out, _ = runCLI("conflicts", "show", fmt.Sprint(onB), "--config", cfg, "--node", "b"); code != 0 || !strings.Contains(out, `"v": "from-a"`) {
		t.Fatalf("conflicts show: exit %d\n%s", code, out)
	}
	// On b, take what a sent; the write replicates back to a.
	if code, out, errOut := runCLI("conflicts", "resolve", fmt.Sprint(onB), "--config", cfg, "--node", "b", "--take", "source"); code != 0 {
		t.Fatalf("resolve: exit %d %s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI("conflicts", "resolve", fmt.Sprint(onB), "--config", cfg, "--node", "b", "--take", "source"); code == 0 || !strings.Contains(errOut, "only parked conflicts") {
		t.Errorf("resolving twice: exit %d %s", code, errOut)
	}
	run(inSync)
	// What is still parked on a (its own entry, and b's resolution write
	// arriving against a's row) is settled by keeping a's row.
	rows, err := adb.Query("SELECT id FROM _pitcrew.conflicts WHERE outcome = 'parked'")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if code, out, errOut := runCLI("conflicts", "resolve", fmt.Sprint(id), "--config", cfg, "--node", "a", "--take", "target"); code != 0 {
			t.Fatalf("resolve on a: exit %d %s%s", code, out, errOut)
		}
	}
	if rowValue(adb) != "from-a" || rowValue(bdb) != "from-a" || parked(adb)+parked(bdb) != 0 {
		t.Errorf("after resolving: a %q, b %q, parked %d", rowValue(adb), rowValue(bdb), parked(adb)+parked(bdb))
	}
	testenv.AssertTablesEqual(t, adb, bdb, "app")
}

func rowValue(db *sql.DB) string {
	var v string
	db.QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v)
	return v
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
