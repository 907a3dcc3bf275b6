package syncer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/syncer"
)

// A source that purges binlogs as soon as it can (RDS with 'binlog retention
// hours' NULL) and a backlog: the guard warns in /status before anything
// breaks.
func TestRetentionGuardWarnsBeforePurge(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	testenv.Exec(t, srcDB, `CREATE PROCEDURE mysql.rds_show_configuration() SELECT 'binlog retention hours' AS name, NULL AS value, 'd' AS description`)
	if err := workload.New(srcDB, "shop", 3).Run(context.Background(), 3000); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.BatchTxns = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, syncer.RunOptions{}) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.Status()
		if st.RetentionWarning != "" {
			if !strings.Contains(st.RetentionWarning, "rds_set_configuration") || st.BinlogExpiresIn != 0 {
				t.Errorf("warning %q, expires in %v", st.RetentionWarning, st.BinlogExpiresIn)
			}
			break
		}
		if st.TransactionsBehind == 0 && st.TxnsApplied > 0 || time.Now().After(deadline) {
			t.Fatalf("no retention warning while behind: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
