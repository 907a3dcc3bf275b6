package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
)

// Full load of 8 tables (one over 1M rows) while the source takes writes,
// killed with SIGKILL part-way and resumed (not restarted), then the stream
// from the first snapshot's position: verify says equal. Over TLS (both
// servers refuse plaintext; verify-identity with a client certificate):
// the load's snapshot workers, the stream and verify all encrypt.
func TestLoadKillResumeAndStream(t *testing.T) {
	testenv.Require(t)
	bin := buildBinary(t)
	certs := testenv.NewTestCerts(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, TLS: certs})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 51)
	if err := gen.Run(context.Background(), 500); err != nil {
		t.Fatal(err)
	}
	// big: 2^20 rows, by doubling.
	testenv.Exec(t, srcDB, "CREATE DATABASE bulk",
		"CREATE TABLE bulk.big (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) NOT NULL, f FLOAT NOT NULL)",
		"INSERT INTO bulk.big (v, f) VALUES ('seed', 0.1)")
	for i := 0; i < 20; i++ {
		testenv.Exec(t, srcDB, "INSERT INTO bulk.big (v, f) SELECT CONCAT('r', id), f * 1.5 FROM bulk.big")
	}
	for i := 1; i <= 4; i++ {
		testenv.Exec(t, srcDB, fmt.Sprintf("CREATE TABLE bulk.small%d (k CHAR(4) PRIMARY KEY, n INT)", i),
			fmt.Sprintf("INSERT INTO bulk.small%d VALUES ('a', 1), ('b', 2), ('c', %d)", i, i))
	}
	var total int64
	if err := srcDB.QueryRow("SELECT COUNT(*) FROM bulk.big").Scan(&total); err != nil || total < 1<<20 {
		t.Fatalf("big has %d rows (%v)", total, err)
	}
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())

	// Writes go on during the whole load.
	stopWrites := writeInBackground(gen, 3*time.Millisecond)

	first := exec.Command(bin, "load", "--config", cfg, "--chunk", "20000")
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once part of big is on the target.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int64
		_ = tgtDB.QueryRow("SELECT COUNT(*) FROM bulk.big").Scan(&n)
		if n > total/5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load did not get going:\n%s", firstOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()

	out, err := exec.Command(bin, "load", "--config", cfg, "--chunk", "20000").CombinedOutput()
	if err != nil {
		t.Fatalf("resumed load: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`loaded (\d+) rows`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no row count in\n%s", out)
	}
	if n, _ := strconv.ParseInt(string(m[1]), 10, 64); n >= total {
		t.Errorf("the resumed load copied %d rows of %d in big alone: it started over", n, total)
	}
	t.Logf("resumed load: %s", bytes.TrimSpace(out))
	// Stream from the first snapshot (idempotent until the second), while writes go on.
	if code, _, stderr := runCLI("catchup", "--config", cfg, "--timeout", "2m"); code != 0 {
		t.Fatalf("catchup: %s", stderr)
	}
	if err := stopWrites(); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("catchup", "--config", cfg, "--timeout", "2m"); code != 0 {
		t.Fatalf("final catchup: %s", stderr)
	}
	if code, out, stderr := runCLI("verify", "--config", cfg, "--no-wait"); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "bulk")
}
