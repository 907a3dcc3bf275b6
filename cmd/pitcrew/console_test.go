package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

const testToken = "console-test-token-0123456789"

// browser starts headless Chromium at a window size; the context ends
// with the test. Without Chromium the test is skipped, unless
// PITCREW_REQUIRE_DB=1 (make test, CI), where it fails.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("PITCREW_REQUIRE_DB") == "1" {
			t.Fatal("Chromium not found: install it with 'apt-get install chromium' (scripts/ensure-chromium.sh does)")
		}
		t.Skip("Chromium not installed (apt-get install chromium); the console's browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(width, height), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// screenshot writes the whole page as a PNG into $PITCREW_SCREENSHOTS (or
// the test's temp dir) and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	dir := os.Getenv("PITCREW_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// textOf reads an element's text; an element not there within a second
// is an error (chromedp would wait for it for ever).
func textOf(ctx context.Context, sel string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	return strings.TrimSpace(s), err
}

// steps runs browser actions, each waiting at most 30s in all.
func steps(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// within waits up to d for cond, checking every 250ms.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("within %s: %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// seconds parses the console's duration text ("3.2 s", "41 s", "2m 05s").
func seconds(s string) float64 {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutSuffix(s, " s"); ok {
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	var m, sec int
	if n, _ := fmt.Sscanf(s, "%dm %ds", &m, &sec); n == 2 {
		return float64(60*m + sec)
	}
	return -1
}

// logBuffer is a goroutine-safe log sink for a child process.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The console of `pitcrew sync` in a real browser: the channel renders, its
// lag rises under a workload the target cannot keep up with (a trigger
// sleeps on every account row) and falls to zero once the writes stop; the
// service logs progress lines and the "caught up" transition. Screenshots
// at a desktop and a phone width.
func TestConsoleSyncInBrowser(t *testing.T) {
	testenv.Require(t)
	ctx := browser(t, 1360, 1000)
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	addr := freeAddr(t)
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint(), "http_addr: "+addr, "log_progress: 2s", "log_format: json",
		"console_token: "+testToken, "relay_quota_bytes: 268435456")
	gen := workload.New(srcDB, "shop", 11)
	if err := gen.Run(t.Context(), 300); err != nil { // accounts to update
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cmd := exec.Command(bin, "sync", "--config", cfg, "--start-from", "beginning")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	// Once the tables arrived, every account update on the target sleeps.
	within(t, 30*time.Second, "the tables to reach the target", func() bool {
		var n int
		tgtDB.QueryRow("SELECT COUNT(*) FROM shop.accounts").Scan(&n)
		return n > 0
	})
	testenv.Exec(t, tgtDB, "CREATE TRIGGER shop.slow_accounts BEFORE UPDATE ON shop.accounts FOR EACH ROW SET @slow = SLEEP(0.03)")
	stop := writeInBackground(gen, 0)
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()

	url := "http://" + addr + "/"
	waitListening(t, addr, logs)
	if err := steps(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`.channel[data-channel="test"]`))); err != nil {
		t.Fatalf("the console did not render the channel: %v\n%s", err, logs.String())
	}
	maxLag := 0.0
	defer func() {
		if t.Failed() {
			screenshot(t, ctx, "console-sync-failed.png")
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	within(t, 40*time.Second, "the page to show the channel falling behind", func() bool {
		v, err := textOf(ctx, `.channel[data-channel="test"] .stat.lag .v`)
		if err == nil && seconds(v) > maxLag {
			maxLag = seconds(v)
		}
		return maxLag >= 3
	})
	state, _ := textOf(ctx, `.channel[data-channel="test"] .state`)
	behind, _ := textOf(ctx, `.channel[data-channel="test"] .stat.behind .v`)
	t.Logf("behind: lag %.1fs, %s, state %q", maxLag, behind, state)
	screenshot(t, ctx, "console-sync-behind.png")

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	within(t, 90*time.Second, "the page to show the channel caught up", func() bool {
		b, _ := textOf(ctx, `.channel[data-channel="test"] .stat.behind .v`)
		l, _ := textOf(ctx, `.channel[data-channel="test"] .stat.lag .v`)
		return b == "0 tx" && seconds(l) == 0
	})
	// The chart drew the rise and the fall: its line has points off zero.
	ys, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const l = document.querySelector('.channel[data-channel="test"] .lag-line');
		return l ? l.getAttribute('points').split(' ').map(p => parseFloat(p.split(',')[1])) : []; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ys) < 5 || minOf(ys) == maxOf(ys) {
		t.Errorf("the lag chart is flat or empty: %v", ys)
	}
	screenshot(t, ctx, "console-sync-desktop.png")
	narrow := browser(t, 390, 844)
	if err := steps(narrow, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`.channel[data-channel="test"] .lag-line`))); err != nil {
		t.Fatal(err)
	}
	screenshot(t, narrow, "console-sync-narrow.png")
	widths, err := chromedp.Run(narrow, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	scrollW, clientW := widths[0], widths[1]
	if scrollW > clientW {
		t.Errorf("at 390px the page scrolls sideways: %dpx wide in a %dpx viewport", scrollW, clientW)
	}

	// The log's transition line comes from the next poll of the source
	// (every 2 s): the page may show the last commit before it is written.
	within(t, 15*time.Second, "the log to say caught up", func() bool {
		return strings.Contains(logs.String(), `"msg":"caught up`)
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	out := logs.String()
	for _, want := range []string{`"msg":"progress"`, `"rate_tps"`, `"eta"`, `"msg":"caught up`} {
		if !strings.Contains(out, want) {
			t.Errorf("sync's log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, testToken) {
		t.Error("the console token reached the log")
	}
}

// waitListening waits until a started service answers on addr.
func waitListening(t *testing.T, addr string, logs *logBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing answers on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// A parked conflict in the console of `pitcrew bidi sync`: listed, shown
// with both rows, refused without the token (the buttons are off and the
// API answers 401), resolved with it after the confirmation: the source's
// row lands on the node and the ledger says resolved-source.
func TestConsoleConflictInBrowser(t *testing.T) {
	testenv.Require(t)
	ctx := browser(t, 1360, 1000)
	bin := buildBinary(t)
	a := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	b := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	adb, bdb := testenv.MustDB(t, a), testenv.MustDB(t, b)
	for _, db := range []*sql.DB{adb, bdb} {
		testenv.Exec(t, db, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)", "INSERT INTO app.t VALUES (1, 'one')")
	}
	addr := freeAddr(t)
	cfg := writeBidiConfig(t, a.Endpoint(), b.Endpoint(), "conflicts:", "  default: park", "http_addr: "+addr)
	logs := &logBuffer{}
	cmd := exec.Command(bin, "bidi", "sync", "--config", cfg, "--start-from", "now")
	cmd.Env = append(os.Environ(), "PITCREW_CONSOLE_TOKEN="+testToken)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	url := "http://" + addr + "/"
	waitListening(t, addr, logs)
	if err := steps(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`.channel[data-channel="b-a"]`))); err != nil {
		t.Fatalf("the console did not render: %v\n%s", err, logs.String())
	}
	within(t, 30*time.Second, "both channels streaming", func() bool {
		x, _ := textOf(ctx, `.channel[data-channel="a-b"] .state`)
		y, _ := textOf(ctx, `.channel[data-channel="b-a"] .state`)
		return strings.HasPrefix(x, "streaming") && strings.HasPrefix(y, "streaming")
	})
	// b's row changes without reaching the binlog, so a's next update of
	// it finds another row there than its before image: parked on b.
	c, err := bdb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	testenvExecConn(t, c, "SET SESSION sql_log_bin = 0", "UPDATE app.t SET v = 'local-b' WHERE id = 1")
	c.Close()
	testenv.Exec(t, adb, "UPDATE app.t SET v = 'from-a' WHERE id = 1")
	row := `#conflict-rows tr[data-node="b"]`
	if err := steps(ctx, chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("the conflict did not appear: %v\n%s", err, logs.String())
	}
	if p, _ := textOf(ctx, "#parked"); p != "1 parked" {
		t.Errorf("parked pill: %q", p)
	}
	if err := steps(ctx, chromedp.Click(chromedp.CSS(row)), chromedp.WaitVisible(chromedp.CSS("#take-source"))); err != nil {
		t.Fatal(err)
	}
	disabled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('take-source').disabled`))
	if err != nil {
		t.Fatal(err)
	}
	if !disabled {
		t.Error("without the token the resolve button must be off")
	}
	id, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`parseInt(document.querySelector('#conflict-rows tr[data-node="b"]').dataset.id)`))
	if err != nil {
		t.Fatal(err)
	}
	// The page's own origin, no token: refused; with the token but
	// without the confirmation: refused too.
	resolve := fmt.Sprintf(`api/conflicts/b/%d/resolve`, id)
	phrase := fmt.Sprintf("resolve b/%d take source", id)
	noToken, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {method: 'POST', body: JSON.stringify({take: 'source', confirm: %q})}).then(r => r.status)`, resolve, phrase), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	noConfirm, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {method: 'POST', headers: {Authorization: 'Bearer %s'}, body: JSON.stringify({take: 'source'})}).then(r => r.status)`, resolve, testToken), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if noToken != http.StatusUnauthorized || noConfirm != http.StatusPreconditionFailed {
		t.Errorf("resolve without the token: %d (want 401); without the confirmation: %d (want 412)", noToken, noConfirm)
	}
	if v := rowOn(bdb); v != "local-b" {
		t.Fatalf("a refused resolve changed the row: %q", v)
	}
	screenshot(t, ctx, "console-conflict-locked.png")

	if err := steps(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS(`#token-form button`)),
		chromedp.WaitVisible(chromedp.CSS("#lock")),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitEnabled(chromedp.CSS("#take-source")),
		chromedp.Click(chromedp.CSS("#take-source")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok"))); err != nil {
		t.Fatalf("unlocking and resolving: %v", err)
	}
	screenshot(t, ctx, "console-conflict-confirm.png")
	if err := steps(ctx, chromedp.Click(chromedp.CSS("#confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	within(t, 15*time.Second, "the row to take the source's value", func() bool { return rowOn(bdb) == "from-a" })
	var outcome string
	if err := bdb.QueryRow("SELECT outcome FROM _pitcrew.conflicts WHERE id = ?", id).Scan(&outcome); err != nil || outcome != "resolved-source" {
		t.Errorf("ledger outcome %q (%v), want resolved-source", outcome, err)
	}
	within(t, 10*time.Second, "the page to show it resolved", func() bool {
		s, _ := textOf(ctx, row+` td:nth-child(8)`)
		return s == "resolved-source"
	})
	screenshot(t, ctx, "console-conflict-resolved.png")
	if strings.Contains(logs.String(), testToken) {
		t.Error("the console token reached the log")
	}
	// /status over HTTP is the same JSON as before, and /metrics counts the
	// parked conflicts from the ledgers.
	var st []json.RawMessage
	if err := json.Unmarshal([]byte(get(t, "http://"+addr+"/status")), &st); err != nil || len(st) != 2 {
		t.Errorf("/status: %v, %d channels", err, len(st))
	}
	if m := get(t, "http://"+addr+"/metrics"); !strings.Contains(m, `pitcrew_conflicts_parked{node="b"} 0`) {
		t.Errorf("/metrics lacks pitcrew_conflicts_parked for b at 0")
	}
}

func rowOn(db *sql.DB) string {
	var v string
	db.QueryRow("SELECT v FROM app.t WHERE id = 1").Scan(&v)
	return v
}

func testenvExecConn(t *testing.T, c *sql.Conn, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := c.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A console other hosts could reach is refused before anything connects,
// with the fix; a weak token too; log_format is checked.
func TestConsoleExposureRefused(t *testing.T) {
	src := conn.Endpoint{Host: "127.0.0.1", Port: 1, User: "root"}
	tgt := conn.Endpoint{Host: "127.0.0.1", Port: 2, User: "root"}
	for _, c := range []struct {
		extra []string
		want  string
	}{
		{[]string{"http_addr: 0.0.0.0:0"}, "reachable from other hosts and no console_token is set"},
		{[]string{"http_addr: 127.0.0.1:0", "console_token: short"}, "use at least 16"},
		{[]string{"log_format: xml"}, `log_format "xml" is unknown: use text or json`},
	} {
		cfg := writeConfig(t, src, tgt, c.extra...)
		code, _, errOut := runCLI("sync", "--config", cfg, "--start-from", "now")
		if code != exitError || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %q", c.extra, code, errOut, c.want)
		}
	}
}
