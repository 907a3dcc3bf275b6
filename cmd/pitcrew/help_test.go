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
		"skip", "triggers", "bidi", "conflicts", "sandbox", "migrate", "fleet"} {
		var out, errOut bytes.Buffer
		code := run([]string{cmd, "--help"}, &out, &errOut)
		all := out.String() + errOut.String()
		if code != exitOK || !strings.Contains(all, "Usage: pitcrew "+cmd) {
			t.Errorf("pitcrew %s --help: exit %d, output %q", cmd, code, all)
		}
	}
}

// Help is on stdout, as the tools DBAs use: the overview, `pitcrew help
// CMD` and `CMD --help` alike, flags written --name; completion scripts
// come from the same command table.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, errOut := runCLI(args...)
		if code != exitOK || !strings.Contains(out, "pitcrew migrate") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, len(out), errOut)
		}
	}
	for _, args := range [][]string{{"help", "verify"}, {"verify", "--help"}, {"verify", "-h"}} {
		code, out, errOut := runCLI(args...)
		if code != exitOK || !strings.Contains(out, "Usage: pitcrew verify") || !strings.Contains(out, "\n  --config") || errOut != "" {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", args, code, out, errOut)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, _ := runCLI("completion", shell)
		if code != exitOK || !strings.Contains(out, "pitcrew") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
	code, out, _ := runCLI("__complete", "mig")
	if code != exitOK || !strings.Contains(out, "migrate") {
		t.Errorf("completing 'mig': exit %d %q", code, out)
	}
	if code, _, errOut := runCLI("nope"); code != exitUsage || !strings.Contains(errOut, `unknown command "nope"`) {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, out, _ := runCLI("version"); code != exitOK || !strings.Contains(out, "commit:") {
		t.Errorf("version: exit %d %q", code, out)
	}
}
