package fleet

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// The estate, on real servers: four source/target MariaDB pairs, three
// applications (shop uses orders and users; blog posts; crm contacts),
// a writer per application on its sources. 'pitcrew fleet apply' runs as a
// process of its own and each runbook as a process under it:
//   - run 1 copies at most two at once and is killed -9 just after shop's
//     hook moved it (mid-wave, before the runbooks were told): its runbooks
//     die with it;
//   - run 2 (resume) finishes wave 1 without moving shop twice; contacts'
//     target has colliding auto-increment settings, so its cut-over
//     guardrail fails and holds wave 2: blog stays on its source, though
//     posts is in sync;
//   - the setting is fixed, run 3 (resume) cuts wave 2 over and takes down.
//
// Every database ends equal to its target and every acknowledged write is
// on both exactly once.
func TestFleetOnRealServers(t *testing.T) {
	testenv.Require(t)
	start := time.Now()
	bin := buildPitcrew(t)
	names := []string{"orders", "users", "posts", "contacts"}
	srcs, tgts := map[string]*testenv.Server{}, map[string]*testenv.Server{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, name := range names {
		for side, id := range map[string]uint32{"source": uint32(10*i + 1), "target": uint32(10*i + 2)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				offset := 1
				if side == "target" {
					offset = 2
				}
				extra := []string{"--auto-increment-increment=2", fmt.Sprintf("--auto-increment-offset=%d", offset)}
				if name == "contacts" && side == "target" {
					extra = nil // collides with its source: the cut-over guardrail refuses
				}
				s := startServer(t, testenv.Options{ServerID: id, Extra: extra})
				mu.Lock()
				map[string]map[string]*testenv.Server{"source": srcs, "target": tgts}[side][name] = s
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("8 servers up after %s", time.Since(start).Round(time.Millisecond))
	srcDB, tgtDB, ports := map[string]*sql.DB{}, map[string]*sql.DB{}, map[string][2]int{}
	for _, name := range names {
		srcDB[name], tgtDB[name], ports[name] = testenv.MustDB(t, srcs[name]), testenv.MustDB(t, tgts[name]), [2]int{srcs[name].Port, tgts[name].Port}
		appSchema(t, srcDB[name], tgtDB[name])
	}

	dir := t.TempDir()
	fleetYAML := writeFleet(t, dir, "{copies: 2, cutovers: 2}", names, ports, "quiet_period: 1s, rollback_window: 3s",
		"shop=orders,users", "blog=posts", "crm=contacts")
	apps := map[string][]string{"shop": {"orders", "users"}, "blog": {"posts"}, "crm": {"contacts"}}
	writers := map[string]*appWriter{}
	for app, dbs := range apps {
		writers[app] = startWriter(app, dbs, dir, ports)
	}
	defer func() {
		for _, w := range writers {
			w.finish()
		}
	}()
	// A writer stops once its wave is cut over (its application then ran
	// on the targets through the cut-over), before take-down stops the
	// reverse channels.
	onLine := func(line string) {
		if m := waveCutRE.FindStringSubmatch(line); m != nil {
			for app, dbs := range apps {
				if strings.Contains(m[1], dbs[0]) {
					go writers[app].finish()
				}
			}
		}
	}
	sampler := startSampler(filepath.Join(dir, "fleet"))

	// Run 1: killed -9 right after shop's hook.
	run1 := startFleet(t, bin, fleetYAML, onLine)
	run1.waitFor(t, "application shop moved (cutover)", 60*time.Second)
	run1.cmd.Process.Signal(syscall.SIGKILL)
	run1.wait()
	t.Logf("run 1 killed -9 after %s", run1.elapsed().Round(time.Millisecond))
	for _, pid := range run1.childPIDs() {
		waitGone(t, pid)
	}
	out1 := run1.output()
	assertInSyncBefore(t, out1, []string{"orders", "users"}, "application shop moved (cutover)")
	assertCopyLimit(t, out1, 2)

	// Run 2: wave 1 finishes; contacts' guardrail holds wave 2.
	run2 := startFleet(t, bin, fleetYAML, onLine)
	err2 := run2.wait()
	out2 := run2.output()
	t.Logf("run 2 ended after %s: %v", run2.elapsed().Round(time.Millisecond), err2)
	if err2 == nil || !strings.Contains(out2, "wave 2 held: contacts failed") || !strings.Contains(out2, "auto-increment") {
		t.Fatalf("run 2: %v, want wave 2 held by contacts' auto-increment guardrail\n%s", err2, out2)
	}
	if !strings.Contains(out2, "wave 1 cut over: orders, users") || strings.Contains(out2, "application blog moved") {
		t.Errorf("run 2 should cut wave 1 over and not move blog:\n%s", out2)
	}
	if _, err := os.Stat(writers["blog"].moved); err == nil {
		t.Error("blog was moved although its wave is held")
	}
	var ro int
	if err := srcDB["posts"].QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
		t.Errorf("posts' source read_only = %d (%v) while its wave is held", ro, err)
	}
	if err := srcDB["orders"].QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 1 {
		t.Errorf("orders' source read_only = %d (%v) after wave 1", ro, err)
	}
	status := runCmd(t, bin, "fleet", "status", "--fleet", fleetYAML)
	if !regexp.MustCompile(`contacts\s+2\s+crm\s+failed\s+cutover\s+failed`).MatchString(status) {
		t.Errorf("status does not show contacts failed at its cut-over:\n%s", status)
	}
	t.Logf("fleet status after run 2:\n%s", status)
	checkView(t, bin, fleetYAML)

	// Fixed; run 3 finishes the estate.
	testenv.Exec(t, tgtDB["contacts"], "SET GLOBAL auto_increment_increment = 2", "SET GLOBAL auto_increment_offset = 2")
	run3 := startFleet(t, bin, fleetYAML, onLine)
	if err := run3.wait(); err != nil {
		t.Fatalf("run 3: %v\n%s", err, run3.output())
	}
	t.Logf("run 3 took %s", run3.elapsed().Round(time.Millisecond))
	out3 := run3.output()
	if !strings.Contains(out3, "fleet estate complete: 4 databases") {
		t.Errorf("run 3 did not complete the fleet:\n%s", out3)
	}
	peakProcs := sampler.stop()
	for _, w := range writers {
		w.finish()
	}
	hooks, _ := os.ReadFile(filepath.Join(dir, "hook.log"))
	for _, app := range []string{"shop", "blog", "crm"} {
		if n := strings.Count(string(hooks), app+" cutover"); n != 1 {
			t.Errorf("application %s moved %d times, want once:\n%s", app, n, hooks)
		}
	}
	assertCopyLimit(t, out2, 2)
	assertCopyLimit(t, out3, 2)
	total := 0
	for app, w := range writers {
		for _, d := range w.dbs {
			assertOnce(t, srcDB[d], d+" source", w.acked[d])
			assertOnce(t, tgtDB[d], d+" target", w.acked[d])
			testenv.AssertTablesEqual(t, srcDB[d], tgtDB[d], "app")
			total += len(w.acked[d])
		}
		if w.onTarget.Load() == 0 {
			t.Errorf("%s never wrote to its targets", app)
		}
	}
	t.Logf("%d acknowledged writes; fleet wall time %s (runs %s + %s + %s); peak processes %d (the fleet and its runbooks); whole test %s",
		total, run1.elapsed()+run2.elapsed()+run3.elapsed(), run1.elapsed().Round(time.Millisecond), run2.elapsed().Round(time.Millisecond),
		run3.elapsed().Round(time.Millisecond), peakProcs, time.Since(start).Round(time.Millisecond))
	if peakProcs > 5 {
		t.Errorf("peak %d processes: one fleet and at most four runbooks expected:\n%s", peakProcs, strings.Join(sampler.at, "\n"))
	}
	if t.Failed() {
		t.Logf("run 1:\n%s\nrun 2:\n%s\nrun 3:\n%s", out1, out2, out3)
	}
}

var waveCutRE = regexp.MustCompile(`wave \d+ cut over: (.*)$`)

func buildPitcrew(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pitcrew")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/pitcrew")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building pitcrew: %v\n%s", err, out)
	}
	return bin
}

