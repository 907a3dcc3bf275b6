package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/syncer"
)

// pair runs both directions between two nodes in-process.
type pair struct {
	a, b     *testenv.Server
	adb, bdb *sql.DB
	ab, ba   *syncer.Syncer
	stop     []context.CancelFunc
	done     []chan error
}

func newPair(t *testing.T) *pair {
	var srv [2]*testenv.Server
	for i, o := range conflict.Plan([]string{"a", "b"}) {
		// In the server's options: SET GLOBAL reaches only new sessions.
		srv[i] = testenv.New(t, testenv.Options{ServerID: uint32(i + 1), Extra: []string{
			fmt.Sprintf("--auto-increment-increment=%d", o.Increment), fmt.Sprintf("--auto-increment-offset=%d", o.Offset)}})
	}
	p := &pair{a: srv[0], b: srv[1]}
	p.adb, p.bdb = testenv.MustDB(t, p.a), testenv.MustDB(t, p.b)
	return p
}

func (p *pair) start(t *testing.T, from, to *testenv.Server, name string, echo []string, rules *conflict.Rules, mod func(*syncer.Config)) *syncer.Syncer {
	s := newSyncer(t, from, to, func(c *syncer.Config) {
		c.Channel = name
		c.Echo = echo
		c.Conflicts = rules
		c.ServerID = 4000 + from.ServerID
		c.DataDir = filepath.Join(t.TempDir(), name)
		c.StartFrom = syncer.StartBeginning
		if mod != nil {
			mod(c)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, syncer.RunOptions{}) }()
	p.stop = append(p.stop, cancel)
	p.done = append(p.done, done)
	t.Cleanup(cancel)
	return s
}

func (p *pair) stopAll(t *testing.T) {
	for i, c := range p.stop {
		c()
		if err := <-p.done[i]; err != nil {
			t.Errorf("channel stop: %v", err)
		}
	}
}

func executed(t *testing.T, db *sql.DB) string {
	var s string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// inSync waits until each channel has applied everything its source executed.
func inSync(t *testing.T, timeout time.Duration, chans ...struct {
	s  *syncer.Syncer
	db *sql.DB
}) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, c := range chans {
			st := c.s.Status()
			if st.State == syncer.StateFailed {
				t.Fatalf("channel %s failed: %s", st.Channel, st.LastError)
			}
			have, _ := gtid.Parse(gtid.MariaDB, st.AppliedGTIDSet)
			if !have.Contains(gtid.MustParse(gtid.MariaDB, executed(t, c.db))) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, c := range chans {
				t.Logf("%+v", c.s.Status())
			}
			t.Fatalf("not in sync after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ch(s *syncer.Syncer, db *sql.DB) struct {
	s  *syncer.Syncer
	db *sql.DB
} {
	return struct {
		s  *syncer.Syncer
		db *sql.DB
	}{s, db}
}

// Writers on both nodes at once: auto-increment inserts, updates of the same
// rows from both sides, update-vs-delete races, upserts of the same keys,
// and a DDL on one side. After quiescence both nodes are equal, the
// conflicts are in the ledgers, and nothing echoes (executed sets stay flat).
func TestBidiConcurrentWritersConverge(t *testing.T) {
	p := newPair(t)
	testenv.Exec(t, p.adb, "CREATE DATABASE app",
		"CREATE TABLE app.acc (id BIGINT AUTO_INCREMENT PRIMARY KEY, owner VARCHAR(20) NOT NULL, balance INT NOT NULL, ts DATETIME(6) NOT NULL)",
		"CREATE TABLE app.kv (k VARCHAR(10) PRIMARY KEY, v INT NOT NULL, ts DATETIME(6) NOT NULL)")
	rules := &conflict.Rules{Default: conflict.SourceWins, Tables: map[string]conflict.Rule{
		"app.acc": {Policy: conflict.LatestWins, Column: "ts"},
		"app.kv":  {Policy: conflict.LatestWins, Column: "ts"},
	}}
	chans, err := conflict.Mesh([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	p.ab = p.start(t, p.a, p.b, chans[0].Name, chans[0].Echo, rules, nil)
	// b->a starts at the beginning of B's binlog: everything there so far
	// was applied by a->b, so all of it is an echo. b->a applies every
	// transaction of five events or more as it decodes it (LazyBytes 1):
	// echoes must be found before any of their rows is applied, and
	// conflicts resolved on that path too.
	p.ba = p.start(t, p.b, p.a, chans[1].Name, chans[1].Echo, rules, func(c *syncer.Config) { c.LazyBytes = 1 })
	inSync(t, 30*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	if st := p.ba.Status(); st.Echoes == 0 || st.RowsApplied != 0 {
		t.Errorf("b->a applied %d rows and dropped %d echoes of a->b's work", st.RowsApplied, st.Echoes)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, db := range []*sql.DB{p.adb, p.bdb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writer(db, uint64(i), 400, i == 1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	inSync(t, 60*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	// Flat: no transaction keeps bouncing between the nodes. The sleep is
	// deliberate: time passes to prove that nothing happens in it.
	ea, eb := executed(t, p.adb), executed(t, p.bdb)
	time.Sleep(3 * time.Second)
	if executed(t, p.adb) != ea || executed(t, p.bdb) != eb {
		t.Errorf("executed sets still moving: %s -> %s, %s -> %s", ea, executed(t, p.adb), eb, executed(t, p.bdb))
	}
	testenv.AssertTablesEqual(t, p.adb, p.bdb, "app")
	total := 0
	for _, db := range []*sql.DB{p.adb, p.bdb} {
		entries, err := conflict.Ledger{Schema: "_pitcrew"}.List(context.Background(), db, "")
		if err != nil {
			t.Fatal(err)
		}
		total += len(entries)
	}
	sa, sb := p.ab.Status(), p.ba.Status()
	if total == 0 || int64(total) > sa.Conflicts+sb.Conflicts {
		t.Errorf("%d ledger entries, %d+%d counted conflicts", total, sa.Conflicts, sb.Conflicts)
	}
	t.Logf("conflicts in the ledgers: %d; echoes dropped: %d + %d; b->a took %d transactions as decoded", total, sa.Echoes, sb.Echoes, sb.LargeTxns)
	if sb.LargeTxns == 0 {
		t.Error("b->a took no transaction the lazy way: the test did not test it")
	}
	p.stopAll(t)
}

// writer makes a node's share of contested changes.
func writer(db *sql.DB, seed uint64, n int, ddl bool) error {
	r := rand.New(rand.NewPCG(seed, 99))
	for i := 0; i < n; i++ {
		if ddl && i == n/2 {
			if _, err := db.Exec("ALTER TABLE app.kv ADD COLUMN note VARCHAR(10) NULL"); err != nil {
				return err
			}
		}
		var q string
		var args []any
		switch op := r.IntN(10); {
		case op < 3:
			q, args = "INSERT INTO app.acc (owner, balance, ts) VALUES (?, ?, NOW(6))", []any{fmt.Sprintf("w%d", seed), r.IntN(1000)}
		case op < 6:
			q, args = "UPDATE app.acc SET balance = balance + ?, ts = NOW(6) WHERE id = ?", []any{1 + r.IntN(9), 1 + r.IntN(60)}
		case op < 7:
			q, args = "DELETE FROM app.acc WHERE id = ?", []any{1 + r.IntN(60)}
		default:
			q, args = "INSERT INTO app.kv (k, v, ts) VALUES (?, ?, NOW(6)) ON DUPLICATE KEY UPDATE v = v + VALUES(v), ts = NOW(6)", []any{fmt.Sprintf("k%d", r.IntN(15)), 1 + r.IntN(5)}
		}
		if err := execRetry(db, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// execRetry retries deadlocks and lock waits, as an application would.
func execRetry(db *sql.DB, q string, args ...any) error {
	for attempt := 0; ; attempt++ {
		_, err := db.Exec(q, args...)
		if err == nil {
			return nil
		}
		if c := conn.Code(err); (c != 1213 && c != 1205) || attempt > 20 {
			return fmt.Errorf("%s: %w", q, err)
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond) // back off, as an application would
	}
}

// rowsOn is the number of rows in table on db (0 when it cannot be read).
func rowsOn(db *sql.DB, table string) int {
	var n int
	db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n)
	return n
}

// The story's switch: A->B runs under load; B->A starts; the writers move
// from A to B mid-load; A->B is stopped once drained. Every writer's
// sequence numbers are on both nodes exactly once.
func TestBidiSwitchOver(t *testing.T) {
	p := newPair(t)
	testenv.Exec(t, p.adb, "CREATE DATABASE app",
		"CREATE TABLE app.log (writer INT NOT NULL, seq INT NOT NULL, id BIGINT AUTO_INCREMENT UNIQUE, PRIMARY KEY (writer, seq))")
	chans, _ := conflict.Mesh([]string{"a", "b"})
	rules := &conflict.Rules{Default: conflict.Park} // nothing may conflict here: park would show it
	p.ab = p.start(t, p.a, p.b, chans[0].Name, chans[0].Echo, rules, nil)
	inSync(t, 30*time.Second, ch(p.ab, p.adb))

	const writers, perWriter = 3, 300
	var target sync.Map // writer -> *sql.DB it writes to now
	for w := 0; w < writers; w++ {
		target.Store(w, p.adb)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; seq <= perWriter; seq++ {
				db, _ := target.Load(w)
				if err := execRetry(db.(*sql.DB), "INSERT INTO app.log (writer, seq) VALUES (?, ?)", w, seq); err != nil {
					errs <- err
					return
				}
				time.Sleep(2 * time.Millisecond) // the application's pace
			}
		}()
	}
	// A->B runs under load: the writers' rows arrive on B.
	testenv.WaitFor(t, 30*time.Second, "A->B applying the writers' rows", func() bool { return rowsOn(p.bdb, "app.log") >= 60 })
	// The reverse direction starts at B's current position; the writers
	// move only once it has taken it (state streaming: its start is
	// recorded), or their first writes on B would be before its start.
	p.ba = p.start(t, p.b, p.a, chans[1].Name, chans[1].Echo, rules, func(c *syncer.Config) { c.StartFrom = syncer.StartNow })
	testenv.WaitFor(t, 30*time.Second, "B->A started", func() bool {
		st := p.ba.Status()
		if st.State == syncer.StateFailed {
			t.Fatalf("B->A failed: %s", st.LastError)
		}
		return st.State == syncer.StateStreaming || st.State == syncer.StateCaughtUp
	})
	for w := 0; w < writers; w++ { // the application moves, one writer at a time
		target.Store(w, p.bdb)
		// Deliberate: for a while some writers are on A and some on B.
		time.Sleep(50 * time.Millisecond)
	}
	// A takes no writes now: once A->B has drained it, stop it.
	inSync(t, 30*time.Second, ch(p.ab, p.adb))
	p.stop[0]()
	if err := <-p.done[0]; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	inSync(t, 30*time.Second, ch(p.ba, p.bdb))
	for _, db := range []*sql.DB{p.adb, p.bdb} {
		rows, err := db.Query("SELECT writer, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM app.log GROUP BY writer")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var w, c, d, lo, hi int
			if err := rows.Scan(&w, &c, &d, &lo, &hi); err != nil {
				t.Fatal(err)
			}
			if c != perWriter || d != perWriter || lo != 1 || hi != perWriter {
				t.Errorf("writer %d: %d rows, %d distinct, %d..%d; want 1..%d once each", w, c, d, lo, hi, perWriter)
			}
			n++
		}
		rows.Close()
		if n != writers {
			t.Errorf("%d writers on a node, want %d", n, writers)
		}
	}
	if n := p.ab.Status().Conflicts + p.ba.Status().Conflicts; n != 0 {
		t.Errorf("%d conflicts in a clean switch-over", n)
	}
	testenv.AssertTablesEqual(t, p.adb, p.bdb, "app")
	p.stop[1]()
	<-p.done[1]
}

// Echoes too big to decode whole (LazyBytes 1 takes every transaction of
// five events or more the lazy way) are recognised by the progress-row
// write in their last event before any of their rows is applied: b->a
// applies nothing of a->b's work.
func TestLazyEchoesDropped(t *testing.T) {
	p := newPair(t)
	testenv.Exec(t, p.adb, "CREATE DATABASE app", "CREATE TABLE app.acc (id BIGINT PRIMARY KEY, owner VARCHAR(20) NOT NULL)")
	for i := range 50 {
		tx, err := p.adb.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for j, owner := range []string{"x", "y", "z"} {
			if _, err := tx.Exec("INSERT INTO app.acc VALUES (?, ?)", 3*i+j, owner); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rules := &conflict.Rules{Default: conflict.SourceWins}
	chans, err := conflict.Mesh([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	p.ab = p.start(t, p.a, p.b, chans[0].Name, chans[0].Echo, rules, nil)
	inSync(t, 30*time.Second, ch(p.ab, p.adb))
	p.ba = p.start(t, p.b, p.a, chans[1].Name, chans[1].Echo, rules, func(c *syncer.Config) { c.LazyBytes = 1 })
	inSync(t, 30*time.Second, ch(p.ba, p.bdb))
	st := p.ba.Status()
	t.Logf("b->a: %d echoes dropped, %d taken as decoded, %d rows applied", st.Echoes, st.LargeTxns, st.RowsApplied)
	if st.RowsApplied != 0 || st.LargeTxns == 0 || st.Echoes == 0 {
		t.Errorf("b->a applied %d rows; %d echoes, %d lazy transactions (want 0 rows, some of both)", st.RowsApplied, st.Echoes, st.LargeTxns)
	}
	p.stopAll(t)
}
