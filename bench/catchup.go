package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"golang.org/x/sync/errgroup"
)

// CatchupConfig sizes the catch-up comparison.
type CatchupConfig struct {
	// Workload shapes the backlog: WriteOnly (default), InsertOnly or
	// UpdateIndex (the hot-key case: one table, one indexed update each).
	Workload string
	Txns     int  // backlog transactions; default 20,000
	Tables   int  // default 4
	Rows     int  // rows per table before the backlog; default 10,000
	Durable  bool // innodb_flush_log_at_trx_commit=1 and sync_binlog=1 on every server (default: 2 and 0)
	Threads  int  // native parallel replica threads; default 4
	Rounds   int  // interleaved rounds; default 1
	// AlsoNoRelay adds pitcrew with the relay off as a contender (what the
	// purge protection costs).
	AlsoNoRelay bool
	// Lanes adds pitcrew with that many apply lanes, per entry, as
	// contenders.
	Lanes []int
	// TLS adds pitcrew with every connection (stream, SQL) over TLS,
	// verify-identity, as a contender: every server then serves TLS as
	// well as plaintext, and the other contenders stay plaintext.
	TLS bool
	// CPUProfile, when set, writes a CPU profile of pitcrew's last run.
	CPUProfile string
	Dir        string
	Log        io.Writer
}

// Names of pitcrew's contenders the report compares.
const (
	defaultsName = "pitcrew (defaults)"
	relayOffName = "pitcrew (relay off)"
)

// Workloads of a catch-up backlog (sysbench's oltp_* shapes).
const (
	WriteOnly   = "write_only"   // oltp_write_only: indexed update, non-indexed update, delete, insert
	InsertOnly  = "insert_only"  // four single-row inserts of new rows per transaction
	UpdateIndex = "update_index" // oltp_update_index: one indexed update; few rows, so hot keys
)

// rowsPerTxn is how many row changes a backlog transaction makes.
func rowsPerTxn(workload string) int {
	if workload == UpdateIndex {
		return 1
	}
	return 4
}

