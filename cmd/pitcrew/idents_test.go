package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// load, verify (chunked by key ranges), verify --repair and the catch-up
// after a load (idempotent until the load's last snapshot) with databases,
// tables and columns, keys among them, named with ?, quotes, backslashes,
// spaces and unicode: the names reach the server as written.
func TestLoadVerifyOddIdentifiers(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	q := conn.QuoteName
	db, names := "d?`'\\ ü", []string{"t?", "quo`te?", `b\?`, "a b", "日本?", "select"}
	testenv.Exec(t, srcDB, "CREATE DATABASE "+q(db))
	for i, n := range names {
		key, col := q(names[(i+1)%len(names)]+"?"), q(names[(i+2)%len(names)])
		tbl := q(db) + "." + q(n)
		testenv.Exec(t, srcDB, fmt.Sprintf("CREATE TABLE %s (%s INT PRIMARY KEY, %s VARCHAR(20), `?` INT)", tbl, key, col))
		for r := 1; r <= 9; r++ {
			testenv.Exec(t, srcDB, fmt.Sprintf("INSERT INTO %s VALUES (%d, '?%d\\'`', %d)", tbl, r, r, r))
		}
	}
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	if code, out, stderr := runCLI("load", "--config", cfg, "--chunk", "4"); code != 0 {
		t.Fatalf("load: exit %d\n%s%s", code, out, stderr)
	}
	for _, n := range names {
		tbl := q(db) + "." + q(n)
		testenv.Exec(t, srcDB, "UPDATE "+tbl+" SET `?` = `?` * 10", "DELETE FROM "+tbl+" WHERE `?` = 30", "INSERT INTO "+tbl+" VALUES (100, '?', 1)")
	}
	if code, out, stderr := runCLI("catchup", "--config", cfg, "--timeout", "2m"); code != 0 {
		t.Fatalf("catchup after the load: exit %d\n%s%s", code, out, stderr)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, db)
	if code, out, stderr := runCLI("verify", "--config", cfg, "--chunk", "3", "--no-wait"); code != 0 || !strings.Contains(out, "equal") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	// Behind pitcrew's back: a row changed, one deleted.
	tbl := q(db) + "." + q(names[0])
	testenv.Exec(t, tgtDB, "UPDATE "+tbl+" SET `?` = -1 WHERE `?` = 40", "DELETE FROM "+tbl+" WHERE `?` = 50")
	if code, out, _ := runCLI("verify", "--config", cfg, "--chunk", "3", "--no-wait"); code != exitError || !strings.Contains(out, names[0]) {
		t.Fatalf("verify after tampering: exit %d\n%s", code, out)
	}
	if code, out, stderr := runCLI("verify", "--config", cfg, "--chunk", "3", "--no-wait", "--repair"); code != 0 || !strings.Contains(out, "repaired") {
		t.Fatalf("verify --repair: exit %d\n%s%s", code, out, stderr)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, db)
}
