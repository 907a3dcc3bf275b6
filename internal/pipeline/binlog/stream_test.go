package binlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// A source that vanishes without closing the connection (the proxy stops
// forwarding) ends the stream after three missed heartbeats with a
// retryable error; a consumer that is slow to take transactions does not.
func TestStreamWatchdog(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	db := testenv.MustDB(t, src)
	testenv.Exec(t, db, "CREATE DATABASE w", "CREATE TABLE w.t (id INT PRIMARY KEY)")
	proxy, err := testenv.NewProxy(src.Endpoint().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ep := src.Endpoint()
	ep.Host, ep.Port = "127.0.0.1", proxy.Port()
	var pos string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	out := make(chan *txn.Txn)
	done := make(chan error, 1)
	go func() {
		done <- Stream(context.Background(), Config{Source: ep, Flavor: gtid.MariaDB, ServerID: 77, Heartbeat: 100 * time.Millisecond},
			gtid.MustParse(gtid.MariaDB, pos), out, nil)
	}()
	take := func() {
		t.Helper()
		select {
		case <-out:
		case err := <-done:
			t.Fatalf("stream ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no transaction")
		}
	}
	testenv.Exec(t, db, "INSERT INTO w.t VALUES (1)")
	take()
	// Ten heartbeat periods without taking: the stream waits on us, alive.
	testenv.Exec(t, db, "INSERT INTO w.t VALUES (2)", "INSERT INTO w.t VALUES (3)")
	time.Sleep(time.Second)
	take()
	take()

	proxy.Stall()
	start := time.Now()
	select {
	case err := <-done:
		if !conn.Retryable(err) || !strings.Contains(err.Error(), "presumed dead") {
			t.Fatalf("stream ended with %v; want a retryable 'presumed dead' error", err)
		}
		t.Logf("stalled stream ended after %s: %v", time.Since(start).Round(10*time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled stream did not end within 5s (heartbeats every 100ms)")
	}
	proxy.Resume()
}
