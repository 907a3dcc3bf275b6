package syncer_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/syncer"
)

// The source and, separately, the target are restarted while the service
// streams and the source takes writes; the engine reconnects by itself and
// converges.
func TestRestartSourceAndTarget(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)

	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning })
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, syncer.RunOptions{}) }()

	gen := workload.New(srcDB, "shop", 3)
	write := func(n int) {
		t.Helper()
		// The source may be down for a moment: retry a failed transaction.
		for i := 0; i < n; {
			if err := gen.Txn(context.Background()); err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			i++
		}
	}
	write(300)
	waitApplied(t, s, srcDB, 30*time.Second)

	write(100)
	if err := src.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(300)
	waitApplied(t, s, srcDB, 60*time.Second)

	write(100)
	if err := tgt.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(300)
	waitApplied(t, s, srcDB, 60*time.Second)

	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("service stop: %v", err)
	}
	st := s.Status()
	if st.State != syncer.StateStopped {
		t.Errorf("state after stop: %s", st.State)
	}
	if st.Reconnects < 1 {
		t.Errorf("no reconnect recorded across a source restart: %+v", st)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
}

// waitApplied waits until the service has applied everything the source
// has executed.
func waitApplied(t *testing.T, s *syncer.Syncer, srcDB *sql.DB, timeout time.Duration) {
	t.Helper()
	var want string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := srcDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&want); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		st := s.Status()
		have, err1 := gtid.Parse(gtid.MariaDB, st.AppliedGTIDSet)
		goal, err2 := gtid.Parse(gtid.MariaDB, want)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if have.Contains(goal) {
			return
		}
		if st.State == syncer.StateFailed {
			t.Fatalf("channel failed: %s", st.LastError)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not caught up after %s: applied %q, source %q, status %+v", timeout, s.Status().AppliedGTIDSet, want, s.Status())
}
