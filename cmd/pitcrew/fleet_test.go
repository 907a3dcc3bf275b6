package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 'fleet plan' of the documented example: the waves, the after-ordering,
// every database's runbook; no network.
func TestFleetPlanExample(t *testing.T) {
	code, stdout, stderr := runCLI("fleet", "plan", "--fleet", "../../examples/fleet.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"fleet estate: 3 databases, 2 applications, 2 waves (copies 2 at once, cut-overs 4 at once, quiet hours 01:00-05:00 Europe/Berlin",
		"wave 1: shop (orders, users; hook: ./move-shop.sh)",
		"wave 2: blog (posts; waits for 'pitcrew fleet confirm --application blog')",
		"database users (application shop, wave 1):",
		"migration posts: 10 steps",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
}

// Bad inventories: one line naming the cause and the fix, exit 1, and
// nothing written.
func TestFleetBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ yml, want string }{
		{"name: estate\ndatabases: []\nappliactions: []\n", `unknown key "appliactions" at line 3`},
		{`name: estate
data_dir: ` + dir + `/data
databases:
  - {name: a, migration: {source: {database: {host: h1}}, target: {database: {host: h2}}}}
applications:
  - {name: x, databases: [a], after: [y]}
  - {name: y, databases: [a]}
`, "application x is after y, but they move together"},
	} {
		path := filepath.Join(dir, "fleet.yaml")
		os.WriteFile(path, []byte(c.yml), 0o600)
		for _, sub := range []string{"plan", "apply", "manifests"} {
			code, _, stderr := runCLI("fleet", sub, "--fleet", path, "--out", filepath.Join(dir, "out"))
			if code != exitError || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("fleet %s: exit %d, stderr %q; want one line with %q", sub, code, stderr, c.want)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("a refused fleet left files behind: %v", entries)
		}
	}
}
