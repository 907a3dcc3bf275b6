package main

import (
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// --until stops at a chosen position; a goal the source never reaches ends
// with --timeout: exit 2 and the remaining gap on stderr.
// Also over TLS: servers that refuse plaintext, every connection
// verify-identity with a client certificate.
func TestCatchupUntilAndTimeout(t *testing.T) {
	t.Run("plain", func(t *testing.T) { catchupUntilAndTimeout(t, nil) })
	t.Run("over TLS", func(t *testing.T) { catchupUntilAndTimeout(t, testenv.NewTestCerts(t)) })
}

func catchupUntilAndTimeout(t *testing.T, certs *testenv.Certs) {
	src := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, TLS: certs})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	if err := workload.New(srcDB, "shop", 2).Run(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())

	code, _, stderr := runCLI("catchup", "--config", cfg, "--start-from", "beginning", "--until", "1-1-50")
	if code != 0 {
		t.Fatalf("--until: exit %d: %s", code, stderr)
	}
	var pos string
	if err := tgtDB.QueryRow("SELECT gtid_set FROM _pitcrew.progress WHERE channel = 'test'").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	// The last batch may run past the goal, never short of it.
	if !gtid.MustParse(gtid.MariaDB, pos).Contains(gtid.MustParse(gtid.MariaDB, "1-1-50")) {
		t.Errorf("stopped at %s, before 1-1-50", pos)
	}

	code, _, stderr = runCLI("catchup", "--config", cfg, "--until", "1-1-999999", "--timeout", "2s")
	if code != exitTimeout {
		t.Fatalf("exit %d, want %d: %s", code, exitTimeout, stderr)
	}
	last := strings.TrimSpace(stderr)
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.Contains(last, "transactions behind") || !strings.Contains(last, "1-1-999999") {
		t.Errorf("timeout line does not show the gap: %q", last)
	}
	if certs != nil {
		assertEncrypted(t, srcDB, tgtDB)
	}
}
