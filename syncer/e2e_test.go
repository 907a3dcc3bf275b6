package syncer_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	// The driver prints connection hiccups (expected here: servers restart).
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PITCREW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newSyncer(t *testing.T, src, tgt *testenv.Server, mod func(*syncer.Config)) *syncer.Syncer {
	t.Helper()
	cfg := syncer.Config{
		Source: src.Endpoint(), Target: tgt.Endpoint(),
		DataDir: filepath.Join(t.TempDir(), "data"), Logger: testLogger(t),
		RestartBackoffMax: time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := syncer.New(cfg, syncer.NewMetrics(prometheus.NewRegistry(), cfg.Channel+"x"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A randomised workload of a few thousand multi-statement transactions over
// tables of varied types, created on the source only: the target gets its
// schema and rows from the stream, and ends equal.
func TestCatchUpRandomWorkload(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 1)
	if err := gen.Run(ctx, 1500); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("first catch-up: %v", err)
	}
	// More writes, and a second catch-up that resumes from the checkpoint.
	if err := gen.Run(ctx, 1500); err != nil {
		t.Fatal(err)
	}
	testenv.Exec(t, srcDB, "ALTER TABLE shop.counters ADD COLUMN extra VARCHAR(10) NULL", "UPDATE shop.counters SET extra = 'late'")
	// A fresh data dir: the target's progress row alone says where to resume.
	s2 := newSyncer(t, src, tgt, func(c *syncer.Config) { c.DataDir = filepath.Join(t.TempDir(), "other") })
	if err := s2.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("second catch-up: %v", err)
	}
	if st := s2.Status(); st.State != syncer.StateCaughtUp || st.TxnsApplied < 1500 {
		t.Errorf("status after second catch-up: %+v", st)
	}
	t.Logf("changes made on the source: %v", gen.Changes)
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
}

// A source that logs no column names (binlog_row_metadata=MINIMAL, MariaDB's
// default is NO_LOG) is mapped by position onto the target's definition,
// and generated columns are never written.
func TestCatchUpWithoutColumnNamesAndGeneratedColumns(t *testing.T) {
	for _, meta := range []string{"MINIMAL", "NO_LOG"} {
		t.Run(meta, func(t *testing.T) {
			src := testenv.New(t, testenv.Options{ServerID: 1, RowMetadata: meta})
			tgt := testenv.New(t, testenv.Options{ServerID: 2})
			srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
			ctx := context.Background()
			testenv.Exec(t, srcDB, workload.Schema("shop")...)
			testenv.Exec(t, srcDB,
				"CREATE TABLE shop.g (id INT PRIMARY KEY, a INT, v INT AS (a * 2) VIRTUAL, p INT AS (a + 1) PERSISTENT, s VARCHAR(8))",
				"INSERT INTO shop.g (id, a, s) VALUES (1, 10, 'x'), (2, 20, 'y'), (3, NULL, NULL)",
				"UPDATE shop.g SET a = a + 5 WHERE id < 3",
				"DELETE FROM shop.g WHERE id = 2",
				`CREATE TABLE shop.u (id BIGINT UNSIGNED PRIMARY KEY, i INT UNSIGNED, m MEDIUMINT UNSIGNED,
  s SMALLINT UNSIGNED, t TINYINT UNSIGNED, si BIGINT)`,
				"INSERT INTO shop.u VALUES (18446744073709551615, 4294967295, 16777215, 65535, 255, -9223372036854775808), (9223372036854775808, 2147483648, 8388608, 32768, 128, -1), (1, 1, 1, 1, 1, 1)",
				"UPDATE shop.u SET t = 254 WHERE id = 18446744073709551615",
				"DELETE FROM shop.u WHERE id = 9223372036854775808")
			if err := workload.New(srcDB, "shop", 4).Run(ctx, 300); err != nil {
				t.Fatal(err)
			}
			s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning })
			if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
				t.Fatal(err)
			}
			testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
		})
	}
}
