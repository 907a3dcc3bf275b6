package syncer_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/syncer"
)

// The story's error 1236: pitcrew is stopped, the source takes writes and
// purges its binlogs past the channel's checkpoint. The next start refuses,
// naming exactly the missing transactions, and writes nothing.
func TestPurgedBinlogsRefusedWithMissingSet(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 5})
	tgt := testenv.New(t, testenv.Options{ServerID: 6})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 8)
	if err := gen.Run(ctx, 50); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	run := func() error {
		s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.DataDir = dataDir })
		return s.Run(ctx, syncer.RunOptions{CatchUp: true})
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	var applied string
	if err := tgtDB.QueryRow("SELECT gtid_set FROM _pitcrew.progress").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	// Stopped; the source writes 20 transactions and purges them.
	if err := gen.Run(ctx, 20); err != nil {
		t.Fatal(err)
	}
	last := purgeAll(t, srcDB)
	err := run()
	var gap *binlog.GapError
	if !errors.As(err, &gap) {
		t.Fatalf("want a GapError, got %v", err)
	}
	// applied is 5-5-N: the missing range is N+1 .. the last purged seq.
	n := strings.TrimPrefix(applied, "5-5-")
	lastSeq := strings.TrimPrefix(last, "5-5-")
	if gap.Count != 20 || !strings.Contains(err.Error(), "domain 5: seq ") || !strings.Contains(gap.Missing, "-"+lastSeq) {
		t.Errorf("gap %+v (applied %s, last %s, n %s)", gap, applied, last, n)
	}
	if !strings.Contains(err.Error(), "rds_set_configuration") || !strings.Contains(err.Error(), "--start-from target") {
		t.Errorf("no remedies in %q", err)
	}
	var after string
	if err := tgtDB.QueryRow("SELECT gtid_set FROM _pitcrew.progress").Scan(&after); err != nil || after != applied {
		t.Errorf("the refused start moved the target: %q -> %q (%v)", applied, after, err)
	}
}

// purgeAll rotates the source's binlog and purges every older file, and
// returns the source's GTID position.
func purgeAll(t *testing.T, db *sql.DB) string {
	t.Helper()
	var last, newest string
	testenv.Exec(t, db, "FLUSH BINARY LOGS")
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&last); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var size any
		if err := rows.Scan(&newest, &size); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	// MariaDB keeps a file until InnoDB's binlog checkpoint has passed it:
	// purge until the oldest file is the newest.
	deadline := time.Now().Add(20 * time.Second)
	for {
		testenv.Exec(t, db, "PURGE BINARY LOGS TO '"+newest+"'")
		var oldest string
		var size any
		if err := db.QueryRow("SHOW BINARY LOGS").Scan(&oldest, &size); err != nil {
			t.Fatal(err)
		}
		if oldest == newest {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source still holds %s after 20s of purging", oldest)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The source purges what the channel needs while the channel is cut off
// from it; when the network comes back the server answers 1236, and the
// channel stops with the same exact message as the check before streaming.
func TestPurgeWhileDisconnectedTranslates1236(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 5})
	tgt := testenv.New(t, testenv.Options{ServerID: 6})
	srcDB := testenv.MustDB(t, src)
	proxy, err := testenv.NewProxy(src.Endpoint().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 9)
	if err := gen.Run(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) {
		c.Source = conn.Endpoint{Host: "127.0.0.1", Port: proxy.Port(), User: "root"}
		c.StartFrom = syncer.StartBeginning
		c.RestartBackoffMax = 200 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, syncer.RunOptions{}) }()
	waitApplied(t, s, srcDB, 30*time.Second)

	proxy.Pause()
	if err := gen.Run(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	purgeAll(t, srcDB)
	proxy.Resume()
	select {
	case err := <-done:
		var gap *binlog.GapError
		if !errors.As(err, &gap) || gap.Count != 20 {
			t.Fatalf("want a GapError for 20 transactions, got %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the channel did not stop: %+v", s.Status())
	}
}
