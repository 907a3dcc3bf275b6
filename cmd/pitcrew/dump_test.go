package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
)

// The target is loaded from `mariadb-dump --gtid --master-data=2` taken while
// the source takes writes; --start-from-dump starts the stream exactly at
// the dump's position: no gap, no overlap (an overlap would fail on
// duplicate keys, a gap would show in the checksums).
func TestStartFromDumpWhileWriting(t *testing.T) {
	if _, err := exec.LookPath("mariadb-dump"); err != nil {
		testenv.Require(t)
		t.Fatalf("mariadb-dump not found (it comes with mariadb-server): %v", err)
	}
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	// mariadb-dump prints FLOAT with 6 significant digits, so a FLOAT column
	// does not survive a dump and load (DOUBLE does): use DOUBLE here.
	testenv.Exec(t, srcDB, "ALTER TABLE shop.events MODIFY amount DOUBLE NULL")
	gen := workload.New(srcDB, "shop", 21)
	if err := gen.Run(context.Background(), 300); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() { defer wg.Done(); werr = gen.Run(context.Background(), 600) }()

	dump := filepath.Join(t.TempDir(), "shop.sql")
	out, err := exec.Command("sh", "-c", fmt.Sprintf(
		"mariadb-dump -h127.0.0.1 -P%d -uroot --single-transaction --gtid --master-data=2 --databases shop > %s && mariadb -h127.0.0.1 -P%d -uroot < %s",
		src.Port, dump, tgt.Port, dump)).CombinedOutput()
	if err != nil {
		t.Fatalf("dump and load: %v\n%s", err, out)
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	code, _, stderr := runCLI("catchup", "--config", cfg, "--start-from-dump", dump, "--timeout", "2m")
	if code != 0 {
		t.Fatalf("catchup --start-from-dump: exit %d: %s", code, stderr)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
}
