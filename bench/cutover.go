package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pitcrew/pitcrew/infra"
	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// CutoverConfig sizes `pitcrew bench cutover`.
type CutoverConfig struct {
	Runs     int           // default 3
	Conns    int           // the application's connections; default 4
	Rate     int           // its writes per second over all connections; default 1200
	HotRows  int           // rows every connection increments; default 4
	Before   time.Duration // writing on the old side after forward caught up, before the cut-over; default 2s
	After    time.Duration // writing on the new side after the switch (and again after a rollback); default 2s
	Fence    string        // infra.FenceReadOnly (default) or infra.FenceLockUsers
	Order    string        // infra.OrderFenceFirst (default) or infra.OrderBothWritable
	Rollback bool          // after the switch, roll back; the old side is then checked
	// RetryFor is how long the application retries one write (fenced,
	// locked out, its session killed) before it counts as failed; default 5s.
	RetryFor time.Duration
	Dir      string
	Log      io.Writer
}

func (c *CutoverConfig) defaults() {
	setDefault(&c.Runs, 3)
	setDefault(&c.Conns, 4)
	setDefault(&c.Rate, 1200)
	setDefault(&c.HotRows, 4)
	if c.Before <= 0 {
		c.Before = 2 * time.Second
	}
	if c.After <= 0 {
		c.After = 2 * time.Second
	}
	if c.Fence == "" {
		c.Fence = infra.FenceReadOnly
	}
	if c.Order == "" {
		c.Order = infra.OrderFenceFirst
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 5 * time.Second
	}
	c.Log = logTo(c.Log)
}

// Validate refuses what the bench cannot run.
func (c CutoverConfig) Validate() error {
	if c.Fence != infra.FenceReadOnly && c.Fence != infra.FenceLockUsers {
		return fmt.Errorf("--fence %q: use read_only or lock_users (the parameter group needs AWS)", c.Fence)
	}
	if c.Order != infra.OrderFenceFirst && c.Order != infra.OrderBothWritable {
		return fmt.Errorf("--order %q: use fence-first or both-writable", c.Order)
	}
	return nil
}