// CatchupResult is one contender's run.
type CatchupResult struct {
	Workload  string  `json:"workload"`
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
	// Series is (seconds, transactions applied) every 100 ms of the run.
	Series [][2]float64 `json:"series,omitempty"`
	Note   string       `json:"note,omitempty"`
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
	if cfg.Workload == "" {
		cfg.Workload = WriteOnly
	}
	if cfg.Workload == UpdateIndex {
		cfg.Tables = 1
	}
	cfg.Log = logTo(cfg.Log)
	env, err := newBackdropTLS(ctx, cfg.Dir, cfg.Tables, cfg.Rows, cfg.Durable, cfg.TLS, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	if err := env.dump(ctx); err != nil {
		return nil, err
	}
	src, srcDB, before := env.src, env.srcDB, env.before
	fmt.Fprintf(cfg.Log, "writing a backlog of %d %s transactions\n", cfg.Txns, cfg.Workload)
	if err := backlog(ctx, srcDB, cfg); err != nil {
		return nil, err
	}
	after, err := env.position(ctx)
	if err != nil {
		return nil, err
	}
	tables, err := listTables(ctx, srcDB)
	if err != nil {
		return nil, err
	}
	contenders := []contender{
		{"native single-threaded", func(db *sql.DB) error { return native(ctx, db, src, before, after, 0) }},
		{fmt.Sprintf("native parallel (%d, optimistic)", cfg.Threads), func(db *sql.DB) error {
			return native(ctx, db, src, before, after, cfg.Threads)
		}},
		{defaultsName, func(db *sql.DB) error {
			return env.catchup(ctx, env.lastTarget, after, cfg.CPUProfile, variant{})
		}},
	}
	if cfg.AlsoNoRelay {
		contenders = append(contenders, contender{relayOffName, func(db *sql.DB) error {
			return env.catchup(ctx, env.lastTarget, after, "", variant{noRelay: true})
		}})
	}
	if cfg.TLS {
		contenders = append(contenders, contender{TLSContender, func(db *sql.DB) error {
			return env.catchup(ctx, env.lastTarget, after, "", variant{tls: true})
		}})
	}
	for _, n := range cfg.Lanes {
		contenders = append(contenders, contender{fmt.Sprintf("pitcrew (%d lanes)", n), func(db *sql.DB) error {
			return env.catchup(ctx, env.lastTarget, after, "", variant{lanes: n})
		}})
	}
	if cfg.Workload == InsertOnly {
		rows := cfg.Txns * rowsPerTxn(cfg.Workload)
		for _, conns := range []int{1, 2} {
			contenders = append(contenders, contender{fmt.Sprintf("%s (500-row INSERTs, %d conn)", ceilingName, conns), func(db *sql.DB) error {
				return ingest(ctx, db, rows, conns)
			}})
		}
	}
	var out []CatchupResult
	for round := 1; round <= cfg.Rounds; round++ {
		for _, c := range contenders {
			r := CatchupResult{Workload: cfg.Workload, Contender: c.name, Round: round}
			tgt, db, err := env.target(ctx, "tgt")
			if err != nil {
				r.Note = err.Error()
				out = append(out, r)
				continue
			}
			cpu0, self0 := tgt.CPU(), selfCPU()
			start := time.Now()
			stopSampling := sample(ctx, db, before, &r.Series)
			err = c.run(db)
			r.Seconds = time.Since(start).Seconds()
			stopSampling()
			r.ServerCPU, r.PitcrewCPU = (tgt.CPU() - cpu0).Seconds(), (selfCPU() - self0).Seconds()
			switch {
			case err != nil:
				r.Note = err.Error()
			case strings.HasPrefix(c.name, ceilingName):
				r.RowsPerS = float64(cfg.Txns*rowsPerTxn(cfg.Workload)) / r.Seconds
				r.TxnsPerS = r.RowsPerS / float64(rowsPerTxn(cfg.Workload))
				r.Equal, r.Note = true, "not a replica: what the target ingests from plain INSERTs"
			default:
				r.TxnsPerS = float64(cfg.Txns) / r.Seconds
				r.RowsPerS = float64(rowsPerTxn(cfg.Workload)) * r.TxnsPerS
				r.Equal = env.equal(ctx, db, tables)
			}
			fmt.Fprintf(cfg.Log, "round %d: %-40s %7.2fs %8.0f tx/s equal=%v cpu: server %.2fs pitcrew %.2fs %s\n", round, c.name, r.Seconds, r.TxnsPerS, r.Equal, r.ServerCPU, r.PitcrewCPU, r.Note)
			out = append(out, r)
			db.Close()
			tgt.Kill()
			os.RemoveAll(tgt.Dir)
		}
	}
	return out, nil
}

// backlog writes the workload's transactions on two connections.
func backlog(ctx context.Context, db *sql.DB, cfg CatchupConfig) error {
	g, gctx := errgroup.WithContext(ctx)
	for w := range 2 {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(1, uint64(2+w)))
			for i := w; i < cfg.Txns; i += 2 {
				if err := writeTxn(gctx, db, r, cfg); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

type stmt struct {
	sql  string
	args []any
}

// writeTxn writes one transaction of the workload's shape.
func writeTxn(ctx context.Context, db *sql.DB, r *rand.Rand, cfg CatchupConfig) error {
	t := fmt.Sprintf("%s.sbtest%d", schema, 1+r.IntN(cfg.Tables))
	id := 1 + r.IntN(cfg.Rows)
	var qs []stmt
	switch cfg.Workload {
	case InsertOnly:
		for range 4 {
			qs = append(qs, stmt{"INSERT INTO " + t + " (k, c, pad) VALUES (?, ?, ?)", []any{r.IntN(cfg.Rows), strings.Repeat(fmt.Sprintf("%011d-", r.IntN(1e9)), 10), strings.Repeat("p", 59)}})
		}
	case UpdateIndex:
		qs = []stmt{{"UPDATE " + t + " SET k = k + 1 WHERE id = ?", []any{id}}}
	default:
		qs = []stmt{
			{"UPDATE " + t + " SET k = k + 1 WHERE id = ?", []any{id}},
			{"UPDATE " + t + " SET c = ? WHERE id = ?", []any{strings.Repeat(fmt.Sprintf("%011d-", r.IntN(1e9)), 10), 1 + r.IntN(cfg.Rows)}},
			{"DELETE FROM " + t + " WHERE id = ?", []any{id}},
			{"INSERT INTO " + t + " (id, k, c, pad) VALUES (?, ?, ?, ?)", []any{id, r.IntN(cfg.Rows), strings.Repeat("x", 119), strings.Repeat("p", 59)}},
		}
	}
	for {
		err := execTxn(ctx, db, qs)
		if conn.Code(err) != 1213 { // two writers may deadlock: try again
			return err
		}
	}
}

func execTxn(ctx context.Context, db *sql.DB, qs []stmt) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			tx.Rollback() //nolint:errcheck
			return err
		}
	}
	return tx.Commit()
}

var seqRE = regexp.MustCompile(`(?:^|,)\s*1-1-(\d+)`)

