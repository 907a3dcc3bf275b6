package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/conn"
	"github.com/pitcrew/pitcrew/internal/preflight"
	"github.com/pitcrew/pitcrew/internal/testenv"
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