// Cutover runs the local migrate runbook (forward, cut-over, take-down or
// rollback) Runs times on fresh throwaway servers while an application-like
// writer writes, and reports what the application felt and what it lost.
func Cutover(ctx context.Context, cfg CutoverConfig) ([]CutoverResult, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	done, err := scratch(&cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []CutoverResult
	for i := 1; i <= cfg.Runs; i++ {
		r, err := cutoverRun(ctx, cfg, i)
		if err != nil {
			r.Note = err.Error()
		}
		fmt.Fprintf(cfg.Log, "run %d: %s\n", i, r.Line())
		out = append(out, r)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

const appPassword = "bench-app"

// cutoverRun is one run on fresh servers.
func cutoverRun(ctx context.Context, cfg CutoverConfig, n int) (CutoverResult, error) {
	res := CutoverResult{Run: n, Fence: cfg.Fence, Order: cfg.Order, Rollback: cfg.Rollback}
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("run%d", n))
	srv := map[string]*mariadb.Server{}
	dbs := map[string]*sql.DB{}
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
		for _, s := range srv {
			s.Kill()
		}
	}()
	for i, side := range []string{"source", "target"} {
		s, err := mariadb.Start(ctx, mariadb.Options{Dir: filepath.Join(dir, side), ServerID: uint32(i + 1),
			Extra: []string{"--auto-increment-increment=2", fmt.Sprintf("--auto-increment-offset=%d", i+1), "--max-connections=300"}})
		if err != nil {
			return res, err
		}
		srv[side] = s
		if dbs[side], err = s.DB(); err != nil {
			return res, err
		}
	}
	if err := benchSchema(ctx, dbs, cfg.HotRows); err != nil {
		return res, err
	}
	hook := filepath.Join(dir, "move-app.sh")
	script := "#!/bin/sh\nset -e\nrm -f " + dir + "/moved-*\ntouch " + dir + "/moved-\"$1\"\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		return res, err
	}
	p := &infra.Plan{
		Name: "bench-cutover", DataDir: filepath.Join(dir, "migrate"), HTTPAddr: "off",
		Source: infra.Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: srv["source"].Port}},
		Target: infra.Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: srv["target"].Port}},
		Options: infra.Options{StartFrom: "beginning", Hook: hook, Fence: cfg.Fence, AppUsers: []string{"app"}, CutoverOrder: cfg.Order,
			PollInterval: 5 * time.Millisecond, Timeout: 60 * time.Second, QuietPeriod: 300 * time.Millisecond, RollbackWindow: time.Millisecond},
	}
	p.Default()
	if err := p.Validate(); err != nil {
		return res, err
	}
	var runLog strings.Builder
	rn := &infra.Runner{Plan: p, Out: &lockedWriter{w: &runLog}}

	app := newApp(cfg, dir, map[string]int{"source": srv["source"].Port, "target": srv["target"].Port})
	app.start(ctx)
	defer app.stop()
	if err := rn.Apply(ctx, "forward", false); err != nil {
		return res, fmt.Errorf("forward: %w\n%s", err, runLog.String())
	}
	sleep(ctx, cfg.Before)
	res.CutoverAt = app.since()
	if err := rn.Apply(ctx, "cutover", false); err != nil {
		return res, fmt.Errorf("cutover: %w\n%s", err, runLog.String())
	}
	st, err := rn.Status() // before a rollback sets the step back to pending
	if err != nil {
		return res, err
	}
	for _, s := range st {
		if s.ID == "cutover" {
			res.steps(infra.ReadCutoverTimes(s.Outputs), app.t0)
		}
	}
	sleep(ctx, cfg.After)
	newSide := "target"
	if cfg.Rollback {
		res.RollbackAt = app.since()
		if err := rn.Rollback(ctx); err != nil {
			return res, fmt.Errorf("rollback: %w\n%s", err, runLog.String())
		}
		res.RollbackDone = app.since()
		sleep(ctx, cfg.After)
		newSide = "source"
	}
	app.stop()
	if !cfg.Rollback {
		if err := rn.Apply(ctx, "", false); err != nil {
			return res, fmt.Errorf("take-down: %w\n%s", err, runLog.String())
		}
		res.TakeDownAt = app.since()
		eq, err := checksum.Tables(ctx, dbs["source"], dbs["target"], "app", []string{"orders", "counters"})
		if err != nil {
			return res, err
		}
		res.NodesEqual = true
		for _, e := range eq {
			res.NodesEqual = res.NodesEqual && e.Equal()
		}
	}
	if err := app.check(ctx, dbs[newSide], &res); err != nil {
		return res, err
	}
	for _, side := range []string{"source", "target"} {
		if err := res.readLedger(ctx, dbs[side], side); err != nil {
			return res, err
		}
	}
	app.summarize(&res)
	return res, nil
}

