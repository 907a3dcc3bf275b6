package infra

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// A server-to-server move with a change of mind: cut over (the hook moves
// the writer to the target), roll back (the operator confirms the writer
// is back on the source), cut over again after a restart of the process,
// then take down. The writer never stops across the first three switches;
// every acknowledged write ends up on both databases exactly once.
//
// Over TLS: both servers refuse plaintext; the plan's databases use
// tls verify-identity with a client certificate (channels, guardrails,
// fence), the writer tls preferred.
func TestMigrateRollbackAndAgain(t *testing.T) {
	certs := testenv.NewTestCerts(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, TLS: certs, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	appSchema(t, srcDB, tgtDB)
	// An event of the application's: the stream parks it on the target;
	// the cut-over moves it there, the rollback back.
	testenv.Exec(t, srcDB, "CREATE EVENT app.tick ON SCHEDULE EVERY 1 HOUR DO DELETE FROM app.events WHERE seq < 0")
	eventsOn := func(when, src, tgt string) {
		t.Helper()
		for _, c := range []struct {
			db   *sql.DB
			side string
			want string
		}{{srcDB, "source", src}, {tgtDB, "target", tgt}} {
			var st string
			if err := c.db.QueryRow("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'app' AND EVENT_NAME = 'tick'").Scan(&st); err != nil || st != c.want {
				t.Errorf("%s: event app.tick on the %s is %q (%v), want %s", when, c.side, st, err, c.want)
			}
		}
	}

	dir := t.TempDir()
	p := &Plan{
		Name: "local-move", DataDir: t.TempDir(),
		Source: Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: src.Port, TLS: certs.ClientTLS()}},
		Target: Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: tgt.Port, TLS: certs.ClientTLS()}},
		Options: Options{StartFrom: "beginning", Hook: hookScript(t, dir), PollInterval: 5 * time.Millisecond, Timeout: 60 * time.Second,
			QuietPeriod: 200 * time.Millisecond, RollbackWindow: 100 * time.Millisecond},
	}
	p.Default()
	out := &syncBuffer{}
	rn := &Runner{Plan: p, Out: out}
	preview := &strings.Builder{}
	if err := rn.Preview(preview); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"share-key   SKIPPED", "dns         SKIPPED", "SET GLOBAL read_only = ON"} {
		if !strings.Contains(preview.String(), want) {
			t.Errorf("preview lacks %q:\n%s", want, preview)
		}
	}

	w := startWriter(t, dir, src.Port, tgt.Port)
	defer w.finish()
	if err := rn.Apply(t.Context(), "cutover", false); err != nil {
		t.Fatalf("apply through cutover: %v\n%s", err, out)
	}
	waitRows(t, tgtDB, "node = 'target'", 20)
	var ro int
	if err := srcDB.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 1 {
		t.Errorf("source read_only = %d (%v) after the cut-over, want 1", ro, err)
	}
	eventsOn("after the cut-over", "SLAVESIDE_DISABLED", "ENABLED")

	// Rollback without the hook: the operator moves the writer and confirms.
	p.Options.Hook = ""
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !strings.Contains(out.String(), "ACTION NEEDED: move the application's writes to the source") {
			time.Sleep(5 * time.Millisecond)
		}
		os.Remove(filepath.Join(dir, "moved-cutover"))
		if err := os.WriteFile(ConfirmFile(p, "rollback"), nil, 0o600); err != nil {
			t.Error(err)
		}
	}()
	if err := rn.Rollback(t.Context()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	<-done
	if err := srcDB.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
		t.Errorf("source read_only = %d (%v) after the rollback, want 0", ro, err)
	}
	eventsOn("after the rollback", "ENABLED", "SLAVESIDE_DISABLED")
	var lastOnTarget int64
	if err := tgtDB.QueryRow("SELECT MAX(seq) FROM app.events WHERE node = 'target'").Scan(&lastOnTarget); err != nil {
		t.Fatal(err)
	}
	waitRows(t, srcDB, "node = 'source' AND seq > "+itoa64(lastOnTarget), 20)
	st, err := rn.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st[stepIndex("cutover")].State != checkpoint.StepPending {
		t.Errorf("cutover is %s after the rollback, want pending", st[stepIndex("cutover")].State)
	}

	// Again, in a new process (a new Runner): the forward channel restarts
	// from its checkpoint and carries the writes made since the rollback.
	p.Options.Hook = hookScript(t, dir)
	rn = &Runner{Plan: p, Out: out}
	if err := rn.Apply(t.Context(), "cutover", true); err != nil {
		t.Fatalf("second cut-over: %v\n%s", err, out)
	}
	waitRows(t, tgtDB, "node = 'target' AND seq > "+itoa64(lastOnTarget), 20)
	w.finish()
	if err := rn.Apply(t.Context(), "", false); err != nil {
		t.Fatalf("take-down: %v\n%s", err, out)
	}
	t.Logf("%d writes acknowledged, %d refused while fenced\n%s", len(w.acked), len(w.errors), out)
	assertExactlyOnce(t, srcDB, "old database", w.acked)
	assertExactlyOnce(t, tgtDB, "new database", w.acked)
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "app")
	if !strings.Contains(out.String(), "left running for you to retire") {
		t.Error("take-down of a server-to-server move does not say the old server is left running")
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// waitRows waits until app.events has n rows matching where.
func waitRows(t *testing.T, db *sql.DB, where string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		if err := db.QueryRow("SELECT COUNT(*) FROM app.events WHERE " + where).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d rows with %s after 30s, want %d", got, where, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The cut-over refuses to start both directions when the nodes' inserts
// could collide, and touches nothing: the source is not fenced, the
// reverse channel never started.
func TestMigrateGuardrailRefuses(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	appSchema(t, srcDB, tgtDB)
	testenv.Exec(t, srcDB, "INSERT INTO app.events (seq, node) VALUES (1, 'source')")
	testenv.Exec(t, tgtDB, "REVOKE DELETE ON app.* FROM 'app'@'%'")
	p := &Plan{
		Name: "unsafe", DataDir: t.TempDir(),
		Source:  Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: src.Port}},
		Target:  Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: tgt.Port}},
		Options: Options{StartFrom: "beginning", Hook: "true", PollInterval: 5 * time.Millisecond, Timeout: 30 * time.Second},
	}
	p.Default()
	out := &syncBuffer{}
	err := (&Runner{Plan: p, Out: out}).Apply(t.Context(), "cutover", false)
	if err == nil || !strings.Contains(err.Error(), "auto-increment offsets") || !strings.Contains(err.Error(), "pitcrew bidi plan") {
		t.Fatalf("err = %v, want the auto-increment guardrail\n%s", err, out)
	}
	// A grant the target lacks is a difference verify --objects finds.
	if !strings.Contains(err.Error(), "user `app`@`%`: grants missing on the target: GRANT ALL PRIVILEGES ON `app`.*") || !strings.Contains(err.Error(), "options.accept_object_differences") {
		t.Errorf("err = %v, want the objects guardrail", err)
	}
	var ro int
	if err := srcDB.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
		t.Errorf("source read_only = %d (%v) after a refused cut-over", ro, err)
	}
	st, err := (&Runner{Plan: p}).Status()
	if err != nil {
		t.Fatal(err)
	}
	cut := st[stepIndex("cutover")]
	if cut.State != checkpoint.StepFailed || cut.Outputs["reverse_start"] != "" {
		t.Errorf("cutover: state %s, outputs %v; want failed before the reverse channel", cut.State, cut.Outputs)
	}
}
