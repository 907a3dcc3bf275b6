package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/pitcrew/pitcrew/internal/compare"
	"github.com/pitcrew/pitcrew/internal/testenv"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

// CatchupConfig sizes the catch-up comparison.
type CatchupConfig struct {
	Txns    int  // backlog transactions (sysbench oltp_write_only shape: 4 row changes each); default 20,000
	Tables  int  // default 4
	Rows    int  // rows per table before the backlog; default 10,000
	Durable bool // innodb_flush_log_at_trx_commit=1 and sync_binlog=1 on every server (default: 2 and 0)
	Threads int  // native parallel replica threads; default 4
	Rounds  int  // interleaved rounds; default 1
	// CPUProfile, when set, writes a CPU profile of pitcrew's last run.
	CPUProfile string
	Dir        string
	Log     io.Writer
}

// CatchupResult is one contender's run.
type CatchupResult struct {
	Contender string  `json:"contender"`
	Round     int     `json:"round"`
	Seconds   float64 `json:"seconds"`
	TxnsPerS  float64 `json:"txns_per_sec"`
	RowsPerS  float64 `json:"rows_per_sec"`
	Equal     bool    `json:"checksums_equal"`
	// CPU seconds during the run: the target server's, and this process's
	// (pitcrew's own work; near zero for the native replica).
	ServerCPU  float64 `json:"target_server_cpu_seconds"`
	PitcrewCPU float64 `json:"pitcrew_cpu_seconds"`
	Note      string  `json:"note,omitempty"`
}

// Catchup builds a backlog on a source and times how long each contender
// takes to apply it to a target restored from the pre-backlog state: the
// native MariaDB replica single-threaded, the native replica with parallel
// optimistic threads, and pitcrew with its defaults. Every target starts
// from the same dump; every contender's result is checked with CHECKSUM
// TABLE.
func Catchup(ctx context.Context, cfg CatchupConfig) ([]CatchupResult, error) {
	setDefault(&cfg.Txns, 20000)
	setDefault(&cfg.Tables, 4)
	setDefault(&cfg.Rows, 10000)
	setDefault(&cfg.Threads, 4)
	setDefault(&cfg.Rounds, 1)
	cfg.Log = logTo(cfg.Log)
	cleanup, err := scratch(&cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	extra := []string{"--innodb-buffer-pool-size=512M"}
	if cfg.Durable {
		extra = append(extra, "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1")
	}
	src, err := testenv.Start(ctx, testenv.Options{Dir: filepath.Join(cfg.Dir, "src"), ServerID: 1, Extra: extra})
	if err != nil {
		return nil, err
	}
	defer src.Kill()
	srcDB, err := src.DB()
	if err != nil {
		return nil, err
	}
	defer srcDB.Close()
	fmt.Fprintf(cfg.Log, "preparing %d tables x %d rows\n", cfg.Tables, cfg.Rows)
	if err := prepare(ctx, srcDB, cfg.Rows*cfg.Tables, cfg.Tables); err != nil {
		return nil, err
	}
	dump := filepath.Join(cfg.Dir, "before.sql")
	if out, err := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("mariadb-dump -h127.0.0.1 -P%d -uroot --single-transaction --databases %s > %s", src.Port, schema, dump)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dumping the pre-backlog state: %v: %s", err, out)
	}
	var before, after string
	if err := srcDB.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&before); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "writing a backlog of %d transactions\n", cfg.Txns)
	if err := backlog(ctx, srcDB, cfg); err != nil {
		return nil, err
	}
	if err := srcDB.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&after); err != nil {
		return nil, err
	}
	tables, err := compare.Schema(ctx, srcDB, schema)
	if err != nil {
		return nil, err
	}
	contenders := []struct {
		name string
		run  func(tgt *testenv.Server, db *sql.DB) error
	}{
		{"native single-threaded", func(tgt *testenv.Server, db *sql.DB) error { return native(ctx, db, src, before, after, 0) }},
		{fmt.Sprintf("native parallel (%d, optimistic)", cfg.Threads), func(tgt *testenv.Server, db *sql.DB) error {
			return native(ctx, db, src, before, after, cfg.Threads)
		}},
		{"pitcrew (defaults)", func(tgt *testenv.Server, db *sql.DB) error {
			return pitcrewCatchup(ctx, src, tgt, before, after, cfg.Dir, cfg.CPUProfile)
		}},
	}
	var out []CatchupResult
	for round := 1; round <= cfg.Rounds; round++ {
		for i, c := range contenders {
			dir := filepath.Join(cfg.Dir, fmt.Sprintf("tgt-%d-%d", round, i))
			tgt, err := testenv.Start(ctx, testenv.Options{Dir: dir, ServerID: uint32(10 + i), Extra: append(extra, "--skip-slave-start")})
			if err != nil {
				return out, err
			}
			db, err := tgt.DB()
			if err != nil {
				tgt.Kill()
				return out, err
			}
			r := CatchupResult{Contender: c.name, Round: round}
			if err := restore(ctx, tgt, dump); err != nil {
				r.Note = err.Error()
			} else {
				warm(ctx, db, tables)
				cpu0, self0 := tgt.CPU(), selfCPU()
				start := time.Now()
				err := c.run(tgt, db)
				r.Seconds = time.Since(start).Seconds()
				r.ServerCPU, r.PitcrewCPU = (tgt.CPU() - cpu0).Seconds(), (selfCPU() - self0).Seconds()
				if err != nil {
					r.Note = err.Error()
				} else {
					r.TxnsPerS = float64(cfg.Txns) / r.Seconds
					r.RowsPerS = 4 * r.TxnsPerS
					res, err := compare.Tables(ctx, srcDB, db, schema, tables)
					r.Equal = err == nil
					for _, x := range res {
						r.Equal = r.Equal && x.Equal()
					}
				}
			}
			fmt.Fprintf(cfg.Log, "round %d: %-32s %7.2fs %8.0f tx/s equal=%v cpu: server %.2fs pitcrew %.2fs %s\n", round, c.name, r.Seconds, r.TxnsPerS, r.Equal, r.ServerCPU, r.PitcrewCPU, r.Note)
			out = append(out, r)
			db.Close()
			tgt.Kill()
			os.RemoveAll(dir)
		}
	}
	return out, nil
}