// appliedSeq is the highest source sequence number the target applied, by
// the native replica (gtid_slave_pos) or pitcrew (its progress row).
func appliedSeq(ctx context.Context, db *sql.DB) int64 {
	var best int64
	for _, q := range []string{"SELECT @@GLOBAL.gtid_slave_pos", "SELECT gtid_set FROM _pitcrew.progress WHERE channel = 'main'"} {
		var s string
		if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
			continue
		}
		if m := seqRE.FindStringSubmatch(s); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			best = max(best, n)
		}
	}
	return best
}

// sample records (seconds, transactions applied since before) every 100 ms
// until the returned func is called.
func sample(ctx context.Context, db *sql.DB, before string, into *[][2]float64) func() {
	base := int64(0)
	if m := seqRE.FindStringSubmatch(before); m != nil {
		base, _ = strconv.ParseInt(m[1], 10, 64)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	take := func(ctx context.Context) {
		if n := appliedSeq(ctx, db); n >= base {
			*into = append(*into, [2]float64{time.Since(start).Seconds(), float64(n - base)})
		}
	}
	go func() {
		defer close(done)
		*into = append(*into, [2]float64{0, 0})
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				take(ctx)
			}
		}
	}()
	// The last point is the end of the run, so a run shorter than one tick
	// (smoke sizes) still draws a line.
	return func() { cancel(); <-done; take(context.Background()) }
}

// TLSContender is pitcrew over TLS; "pitcrew (defaults)" is its plaintext
// twin in the same run.
const TLSContender = "pitcrew (TLS)"

// TLSCost is the median throughput of pitcrew over TLS and plaintext in
// results, and their ratio (TLS / plain); ok is false without both.
func TLSCost(rs []CatchupResult) (tlsTxns, plainTxns, ratio float64, ok bool) {
	var t, p []float64
	for _, r := range rs {
		if r.Note != "" || !r.Equal {
			continue
		}
		switch r.Contender {
		case TLSContender:
			t = append(t, r.TxnsPerS)
		case defaultsName:
			p = append(p, r.TxnsPerS)
		}
	}
	if len(t) == 0 || len(p) == 0 {
		return 0, 0, 0, false
	}
	return median(t), median(p), median(t) / median(p), true
}

// contender is one way of applying the backlog to a target.
type contender struct {
	name string
	run  func(db *sql.DB) error
}

// ceilingName names the ingest-ceiling measurements.
const ceilingName = "ingest ceiling"

// ingest inserts rows rows of the sysbench shape into a new table with
// 500-row INSERTs on conns connections: how fast the target takes rows
// when nothing but inserting is asked of it.
func ingest(ctx context.Context, db *sql.DB, rows, conns int) error {
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+schema+".ceiling LIKE "+schema+".sbtest1"); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for w := range conns {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(5, uint64(w)))
			for done := w * 500; done < rows; done += conns * 500 {
				n := min(500, rows-done)
				var b strings.Builder
				args := make([]any, 0, 3*n)
				b.WriteString("INSERT INTO " + schema + ".ceiling (k, c, pad) VALUES ")
				for i := range n {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString("(?,?,?)")
					args = append(args, r.IntN(1e6), strings.Repeat(fmt.Sprintf("%011d-", r.IntN(1e9)), 10), strings.Repeat("p", 59))
				}
				if _, err := db.ExecContext(gctx, b.String(), args...); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// restore loads the pre-backlog dump without writing the target's binlog.
func restore(ctx context.Context, tgt *mariadb.Server, dump string) error {
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
func native(ctx context.Context, db *sql.DB, src *mariadb.Server, before, after string, threads int) error {
	if err := startNative(ctx, db, src, before, threads); err != nil {
		return err
	}
	if err := mariadb.WaitReplica(ctx, db, after, 600*time.Second); err != nil {
		return err
	}
	return mariadb.StopReplica(ctx, db)
}

// startNative points the target's replica at src from before and starts it.
func startNative(ctx context.Context, db *sql.DB, src *mariadb.Server, before string, threads int) error {
	return mariadb.StartReplica(ctx, db, src, mariadb.ReplicaOptions{From: before, Threads: threads})
}

// mariadbDump dumps the benchmark schema.
func mariadbDump(ctx context.Context, src *mariadb.Server, to string) error {
	out, err := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("mariadb-dump -h127.0.0.1 -P%d -uroot --single-transaction --databases %s > %s", src.Port, schema, to)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dumping the benchmark schema: %v: %s", err, out)
	}
	return nil
}

func listTables(ctx context.Context, db *sql.DB) ([]string, error) {
	return checksum.BaseTables(ctx, db, schema)
}

// selfCPU is this process's CPU time (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
