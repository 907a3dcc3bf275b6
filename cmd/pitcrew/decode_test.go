package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

const fixtures = "../../../shared/fixtures/mysql-binlogs"

func TestBinlogDecodeFiles(t *testing.T) {
	code, out, stderr := runCLI("binlog", "decode", filepath.Join(fixtures, "mysql-bin.compressed"), filepath.Join(fixtures, "binlog_transaction_with_GTID_TAG.000001"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"UPDATE demo.movies", "after: int32(1), string(Once Upon a Time in the West)", "string(Western|Action)",
		"GTID 55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3", "INSERT test.orders"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	code, out, _ = runCLI("binlog", "decode", "--json", filepath.Join(fixtures, "json.binlog.000001"))
	if code != 0 || !strings.Contains(out, `"partial":true`) || strings.Count(out, "\n") != 8 {
		t.Errorf("json: exit %d\n%s", code, out)
	}
	code, _, stderr = runCLI("binlog", "decode", filepath.Join(fixtures, "binlog_truncated_event.000001"))
	if code != exitError || !strings.Contains(stderr, "at offset 4") || !strings.Contains(stderr, "truncated") {
		t.Errorf("truncated: exit %d: %s", code, stderr)
	}
}

func TestBinlogDecodeFromServer(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	testenv.Exec(t, testenv.MustDB(t, src), "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, b VARBINARY(4), d DECIMAL(5,2))",
		"INSERT INTO app.t VALUES (1, x'00ff', -1.50)", "UPDATE app.t SET d = 2 WHERE id = 1")
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	code, out, stderr := runCLI("binlog", "decode", "--from-server", "--config", cfg, "--from", "1-1-2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"GTID 1-1-3", "INSERT app.t columns [id b d]", "string(0x00ff)", "string(-1.50)", "GTID 1-1-4", "before:", "after:"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "CREATE DATABASE") {
		t.Errorf("--from 1-1-2 printed what came before:\n%s", out)
	}
}
