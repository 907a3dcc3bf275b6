package syncer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
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

// The story: `sync --start-gtid 1-1-999999` wrote the progress row and
// idled, `catchup` with it exited 0 "caught up", and a start ahead of the
// source later died on 1236 while the recorded checkpoint overrode the
// corrected option. A start the source has not executed, or naming a
// domain it never had, is refused before anything is written, naming the
// offending part; the corrected start then works. --start-from target on
// a target without the source's GTID state is refused with the remedies.
func TestStartPositionsCheckedAgainstTheSource(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	testenv.Exec(t, srcDB, "CREATE DATABASE s", "CREATE TABLE s.t (id INT PRIMARY KEY)", "INSERT INTO s.t VALUES (1)")
	var pos string
	if err := srcDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	for _, c := range []struct {
		name    string
		mod     func(*syncer.Config)
		catchUp bool
		want    []string
	}{
		{"ahead of the source (sync)", func(c *syncer.Config) { c.StartFrom, c.StartGTID = syncer.StartGTID, "1-1-999999" }, false,
			[]string{`--start-gtid "1-1-999999" is not contained in the source's executed GTID set "` + pos + `"`, "domain 1 at seq 999999, beyond the source's seq", "nothing was written"}},
		{"ahead of the source (catchup)", func(c *syncer.Config) { c.StartFrom, c.StartGTID = syncer.StartGTID, "1-1-999999" }, true,
			[]string{"domain 1 at seq 999999"}},
		{"a domain the source never had", func(c *syncer.Config) { c.StartFrom, c.StartGTID = syncer.StartGTID, "1-1-1,9-9-5" }, true,
			[]string{"domain 9, which the source never had"}},
		{"a dump's position", func(c *syncer.Config) {
			c.StartFrom, c.StartGTID, c.StartGTIDOrigin = syncer.StartGTID, "7-7-3", "the position recorded in the dump d.sql"
		}, true, []string{`the position recorded in the dump d.sql "7-7-3" is not contained`, "domain 7, which the source never had"}},
		{"a target without the source's GTID state", func(c *syncer.Config) { c.StartFrom = syncer.StartTarget }, true,
			[]string{"--start-from target: the target holds no GTID state for the source's replication domains", "gtid_slave_pos", "--start-from beginning", "pitcrew load"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSyncer(t, src, tgt, func(cfg *syncer.Config) { cfg.DataDir = dataDir; c.mod(cfg) })
			err := s.Run(ctx, syncer.RunOptions{CatchUp: c.catchUp})
			if err == nil {
				t.Fatal("started; want a refusal")
			}
			t.Logf("refused: %v", err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
			var n int
			if err := tgtDB.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_pitcrew'").Scan(&n); err != nil || n != 0 {
				t.Fatalf("the target was written (_pitcrew exists: %d, %v)", n, err)
			}
		})
	}
	// A target whose state is ahead of the source (gtid_slave_pos).
	testenv.Exec(t, tgtDB, "SET GLOBAL gtid_slave_pos = '1-1-500'")
	err := newSyncer(t, src, tgt, func(c *syncer.Config) { c.DataDir = dataDir; c.StartFrom = syncer.StartTarget }).Run(ctx, syncer.RunOptions{CatchUp: true})
	if err == nil || !strings.Contains(err.Error(), "domain 1 at seq 500, beyond the source's seq") {
		t.Fatalf("target ahead of the source: %v", err)
	}
	testenv.Exec(t, tgtDB, "SET GLOBAL gtid_slave_pos = ''")
	// The corrected option is taken: nothing recorded overrides it.
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.DataDir = dataDir; c.StartFrom = syncer.StartBeginning })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("corrected start: %v", err)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "s")
}
