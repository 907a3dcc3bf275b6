package syncer_test

import (
	"context"
	"testing"

	"github.com/pitcrew/pitcrew/internal/testenv"
	"github.com/pitcrew/pitcrew/internal/workload"
	"github.com/pitcrew/pitcrew/syncer"
)

// A target restored from a dump of the source carries the source's GTID
// position in gtid_slave_pos (what `mariadb-dump --gtid` sets); with
// --start-from target the channel continues exactly after it.
func TestStartFromRestoredTarget(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 11)
	if err := gen.Run(ctx, 300); err != nil {
		t.Fatal(err)
	}
	// Build the target as an exact copy (a "seed" channel from the
	// beginning; mariadb-dump cannot be used here: it prints FLOAT values
	// with 6 significant digits, so its restore is not exact), then make it
	// look restored from a snapshot: no channel state, the source's position
	// in gtid_slave_pos as `mariadb-dump --gtid` would set it.
	seed := newSyncer(t, src, tgt, func(c *syncer.Config) { c.Channel = "seed"; c.StartFrom = syncer.StartBeginning })
	if err := seed.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatal(err)
	}
	var pos string
	if err := srcDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, tgtDB, "DROP DATABASE _pitcrew", "RESET MASTER", "SET GLOBAL gtid_slave_pos = '"+pos+"'")
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
	// The source moves on after the snapshot.
	if err := gen.Run(ctx, 300); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartTarget })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.TxnsApplied != 300 {
		t.Errorf("applied %d transactions, want the 300 after the snapshot", st.TxnsApplied)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
}
