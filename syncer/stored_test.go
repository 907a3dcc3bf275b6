package syncer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Both nodes of a bidirectional pair take writes. A parent deleted on one
// node cascades on the other (ON DELETE CASCADE, SET NULL: the cascaded
// rows are in no binlog); each node's triggers fire for its own
// application's writes only: the log rows a trigger wrote arrive
// replicated, and the other node's copy of the trigger stays silent for
// them (a BEFORE trigger does not double a value twice). Triggers come
// through the stream in both directions.
func TestBidiCascadesAndTriggers(t *testing.T) {
	p := newPair(t)
	testenv.Exec(t, p.adb, "CREATE DATABASE app",
		"CREATE TABLE app.p (id INT PRIMARY KEY)",
		"CREATE TABLE app.c (id INT PRIMARY KEY, pid INT, v INT, FOREIGN KEY (pid) REFERENCES app.p (id) ON DELETE CASCADE)",
		"CREATE TABLE app.sn (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES app.p (id) ON DELETE SET NULL)",
		"CREATE TABLE app.log (sid INT, what VARCHAR(5), id INT, PRIMARY KEY (sid, what, id))",
		"CREATE TRIGGER app.p_ins AFTER INSERT ON app.p FOR EACH ROW INSERT INTO app.log VALUES (@@server_id, 'ins', NEW.id)",
		"CREATE TRIGGER app.p_del AFTER DELETE ON app.p FOR EACH ROW INSERT INTO app.log VALUES (@@server_id, 'del', OLD.id)",
		"CREATE TRIGGER app.c_upd BEFORE UPDATE ON app.c FOR EACH ROW SET NEW.v = NEW.v * 2")
	rules := &conflict.Rules{Default: conflict.SourceWins}
	chans, err := conflict.Mesh([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	// b gets the tables and triggers through the stream; b->a starts once
	// b has them (nodes start equal, as from one snapshot).
	p.ab = p.start(t, p.a, p.b, chans[0].Name, chans[0].Echo, rules, nil)
	inSync(t, 30*time.Second, ch(p.ab, p.adb))
	p.ba = p.start(t, p.b, p.a, chans[1].Name, chans[1].Echo, rules, nil)
	inSync(t, 30*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	for _, s := range []struct {
		name   string
		status func() []string
	}{{"b", func() []string { return p.ab.Status().Triggers.Guarded }}, {"a", func() []string { return p.ba.Status().Triggers.Guarded }}} {
		// a->b guarded them as the stream created them on b; b->a found
		// them guarded on a (a->b guarded a's copies too).
		if got := s.status(); len(got) != 3 {
			t.Errorf("node %s: guarded %v, want the 3 triggers", s.name, got)
		}
	}
	testenv.Exec(t, p.adb, "INSERT INTO app.p VALUES (1)", "INSERT INTO app.c VALUES (10, 1, 1)", "INSERT INTO app.sn VALUES (100, 1)")
	testenv.Exec(t, p.bdb, "INSERT INTO app.p VALUES (2)", "INSERT INTO app.c VALUES (20, 2, 1)", "INSERT INTO app.sn VALUES (200, 2)")
	inSync(t, 30*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	testenv.Exec(t, p.adb, "UPDATE app.c SET v = v + 1 WHERE id = 20")
	testenv.Exec(t, p.bdb, "UPDATE app.c SET v = v + 1 WHERE id = 10")
	inSync(t, 30*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	for _, n := range []struct {
		name string
		rows func() ([]string, error)
	}{
		{"a", func() ([]string, error) {
			return conn.Strings(context.Background(), p.adb, "SELECT CONCAT(id, '=', v) FROM app.c ORDER BY id")
		}},
		{"b", func() ([]string, error) {
			return conn.Strings(context.Background(), p.bdb, "SELECT CONCAT(id, '=', v) FROM app.c ORDER BY id")
		}},
	} {
		if got, err := n.rows(); err != nil || fmt.Sprint(got) != "[10=4 20=4]" {
			t.Errorf("node %s: c is %v (%v), want each v doubled once: [10=4 20=4]", n.name, got, err)
		}
	}
	// Each node deletes the other's parent; a trigger created on b comes
	// to a through the stream.
	testenv.Exec(t, p.adb, "DELETE FROM app.p WHERE id = 2")
	testenv.Exec(t, p.bdb, "DELETE FROM app.p WHERE id = 1",
		"CREATE TRIGGER app.sn_ins AFTER INSERT ON app.sn FOR EACH ROW INSERT INTO app.log VALUES (@@server_id, 'sn', NEW.id)")
	inSync(t, 30*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	testenv.Exec(t, p.bdb, "INSERT INTO app.sn VALUES (300, NULL)")
	testenv.Exec(t, p.adb, "INSERT INTO app.sn VALUES (400, NULL)")
	inSync(t, 30*time.Second, ch(p.ab, p.adb), ch(p.ba, p.bdb))
	testenv.AssertTablesEqual(t, p.adb, p.bdb, "app")
	want := map[string]string{
		"SELECT COUNT(*) FROM app.c": "[0]",
		"SELECT CONCAT(id, ':', COALESCE(pid, 'null')) FROM app.sn ORDER BY id": "[100:null 200:null 300:null 400:null]",
		"SELECT CONCAT(sid, what, id) FROM app.log ORDER BY 1":                  "[1del2 1ins1 1sn400 2del1 2ins2 2sn300]",
	}
	for q, w := range want {
		for name, db := range map[string]*testenv.Server{"a": p.a, "b": p.b} {
			got, err := conn.Strings(context.Background(), testenv.MustDB(t, db), q)
			if err != nil || fmt.Sprint(got) != w {
				t.Errorf("node %s: %s = %v (%v), want %s", name, q, got, err, w)
			}
		}
	}
	guarded, err := conn.Strings(context.Background(), p.adb, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE ACTION_STATEMENT LIKE 'IF @pitcrew_apply IS NULL%' ORDER BY 1")
	if err != nil || strings.Join(guarded, ",") != "c_upd,p_del,p_ins,sn_ins" {
		t.Errorf("guarded on a: %v %v", guarded, err)
	}
	p.stopAll(t)
}