// startServer is testenv.New that may run in a goroutine.
func startServer(t *testing.T, o testenv.Options) *testenv.Server {
	dir, err := os.MkdirTemp("", "pitcrew-db-")
	if err != nil {
		t.Error(err)
		return nil
	}
	o.Dir = dir
	s, err := testenv.Start(context.Background(), o)
	if err != nil {
		os.RemoveAll(dir)
		t.Errorf("starting MariaDB: %v", err)
		return nil
	}
	t.Cleanup(func() {
		s.Kill()
		os.RemoveAll(dir)
	})
	return s
}

// appUser is the application's account on both servers (not replicated):
// no SUPER, so read_only fences it.
func appUser(t *testing.T, dbs ...*sql.DB) {
	t.Helper()
	for _, db := range dbs {
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SET sql_log_bin = 0", "CREATE USER 'app'@'%' IDENTIFIED BY 'app'", "GRANT ALL ON app.* TO 'app'@'%'", "SET sql_log_bin = 1"} {
			if _, err := c.ExecContext(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		c.Close()
	}
}

// appWriter is one application: inserts spread over its databases, on the
// sources until its hook moved it, then on the targets.
type appWriter struct {
	app      string
	dbs      []string
	moved    string
	src, tgt map[string]int
	mu       sync.Mutex
	acked    map[string][]int64
	errs     int
	onTarget atomic.Int64
	stopped  atomic.Bool
	once     sync.Once
	done     chan struct{}
}

func (w *appWriter) run() {
	defer close(w.done)
	pools := map[string]*sql.DB{}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	where := ""
	for seq := int64(1); !w.stopped.Load(); seq++ {
		node := "source"
		if _, err := os.Stat(w.moved); err == nil {
			node = "target"
		}
		if node != where {
			for k, p := range pools { // no session of ours stays on the old side
				p.Close()
				delete(pools, k)
			}
			where = node
		}
		d := w.dbs[int(seq)%len(w.dbs)]
		p := pools[d]
		if p == nil {
			port := w.src[d]
			if node == "target" {
				port = w.tgt[d]
			}
			p, _ = conn.Open(conn.Endpoint{Host: "127.0.0.1", Port: port, User: "app", Password: "app"})
			pools[d] = p
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := p.ExecContext(ctx, "INSERT INTO app.events (seq, node) VALUES (?, ?)", seq, node)
		cancel()
		if err != nil {
			w.errs++
			time.Sleep(5 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.acked[d] = append(w.acked[d], seq)
		w.mu.Unlock()
		if node == "target" {
			w.onTarget.Add(1)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// count is how many writes were acknowledged so far.
func (w *appWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.acked {
		n += len(a)
	}
	return n
}

func (w *appWriter) finish() {
	w.once.Do(func() { w.stopped.Store(true) })
	<-w.done
}

func assertOnce(t *testing.T, db *sql.DB, name string, acked []int64) {
	t.Helper()
	rows, err := db.Query("SELECT seq FROM app.events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[int64]int{}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seen[s]++
	}
	want := map[int64]bool{}
	for _, s := range acked {
		want[s] = true
		if seen[s] != 1 {
			t.Errorf("%s: acknowledged write seq %d present %d times", name, s, seen[s])
		}
	}
	for s, n := range seen {
		if !want[s] {
			t.Errorf("%s: seq %d present %d times but never acknowledged", name, s, n)
		}
	}
}

// fleetProc is one 'pitcrew fleet apply' process.
type fleetProc struct {
	cmd     *exec.Cmd
	started time.Time
	ended   time.Time
	mu      sync.Mutex
	lines   []string
	seen    chan string
	doneCh  chan struct{}
	err     error
}

func startFleet(t *testing.T, bin, fleetYAML string, onLine func(string), args ...string) *fleetProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"fleet", "apply", "--fleet", fleetYAML}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	fp := &fleetProc{cmd: cmd, started: time.Now(), seen: make(chan string, 1000), doneCh: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fp.mu.Lock()
			fp.lines = append(fp.lines, line)
			fp.mu.Unlock()
			onLine(line)
			select {
			case fp.seen <- line:
			default:
			}
		}
		fp.err = cmd.Wait()
		fp.ended = time.Now()
		close(fp.doneCh)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-fp.doneCh
	})
	return fp
}

func (fp *fleetProc) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-fp.seen:
			if strings.Contains(line, text) {
				return
			}
		case <-fp.doneCh:
			t.Fatalf("the fleet ended (%v) before %q:\n%s", fp.err, text, fp.output())
		case <-deadline:
			t.Fatalf("no %q after %s:\n%s", text, timeout, fp.output())
		}
	}
}

