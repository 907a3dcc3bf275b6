package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// The console of `pitcrew migrate apply` (server to server): the runbook's
// steps and guardrails, the cut-over waiting for the operator; a rollback
// asked from the page (token, typed name) stops the run and rolls back;
// `resume` waits again, the move is confirmed from the page, and take-down
// shows the drain picture while it waits (rollback then refused).
func TestConsoleMigrationInBrowser(t *testing.T) {
	testenv.Require(t)
	ctx := browser(t, 1360, 1100)
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(10) NOT NULL)", "INSERT INTO app.t (v) VALUES ('a'), ('b')")
	dir := t.TempDir()
	addr := freeAddr(t)
	plan := filepath.Join(dir, "migration.yaml")
	body := fmt.Sprintf(`name: console-move
data_dir: %s
http_addr: %s
console_token: %s
source:
  database: {host: 127.0.0.1, port: %d, user: root}
target:
  database: {host: 127.0.0.1, port: %d, user: root}
options:
  start_from: beginning
  poll_interval: 300ms
  timeout: 120s
  quiet_period: 1h
  rollback_window: 1h
`, filepath.Join(dir, "data"), addr, testToken, src.Port, tgt.Port)
	if err := os.WriteFile(plan, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cmd := exec.Command(bin, "migrate", "apply", "--plan", plan)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	defer func() {
		if t.Failed() {
			screenshot(t, ctx, "console-migrate-failed.png")
			t.Logf("output:\n%s", logs.String())
		}
	}()
	waitListening(t, addr, logs)
	if err := steps(ctx, chromedp.Navigate("http://"+addr+"/"),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken), chromedp.Click(chromedp.CSS("#token-form button")),
		chromedp.WaitVisible(chromedp.CSS(`#rb-steps li[data-step="cutover"]`))); err != nil {
		t.Fatalf("the runbook did not render: %v", err)
	}
	within(t, 60*time.Second, "the cut-over to wait for the operator", func() bool {
		_, err := textOf(ctx, "#rb-confirm")
		return err == nil
	})
	guards, _ := textOf(ctx, "#rb-guards")
	// innerText puts the mark and the name on lines of their own.
	guards = strings.Join(strings.Fields(strings.ReplaceAll(guards, "\n", "")), " ")
	for _, g := range []string{"lag under max_lag", "auto-increment offsets apart", "target readable as a source", "no long source transaction"} {
		if !strings.Contains(guards, "✓"+g) {
			t.Errorf("guardrail %q not shown as passed: %q", g, guards)
		}
	}
	if s, _ := textOf(ctx, `#rb-steps li[data-step="forward"] .when`); !strings.HasPrefix(s, "done") {
		t.Errorf("forward step: %q", s)
	}
	if s, _ := textOf(ctx, `#rb-steps li[data-step="share-key"] .when`); !strings.HasPrefix(s, "skipped") {
		t.Errorf("share-key step of a server move: %q", s)
	}
	if err := steps(ctx, chromedp.WaitVisible(chromedp.CSS(`.channel[data-channel="target-source"]`))); err != nil {
		t.Errorf("the reverse channel is not shown: %v", err)
	}
	screenshot(t, ctx, "console-migrate-cutover.png")
	// A change of mind before the move: rollback from the page stops the
	// run and rolls back (the application never left the source).
	if err := steps(ctx, chromedp.Click(chromedp.CSS("#rb-rollback")), chromedp.WaitVisible(chromedp.CSS("#confirm-input")),
		chromedp.SendKeys(chromedp.CSS("#confirm-input"), "roll back console-move"), chromedp.Click(chromedp.CSS("#confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, logs)
	if out := logs.String(); !strings.Contains(out, "rollback asked from the console") {
		t.Errorf("output:\n%s", out)
	}
	var ro int
	if err := srcDB.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
		t.Errorf("source read_only %d (%v) after the rollback, want 0", ro, err)
	}

	// Again: resume, confirm the move from the page; take-down then waits
	// out the rollback window and looks at the old side.
	logs = &logBuffer{}
	cmd = exec.Command(bin, "migrate", "resume", "--plan", plan)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	waitListening(t, addr, logs)
	within(t, 60*time.Second, "the cut-over to wait for the operator again", func() bool {
		_, err := textOf(ctx, "#rb-confirm")
		return err == nil
	})
	phrase := "the application writes to the target now"
	if err := steps(ctx, chromedp.Click(chromedp.CSS("#rb-confirm")), chromedp.WaitVisible(chromedp.CSS("#confirm-input")),
		chromedp.SendKeys(chromedp.CSS("#confirm-input"), phrase), chromedp.Click(chromedp.CSS("#confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	within(t, 60*time.Second, "take-down to wait with a drain picture", func() bool {
		s, _ := textOf(ctx, "#drain-note")
		w, _ := textOf(ctx, "#rb-wait")
		return strings.Contains(s, "looks") && strings.Contains(w, "rollback window")
	})
	if s, _ := textOf(ctx, `#rb-steps li[data-step="cutover"] .when`); !strings.HasPrefix(s, "done") {
		t.Errorf("cutover step after the confirmation: %q", s)
	}
	if err := srcDB.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 1 {
		t.Errorf("source read_only %d (%v) after the cut-over, want 1", ro, err)
	}
	disabled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('rb-rollback').disabled`))
	if why, _ := textOf(ctx, "#rb-rollback-why"); err != nil || !disabled || !strings.Contains(why, "take-down has begun") {
		t.Errorf("rollback during take-down: disabled %v (%v), %q", disabled, err, why)
	}
	time.Sleep(2 * time.Second) // a few more looks at the old side
	screenshot(t, ctx, "console-migrate-takedown.png")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, logs)
	if strings.Contains(logs.String(), testToken) {
		t.Error("the console token reached the output")
	}
}

// waitExit waits up to a minute for a command to end; SIGTERM'd migrate
// runs end with the cancelled step's error, which is fine here.
func waitExit(t *testing.T, cmd *exec.Cmd, logs *logBuffer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the process did not end\n%s", logs.String())
	}
}
