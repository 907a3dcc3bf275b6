package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/syncer"
)

// verify finds exactly the row changed behind pitcrew's back, --repair
// rewrites it, and a table whose character set and collation differ
// between the sides verifies equal when the values are. Over TLS (both
// servers refuse plaintext); TestVerifyOnlineNoFalseDifferences is plain.
func TestVerifyFindsAndRepairs(t *testing.T) {
	certs := testenv.NewTestCerts(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, TLS: certs})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	if err := workload.New(srcDB, "shop", 41).Run(context.Background(), 800); err != nil {
		t.Fatal(err)
	}
	// Same values, other bytes: latin1 + general_ci on the source,
	// utf8mb4 + bin on the target, loaded separately.
	testenv.Exec(t, srcDB, "CREATE DATABASE coll", "CREATE TABLE coll.t (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_general_ci, f FLOAT)",
		"INSERT INTO coll.t VALUES (1, 'café', 1.1), (2, 'Ärger', -0.5), (3, NULL, NULL)")
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint(), "route:", "  exclude: [coll]")
	if code, _, stderr := runCLI("catchup", "--config", cfg, "--start-from", "beginning"); code != 0 {
		t.Fatalf("catchup: %s", stderr)
	}
	testenv.Exec(t, tgtDB, "CREATE DATABASE coll", "CREATE TABLE coll.t (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, f FLOAT)",
		"INSERT INTO coll.t VALUES (1, 'café', 1.1), (2, 'Ärger', -0.5), (3, NULL, NULL)")
	cfgAll := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	code, out, stderr := runCLI("verify", "--config", cfgAll, "--chunk", "100")
	if code != 0 || !strings.Contains(out, "source and target are equal") {
		t.Fatalf("verify of an equal copy: exit %d\n%s%s", code, out, stderr)
	}

	// Behind pitcrew's back: one changed row, one deleted, one added.
	var changed, deleted int
	if err := tgtDB.QueryRow("SELECT MIN(id), MAX(id) FROM shop.accounts").Scan(&changed, &deleted); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, tgtDB,
		"UPDATE shop.accounts SET balance = balance + 0.0001 WHERE id = "+itoa(changed),
		"DELETE FROM shop.accounts WHERE id = "+itoa(deleted),
		"INSERT INTO shop.counters (name, value) VALUES ('intruder', 1)")
	code, out, _ = runCLI("verify", "--config", cfgAll, "--chunk", "100", "--json")
	var rep struct {
		Equal  bool `json:"equal"`
		Tables []struct {
			Table string `json:"table"`
			Diffs []struct {
				Key  map[string]string `json:"key"`
				Kind string            `json:"kind"`
			} `json:"diffs"`
		} `json:"tables"`
	}
	if code != exitError || json.Unmarshal([]byte(out), &rep) != nil || rep.Equal {
		t.Fatalf("verify after tampering: exit %d\n%s", code, out)
	}
	var found []string
	for _, tb := range rep.Tables {
		for _, d := range tb.Diffs {
			found = append(found, tb.Table+" "+d.Kind+" "+d.Key["id"]+d.Key["name"])
		}
	}
	want := []string{"shop.accounts different " + itoa(changed), "shop.accounts missing-on-target " + itoa(deleted), "shop.counters extra-on-target intruder"}
	if strings.Join(found, "|") != strings.Join(want, "|") {
		t.Errorf("differences found:\n%v\nwant\n%v", found, want)
	}
	if code, out, stderr = runCLI("verify", "--config", cfgAll, "--repair"); code != 0 || !strings.Contains(out, "repaired") {
		t.Fatalf("verify --repair: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ = runCLI("verify", "--config", cfgAll); code != 0 {
		t.Fatalf("verify after the repair: exit %d\n%s", code, out)
	}
	var repairs int
	if err := tgtDB.QueryRow("SELECT COUNT(*) FROM _pitcrew.repairs").Scan(&repairs); err != nil || repairs != 3 {
		t.Errorf("repairs recorded: %d %v", repairs, err)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
}

// verify while `pitcrew sync` applies a running workload: no false
// differences.
func TestVerifyOnlineNoFalseDifferences(t *testing.T) {
	testenv.Require(t)
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 42)
	if err := gen.Run(context.Background(), 500); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint(), "http_addr: "+addr)
	sync := exec.Command(bin, "sync", "--config", cfg, "--start-from", "beginning")
	if err := sync.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sync.Process.Signal(syscall.SIGTERM); _ = sync.Wait() }()
	before := executedPos(t, srcDB)
	stopWrites := writeInBackground(gen, 2*time.Millisecond)
	// Verify starts once sync applies the running workload: its /status
	// has the first 500 transactions and some written since.
	waitAppliedBeyond(t, addr, before, 60*time.Second)
	code, out, stderr := runCLI("verify", "--config", cfg, "--chunk", "50")
	if err := stopWrites(); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("verify under load: exit %d\n%s%s", code, out, stderr)
	}
}

// waitAppliedBeyond polls the /status of the sync service at addr until
// its applied GTID set holds pos and more.
func waitAppliedBeyond(t *testing.T, addr, pos string, timeout time.Duration) {
	t.Helper()
	want := gtid.MustParse(gtid.MariaDB, pos)
	deadline := time.Now().Add(timeout)
	var st syncer.Status
	for {
		resp, err := http.Get("http://" + addr + "/status")
		if err == nil {
			st = syncer.Status{}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil {
			if st.State == syncer.StateFailed {
				t.Fatalf("sync failed: %s", st.LastError)
			}
			if have, err := gtid.Parse(gtid.MariaDB, st.AppliedGTIDSet); err == nil && have.Contains(want) && !want.Contains(have) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not apply beyond %s within %s: %+v %v", pos, timeout, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