func (fp *fleetProc) wait() error { <-fp.doneCh; return fp.err }

func (fp *fleetProc) elapsed() time.Duration { return fp.ended.Sub(fp.started) }

func (fp *fleetProc) output() string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return strings.Join(fp.lines, "\n")
}

var pidRE = regexp.MustCompile(`\(pid (\d+)\)`)

func (fp *fleetProc) childPIDs() []int {
	var pids []int
	for _, m := range pidRE.FindAllStringSubmatch(fp.output(), -1) {
		n, _ := strconv.Atoi(m[1])
		pids = append(pids, n)
	}
	return pids
}

// waitGone waits for a runbook process to end (it dies with its fleet).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			return // a zombie: ended, waiting for init to reap it
		}
		if time.Now().After(deadline) {
			t.Fatalf("runbook process %d outlived its killed fleet by 30s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertInSyncBefore checks that every database was in sync before the
// application's move.
func assertInSyncBefore(t *testing.T, out string, dbs []string, move string) {
	t.Helper()
	at := strings.Index(out, move)
	for _, d := range dbs {
		i := strings.Index(out, "database "+d+": in sync")
		if i < 0 || i > at {
			t.Errorf("%q before database %s was in sync:\n%s", move, d, out)
		}
	}
}

// assertCopyLimit replays the fleet's lines: never more than limit
// runbooks copying at once.
func assertCopyLimit(t *testing.T, out string, limit int) {
	t.Helper()
	copying := map[string]bool{}
	peak := 0
	for _, line := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`database (\S+): runbook started, copying`).FindStringSubmatch(line); m != nil {
			copying[m[1]] = true
		}
		if m := regexp.MustCompile(`database (\S+)(: in sync|: cut over| failed|: runbook finished)`).FindStringSubmatch(line); m != nil {
			delete(copying, m[1])
		}
		peak = max(peak, len(copying))
	}
	if peak > limit {
		t.Errorf("%d runbooks copying at once, over limits.copies %d:\n%s", peak, limit, out)
	}
}

