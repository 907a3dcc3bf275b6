package main

import (
	"bytes"
	"strings"
	"testing"
)

// Every command answers --help with its usage and exit code 0, without
// touching anything.
func TestHelpEveryCommand(t *testing.T) {
	for _, cmd := range []string{"sync", "catchup", "status", "preflight", "bench", "load", "verify", "binlog",
		"skip", "bidi", "conflicts", "sandbox", "migrate", "fleet"} {
		var out, errOut bytes.Buffer
		code := run([]string{cmd, "--help"}, &out, &errOut)
		all := out.String() + errOut.String()
		if code != exitOK || !strings.Contains(all, "Usage: pitcrew "+cmd) {
			t.Errorf("pitcrew %s --help: exit %d, output %q", cmd, code, all)
		}
	}
}