func benchSchema(ctx context.Context, dbs map[string]*sql.DB, hot int) error {
	for _, db := range dbs {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		for _, q := range []string{"SET sql_log_bin = 0", "CREATE USER 'app'@'%' IDENTIFIED BY '" + appPassword + "'", "GRANT ALL ON app.* TO 'app'@'%'", "SET sql_log_bin = 1"} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				c.Close()
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		c.Close()
	}
	stmts := []string{"CREATE DATABASE app",
		"CREATE TABLE app.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, conn INT NOT NULL, seq BIGINT NOT NULL, node VARCHAR(10) NOT NULL, amount INT NOT NULL, UNIQUE KEY (conn, seq))",
		"CREATE TABLE app.counters (id INT PRIMARY KEY, v BIGINT NOT NULL)"}
	for i := 1; i <= hot; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO app.counters VALUES (%d, 0)", i))
	}
	for _, q := range stmts {
		if _, err := dbs["source"].ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// app is the application: Conns connections writing at Rate through one
// pool, moved to the other side when the runbook's hook says so (the hook
// leaves a file; the app looks every millisecond, as a service discovery
// watch would), retrying a refused write until RetryFor.
type app struct {
	cfg   CutoverConfig
	dir   string
	ports map[string]int
	t0    time.Time
	pool  atomic.Pointer[pool]
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu     sync.Mutex
	writes []write
	// per connection: the inserts acknowledged (seq) and those that may
	// have landed although the write failed (ambiguous errors)
	inserted [][]int64
	hotAcked []int64 // increments acknowledged, per hot row (index id-1)
	hotMaybe []int64 // increments that may have landed unacknowledged
	rawMiss  int     // reads-after-writes that did not see the write
	errs     map[string]int
	switches []float64
}

type pool struct {
	node string
	db   *sql.DB
}

// write is one application write as it felt it.
type write struct {
	At      float64 // seconds since the app started, when the write began
	Latency float64 // ms until acknowledged (retries included) or given up
	Node    string  // where it was acknowledged
	OK      bool
	Update  bool
}

func newApp(cfg CutoverConfig, dir string, ports map[string]int) *app {
	return &app{cfg: cfg, dir: dir, ports: ports, quit: make(chan struct{}), inserted: make([][]int64, cfg.Conns),
		hotAcked: make([]int64, cfg.HotRows), hotMaybe: make([]int64, cfg.HotRows), errs: map[string]int{}}
}

func (a *app) since() float64 { return time.Since(a.t0).Seconds() }

func (a *app) where() string {
	if _, err := os.Stat(filepath.Join(a.dir, "moved-cutover")); err == nil {
		return "target"
	}
	return "source"
}

func (a *app) open(node string) *pool {
	db, _ := conn.Open(conn.Endpoint{Host: "127.0.0.1", Port: a.ports[node], User: "app", Password: appPassword})
	db.SetMaxIdleConns(a.cfg.Conns)
	return &pool{node: node, db: db}
}

func (a *app) start(ctx context.Context) {
	a.t0 = time.Now()
	a.pool.Store(a.open(a.where()))
	a.wg.Add(1)
	go func() { // the switch: a new pool on the new side; none of ours stays on the old
		defer a.wg.Done()
		for {
			select {
			case <-a.quit:
				return
			case <-ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
			if n := a.where(); n != a.pool.Load().node {
				old := a.pool.Swap(a.open(n))
				a.mu.Lock()
				a.switches = append(a.switches, a.since())
				a.mu.Unlock()
				old.db.Close()
			}
		}
	}()
	every := time.Duration(float64(time.Second) * float64(a.cfg.Conns) / float64(a.cfg.Rate))
	for c := range a.cfg.Conns {
		a.wg.Add(1)
		go a.conn(ctx, c, every)
	}
}

func (a *app) stop() {
	a.once.Do(func() {
		close(a.quit)
		a.wg.Wait()
		a.pool.Load().db.Close()
	})
}

// conn is one connection's loop: an insert (read back at once) or a
// hot-row increment, one every `every`.
func (a *app) conn(ctx context.Context, c int, every time.Duration) {
	defer a.wg.Done()
	r := rand.New(rand.NewPCG(uint64(c), 7))
	next := time.Now()
	for seq := int64(1); ; seq++ {
		next = next.Add(every)
		if d := time.Until(next); d > 0 {
			select {
			case <-a.quit:
				return
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		} else {
			next = time.Now() // behind: no burst to catch up
		}
		select {
		case <-a.quit:
			return
		default:
		}
		if r.IntN(2) == 0 {
			a.insert(ctx, c, seq, r.IntN(1000))
		} else {
			a.increment(ctx, 1+r.IntN(a.cfg.HotRows))
		}
	}
}

// attempt runs one write until it is acknowledged or RetryFor passes.
// maybe counts failed attempts whose effect may still have committed (the
// connection broke after the statement was sent).
func (a *app) attempt(ctx context.Context, update bool, do func(p *pool) (bool, error)) (node string, ok bool, maybe int) {
	start := time.Now()
	at := a.since()
	for {
		p := a.pool.Load()
		done, err := do(p)
		if err == nil && done {
			a.record(write{At: at, Latency: ms64(time.Since(start)), Node: p.node, OK: true, Update: update})
			return p.node, true, maybe
		}
		if err != nil {
			a.count(err)
			if ambiguous(err) {
				maybe++
			}
		}
		if time.Since(start) > a.cfg.RetryFor || ctx.Err() != nil {
			a.record(write{At: at, Latency: ms64(time.Since(start)), Node: p.node, Update: update})
			return "", false, maybe
		}
		time.Sleep(time.Millisecond)
	}
}

func ms64(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (a *app) insert(ctx context.Context, c int, seq int64, amount int) {
	first := true
	_, ok, _ := a.attempt(ctx, false, func(p *pool) (bool, error) {
		_, err := p.db.ExecContext(ctx, "INSERT INTO app.orders (conn, seq, node, amount) VALUES (?, ?, ?, ?)", c, seq, p.node, amount)
		if err != nil && conn.Code(err) == 1062 && !first {
			err = nil // an earlier attempt landed although its answer was lost
		}
		first = false
		if err != nil {
			return false, err
		}
		var n int // read-after-write, on the same pool
		if err := p.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM app.orders WHERE conn = ? AND seq = ?", c, seq).Scan(&n); err == nil && n != 1 {
			a.mu.Lock()
			a.rawMiss++
			a.mu.Unlock()
		}
		return true, nil
	})
	if ok {
		a.mu.Lock()
		a.inserted[c] = append(a.inserted[c], seq)
		a.mu.Unlock()
	}
}

func (a *app) increment(ctx context.Context, id int) {
	_, ok, maybe := a.attempt(ctx, true, func(p *pool) (bool, error) {
		res, err := p.db.ExecContext(ctx, "UPDATE app.counters SET v = v + 1 WHERE id = ?", id)
		if err != nil {
			return false, err
		}
		n, _ := res.RowsAffected()
		return n == 1, nil
	})
	a.mu.Lock()
	if ok {
		a.hotAcked[id-1]++
	}
	a.hotMaybe[id-1] += int64(maybe)
	a.mu.Unlock()
}

func (a *app) record(w write) {
	a.mu.Lock()
	a.writes = append(a.writes, w)
	a.mu.Unlock()
}

// count names a refused attempt by its error number, or its kind.
func (a *app) count(err error) {
	k := "other"
	if c := conn.Code(err); c != 0 {
		k = fmt.Sprintf("error %d", c)
	} else if ambiguous(err) {
		k = "connection lost"
	} else if strings.Contains(err.Error(), "connection refused") {
		k = "connection refused"
	}
	a.mu.Lock()
	a.errs[k]++
	a.mu.Unlock()
}

// ambiguous: the statement may have committed, its answer was lost.
func ambiguous(err error) bool {
	c := conn.Code(err)
	return c == 2013 || c == 1927 || c == 2006 || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "invalid connection") || strings.Contains(err.Error(), "bad connection")
}

// check compares what the application was told with what the database
// it ends on holds.
func (a *app) check(ctx context.Context, db *sql.DB, res *CutoverResult) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	have := map[[2]int64]int{}
	rows, err := db.QueryContext(ctx, "SELECT conn, seq FROM app.orders")
	if err != nil {
		return err
	}
	for rows.Next() {
		var k [2]int64
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return err
		}
		have[k]++
	}
	rows.Close()
	acked := map[[2]int64]bool{}
	for c, seqs := range a.inserted {
		for _, s := range seqs {
			k := [2]int64{int64(c), s}
			acked[k] = true
			res.InsertsAcked++
			switch n := have[k]; {
			case n == 0:
				res.LostInserts++
			case n > 1:
				res.Duplicates += n - 1
			}
		}
	}
	for k, n := range have {
		if !acked[k] {
			res.Unacknowledged += n
		}
	}
	for id := range a.hotAcked {
		var v int64
		if err := db.QueryRowContext(ctx, "SELECT v FROM app.counters WHERE id = ?", id+1).Scan(&v); err != nil {
			return err
		}
		res.UpdatesAcked += a.hotAcked[id]
		if lost := a.hotAcked[id] - v; lost > 0 {
			res.LostUpdates += lost
		}
		if extra := v - a.hotAcked[id] - a.hotMaybe[id]; extra > 0 {
			res.ExtraUpdates += extra
		}
	}
	res.ExactlyOnce = res.LostInserts == 0 && res.Duplicates == 0 && res.LostUpdates == 0 && res.ExtraUpdates == 0
	return nil
}