func runCmd(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, _ := exec.Command(bin, args...).CombinedOutput()
	return string(out)
}

// sampler counts the fleet's processes (the fleet and its runbooks) every
// 20 ms; stop returns the peak.
type sampler struct {
	stopCh chan struct{}
	peak   chan int
	at     []string // the processes at the peak
}

func startSampler(dataDir string) *sampler {
	s := &sampler{stopCh: make(chan struct{}), peak: make(chan int, 1)}
	go func() {
		peak := 0
		for {
			select {
			case <-s.stopCh:
				s.peak <- peak
				return
			case <-time.After(20 * time.Millisecond):
			}
			n := 0
			var seen []string
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				if err != nil {
					continue
				}
				cl := string(b)
				if strings.Contains(cl, "fleet\x00apply") && forkOfFleet(e.Name()) {
					continue // forked by the fleet, not yet exec'd (a hook or a runbook about to start)
				}
				if strings.Contains(cl, "fleet\x00apply") || strings.Contains(cl, dataDir+"/plans/") {
					n++
					seen = append(seen, e.Name()+" "+strings.ReplaceAll(cl, "\x00", " "))
				}
			}
			if n > peak {
				peak, s.at = n, seen
			}
		}
	}()
	return s
}

func (s *sampler) stop() int { close(s.stopCh); return <-s.peak }

