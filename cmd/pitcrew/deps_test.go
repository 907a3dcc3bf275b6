package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkTesting: the pitcrew binary links neither the testing
// package nor the test helpers built on it (testenv, mysqltest); the sandbox
// and bench start their servers through internal/devtools/mariadb.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".").Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, msg)
	}
	forbidden := func(pkg string) bool {
		return pkg == "testing" || strings.HasSuffix(pkg, "/internal/devtools/testenv") || strings.HasSuffix(pkg, "/internal/devtools/mysqltest")
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list -deps listed only %d packages:\n%s", len(lines), out)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if forbidden(f[0]) {
			t.Errorf("the binary links %s", f[0])
		}
		for _, imp := range f[1:] {
			if forbidden(imp) {
				t.Errorf("%s imports %s", f[0], imp)
			}
		}
	}
}
