package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/jobs/preflight"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

func TestPreflightGoodPair(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--expire-logs-days=7"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	code, out, errOut := runCLI("preflight", "--config", cfg)
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 {
			lines[strings.Join(f[:3], " ")] = true
		}
	}
	for _, want := range []string{"PASS source binlog_format", "PASS source binlog", "PASS both max_allowed_packet", "PASS source privileges", "PASS target privileges"} {
		if !lines[want] {
			t.Errorf("no %q line in\n%s", want, out)
		}
	}
}

// A deliberately misconfigured source (and a target with a small packet):
// every problem is a FAIL or WARN line that carries its fix.
func TestPreflightMisconfigured(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1, BinlogFormat: "MIXED", RowMetadata: "MINIMAL",
		Extra: []string{"--binlog-row-image=MINIMAL", "--gtid-strict-mode=0", "--max-allowed-packet=64M"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--max-allowed-packet=1M"}})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB,
		"CREATE DATABASE app",
		"CREATE TABLE app.nopk (a INT) ENGINE=InnoDB",
		"CREATE TABLE app.old (id INT PRIMARY KEY) ENGINE=MyISAM",
		// What RDS answers when 'binlog retention hours' was never set.
		`CREATE PROCEDURE mysql.rds_show_configuration() SELECT 'binlog retention hours' AS name, NULL AS value, 'binlog retention' AS description`,
		// A replication user without REPLICATION SLAVE.
		"CREATE USER 'repl'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT, BINLOG MONITOR ON *.* TO 'repl'@'%'",
		"GRANT EXECUTE ON PROCEDURE mysql.rds_show_configuration TO 'repl'@'%'",
	)
	repl := conn.Endpoint{Host: "127.0.0.1", Port: src.Port, User: "repl", Password: "pw"}
	cfg := writeConfig(t, repl, tgt.Endpoint(), "server_id: 1")
	code, out, _ := runCLI("preflight", "--config", cfg, "--json")
	if code != exitError {
		t.Fatalf("exit %d, want %d\n%s", code, exitError, out)
	}
	var rs []preflight.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	got := map[string]preflight.Result{}
	for _, r := range rs {
		got[r.Side+" "+r.Check] = r
	}
	want := []struct{ key, level, fix string }{
		{"source binlog_format", preflight.Fail, "binlog_format='ROW'"},
		{"source binlog_row_image", preflight.Fail, "binlog_row_image='FULL'"},
		{"source binlog_row_metadata", preflight.Warn, "binlog_row_metadata='FULL'"},
		{"source gtid_strict_mode", preflight.Warn, "gtid_strict_mode=1"},
		{"source binlog retention", preflight.Fail, "CALL mysql.rds_set_configuration('binlog retention hours', 168);"},
		{"source server_id", preflight.Fail, "server_id"},
		{"source privileges", preflight.Fail, "GRANT REPLICATION SLAVE"},
		{"source primary keys", preflight.Warn, "primary key"},
		{"source engines", preflight.Warn, "ENGINE=InnoDB"},
		{"both max_allowed_packet", preflight.Fail, "max_allowed_packet="},
	}
	for _, w := range want {
		r, ok := got[w.key]
		if !ok {
			t.Errorf("no %q check", w.key)
			continue
		}
		if r.Level != w.level || !strings.Contains(r.Fix, w.fix) {
			t.Errorf("%s: %s %q fix %q; want %s with %q", w.key, r.Level, r.Detail, r.Fix, w.level, w.fix)
		}
	}
	if d := got["source primary keys"].Detail; !strings.Contains(d, "app.nopk") {
		t.Errorf("the table without a key is not named: %q", d)
	}
	if d := got["source engines"].Detail; !strings.Contains(d, "app.old (MyISAM)") {
		t.Errorf("the MyISAM table is not named: %q", d)
	}
}

// Preflight against a channel that is running: its own replica connection,
// registered under the channel's name, is not a server_id clash; a
// stranger with the same server_id still is.
func TestPreflightBesideItsRunningChannel(t *testing.T) {
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--expire-logs-days=7"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB := testenv.MustDB(t, src)
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint(), "server_id: 4242")
	cmd := exec.Command(bin, "sync", "--config", cfg, "--start-from", "now")
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	within(t, 30*time.Second, "the channel's replica to register on the source", func() bool {
		var n int
		srcDB.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'").Scan(&n)
		return n > 0
	})
	code, out, errOut := runCLI("preflight", "--config", cfg)
	if code != 0 || !strings.Contains(out, "channel test is running") {
		t.Fatalf("exit %d: preflight beside its own running channel\n%s%s\n%s", code, out, errOut, logs.String())
	}
	// Another channel's config with the same server_id: a clash.
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(string(body), "channel: test", "channel: other", 1)
	otherCfg := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(otherCfg, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI("preflight", "--config", otherCfg)
	if code == 0 || !strings.Contains(out, "a replica with server_id 4242 is connected") {
		t.Fatalf("exit %d: a stranger with the same server_id must FAIL\n%s", code, out)
	}
}
