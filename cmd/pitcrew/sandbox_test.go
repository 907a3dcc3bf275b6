package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// The demo's path through the CLI: sandbox up, workload, catchup, status,
// compare, down; plain, and with --tls (servers refusing plaintext, the
// written pitcrew.yaml reaching them with verify-identity, preflight
// reporting the encryption).
func TestSandboxDemoPath(t *testing.T) {
	t.Run("plain", func(t *testing.T) { sandboxDemoPath(t) })
	t.Run("tls", func(t *testing.T) { sandboxDemoPath(t, "--tls") })
}

func sandboxDemoPath(t *testing.T, upFlags ...string) {
	testenv.Require(t)
	dir, err := os.MkdirTemp("", "pitcrew-sb-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sb := filepath.Join(dir, "sb")
	step := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(args...)
		if code != 0 {
			t.Fatalf("pitcrew %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	up := append([]string{"sandbox", "up", "--dir", sb}, upFlags...)
	out := step(up...)
	defer runCLI("sandbox", "down", "--dir", sb) //nolint:errcheck
	if strings.Count(out, "running") != 2 || !strings.Contains(out, "root@tcp(127.0.0.1:") {
		t.Fatalf("sandbox up printed:\n%s", out)
	}
	// A second `up` leaves running servers alone.
	if again := step(up...); again != out {
		t.Errorf("second up changed the sandbox:\n%s\nvs\n%s", again, out)
	}
	step("sandbox", "workload", "--dir", sb, "--txns", "200")
	cfg := filepath.Join(sb, "pitcrew.yaml")
	step("catchup", "--config", cfg, "--start-from", "beginning")
	if len(upFlags) > 0 {
		yaml, _ := os.ReadFile(cfg)
		if !strings.Contains(string(yaml), "mode: verify-identity") || !strings.Contains(out, "--ssl-ca=") {
			t.Errorf("a TLS sandbox's config or client line lacks TLS:\n%s\n%s", yaml, out)
		}
		_, pf, _ := runCLI("preflight", "--config", cfg)
		for _, side := range []string{"source", "target"} {
			if !strings.Contains(pf, "PASS   "+side+"  tls") || !strings.Contains(pf, "encrypted: TLSv1.") {
				t.Errorf("preflight does not report the %s's TLS:\n%s", side, pf)
			}
		}
		t.Logf("preflight:\n%s", pf)
	}
	if st := step("status", "--config", cfg); !strings.Contains(st, "not-running") {
		t.Errorf("status:\n%s", st)
	}
	if cmp := step("sandbox", "compare", "--dir", sb); !strings.Contains(cmp, "all 3 tables equal") {
		t.Errorf("compare:\n%s", cmp)
	}
	step("sandbox", "down", "--dir", sb)
	if _, err := os.Stat(sb); !os.IsNotExist(err) {
		t.Errorf("sandbox dir still there after down: %v", err)
	}
	if code, _, errOut := runCLI("sandbox", "status", "--dir", sb); code == 0 || !strings.Contains(errOut, "sandbox up") {
		t.Errorf("status of a removed sandbox: exit %d: %s", code, errOut)
	}
}