// checkView serves the fleet view of the held fleet ('fleet status
// --http') and reads its JSON; with PITCREW_SCREENSHOT set (a PNG path)
// headless Chromium also takes a picture of the page.
func checkView(t *testing.T, bin, fleetYAML string) {
	t.Helper()
	cmd := exec.Command(bin, "fleet", "status", "--fleet", fleetYAML, "--http", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	url := ""
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "fleet view: "); ok {
			url = strings.Fields(u)[0]
			break
		}
	}
	if url == "" {
		t.Fatal("fleet status --http printed no address")
	}
	var v View
	if err := getJSON(t.Context(), &http.Client{Timeout: 5 * time.Second}, url+"api/fleet", &v); err != nil {
		t.Fatal(err)
	}
	phases := map[string]string{}
	for _, d := range v.Databases {
		phases[d.Name] = d.Phase
	}
	if len(v.Waves) != 2 || phases["contacts"] != "failed" || len(v.Databases) != 4 {
		t.Errorf("fleet view: %d waves, phases %v", len(v.Waves), phases)
	}
	if png := os.Getenv("PITCREW_SCREENSHOT"); png != "" {
		out, err := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,640", "--virtual-time-budget=3000", "--screenshot="+png, url).CombinedOutput()
		if err != nil {
			t.Errorf("chromium: %v\n%s", err, out)
		}
	}
}

// forkOfFleet tells whether a process's parent is a fleet process too.
func forkOfFleet(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return false
	}
	pb, err := os.ReadFile("/proc/" + f[1] + "/cmdline")
	return err == nil && strings.Contains(string(pb), "fleet\x00apply")
}

// appSchema is the application's table on the source and its account on
// both servers.
func appSchema(t *testing.T, src, tgt *sql.DB) {
	t.Helper()
	appUser(t, src, tgt)
	testenv.Exec(t, src, "CREATE DATABASE app",
		"CREATE TABLE app.events (id BIGINT AUTO_INCREMENT PRIMARY KEY, seq BIGINT NOT NULL, node VARCHAR(10) NOT NULL, UNIQUE KEY (seq))")
}

// writeFleet writes fleet.yaml (and the applications' hook, which logs each
// move to hook.log and leaves moved-APP while an application is on its
// targets) into dir.
// apps are "NAME=DB,DB", in the order fleet.yaml lists them (waves are
// packed in that order).
func writeFleet(t *testing.T, dir, limits string, names []string, ports map[string][2]int, options string, apps ...string) string {
	t.Helper()
	hook := filepath.Join(dir, "move.sh")
	os.WriteFile(hook, []byte(`#!/bin/sh
set -e
echo "$PITCREW_APPLICATION $1" >> `+dir+`/hook.log
if [ "$1" = cutover ]; then touch `+dir+`/moved-$PITCREW_APPLICATION; else rm -f `+dir+`/moved-$PITCREW_APPLICATION; fi
`), 0o755)
	var y strings.Builder
	fmt.Fprintf(&y, "name: estate\ndata_dir: %s\nlimits: %s\ndatabases:\n", filepath.Join(dir, "fleet"), limits)
	for _, name := range names {
		fmt.Fprintf(&y, `  - name: %s
    migration:
      source: {database: {host: 127.0.0.1, port: %d}}
      target: {database: {host: 127.0.0.1, port: %d}}
      options: {start_from: beginning, poll_interval: 50ms, timeout: 60s, %s}
`, name, ports[name][0], ports[name][1], options)
	}
	y.WriteString("applications:\n")
	for _, app := range apps {
		name, dbs, _ := strings.Cut(app, "=")
		fmt.Fprintf(&y, "  - {name: %s, databases: [%s], hook: %s}\n", name, dbs, hook)
	}
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startWriter(app string, dbs []string, dir string, ports map[string][2]int) *appWriter {
	w := &appWriter{app: app, dbs: dbs, moved: filepath.Join(dir, "moved-"+app), src: map[string]int{}, tgt: map[string]int{}, acked: map[string][]int64{}, done: make(chan struct{})}
	for _, d := range dbs {
		w.src[d], w.tgt[d] = ports[d][0], ports[d][1]
	}
	go w.run()
	return w
}
