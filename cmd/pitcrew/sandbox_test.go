package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/testenv"
)

// The demo's path through the CLI: sandbox up, workload, catchup, status,
// compare, down.
func TestSandboxDemoPath(t *testing.T) {
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
	out := step("sandbox", "up", "--dir", sb)
	defer runCLI("sandbox", "down", "--dir", sb) //nolint:errcheck
	if strings.Count(out, "running") != 2 || !strings.Contains(out, "root@tcp(127.0.0.1:") {
		t.Fatalf("sandbox up printed:\n%s", out)
	}
	// A second `up` leaves running servers alone.
	if again := step("sandbox", "up", "--dir", sb); again != out {
		t.Errorf("second up changed the sandbox:\n%s\nvs\n%s", again, out)
	}
	step("sandbox", "workload", "--dir", sb, "--txns", "200")
	cfg := filepath.Join(sb, "pitcrew.yaml")
	step("catchup", "--config", cfg, "--start-from", "beginning")
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