// backlog writes sysbench oltp_write_only-shaped transactions: an indexed
// update, a non-indexed update, a delete and an insert of the same id.
func backlog(ctx context.Context, db *sql.DB, cfg CatchupConfig) error {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < cfg.Txns; i++ {
		t := fmt.Sprintf("%s.sbtest%d", schema, 1+r.IntN(cfg.Tables))
		id := 1 + r.IntN(cfg.Rows)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"UPDATE " + t + " SET k = k + 1 WHERE id = ?", []any{id}},
			{"UPDATE " + t + " SET c = ? WHERE id = ?", []any{strings.Repeat(fmt.Sprintf("%011d-", r.IntN(1e9)), 10), 1 + r.IntN(cfg.Rows)}},
			{"DELETE FROM " + t + " WHERE id = ?", []any{id}},
			{"INSERT INTO " + t + " (id, k, c, pad) VALUES (?, ?, ?, ?)", []any{id, r.IntN(cfg.Rows), strings.Repeat("x", 119), strings.Repeat("p", 59)}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				tx.Rollback() //nolint:errcheck
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// restore loads the pre-backlog dump without writing the target's binlog.
func restore(ctx context.Context, tgt *testenv.Server, dump string) error {
	out, err := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("mariadb -h127.0.0.1 -P%d -uroot --init-command='SET SESSION sql_log_bin=0' < %s", tgt.Port, dump)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restoring: %v: %s", err, out)
	}
	return nil
}

// warm reads every table so buffer pools are equally warm for everyone.
func warm(ctx context.Context, db *sql.DB, tables []string) {
	for _, t := range tables {
		var n int
		_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+schema+"."+t+" FORCE INDEX (PRIMARY)").Scan(&n)
	}
}

// native runs the server's own replica from before to after; threads 0 is
// the single-threaded applier.
func native(ctx context.Context, db *sql.DB, src *testenv.Server, before, after string, threads int) error {
	mode := "conservative"
	if threads > 0 {
		mode = "optimistic"
	}
	for _, q := range []string{
		fmt.Sprintf("SET GLOBAL slave_parallel_threads = %d", threads),
		"SET GLOBAL slave_parallel_mode = '" + mode + "'",
		"SET GLOBAL gtid_slave_pos = '" + before + "'",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, MASTER_USER = 'root', MASTER_USE_GTID = slave_pos", src.Port),
		"START SLAVE",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	var res sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 600)", after).Scan(&res); err != nil {
		return err
	}
	if !res.Valid || res.Int64 != 0 {
		return fmt.Errorf("MASTER_GTID_WAIT did not reach %s", after)
	}
	_, err := db.ExecContext(ctx, "STOP SLAVE")
	return err
}

func pitcrewCatchup(ctx context.Context, src, tgt *testenv.Server, before, after, dir, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	d, err := os.MkdirTemp(dir, "pitcrew-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	s, err := syncer.New(syncer.Config{Source: src.Endpoint(), Target: tgt.Endpoint(), DataDir: d,
		StartFrom: syncer.StartGTID, StartGTID: before}, syncer.NewMetrics(prometheus.NewRegistry(), "bench"))
	if err != nil {
		return err
	}
	return s.Run(ctx, syncer.RunOptions{CatchUp: true, Until: after})
}

// selfCPU is this process's CPU time (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
