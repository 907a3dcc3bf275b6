package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// A DDL pitcrew refuses (here: one that makes a table system-versioned)
// stops the channel with its GTID and the reason; the operator applies it
// by hand, `pitcrew skip` moves past it, and the skip is logged.
func TestRefusedDDLStopsAndSkip(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
		"CREATE TABLE app.hist (id INT PRIMARY KEY) WITH SYSTEM VERSIONING", // refused: its history cannot be written as logged
		"INSERT INTO app.t VALUES (1)")
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	code, _, stderr := runCLI("catchup", "--config", cfg, "--start-from", "beginning")
	m := regexp.MustCompile(`GTID (\d+-\d+-\d+): the statement makes \[app.hist\] system-versioned`).FindStringSubmatch(stderr)
	if code != exitError || m == nil || !strings.Contains(stderr, "pitcrew skip --gtid "+m[1]) || !strings.Contains(stderr, "SYSTEM VERSIONING") {
		t.Fatalf("want a stop naming the GTID, the statement and the skip: exit %d\n%s", code, stderr)
	}
	var tables int
	if err := tgtDB.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'hist'").Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the refused DDL changed the target (%d, %v)", tables, err)
	}
	// The operator does by hand what the statement should have done, and skips it.
	testenv.Exec(t, tgtDB, "CREATE TABLE app.hist (id INT PRIMARY KEY) WITH SYSTEM VERSIONING")
	if code, out, errOut := runCLI("skip", "--config", cfg, "--gtid", m[1]); code != 0 {
		t.Fatalf("skip: exit %d %s%s", code, out, errOut)
	}
	code, _, stderr = runCLI("catchup", "--config", cfg)
	if code != 0 || !strings.Contains(stderr, "skipped by the operator") || !strings.Contains(stderr, m[1]) {
		t.Fatalf("catchup after skip: exit %d\n%s", code, stderr)
	}
	var n int
	if err := tgtDB.QueryRow("SELECT COUNT(*) FROM app.t WHERE id = 1").Scan(&n); err != nil || n != 1 {
		t.Errorf("the row after the skipped DDL: %d %v", n, err)
	}
}
