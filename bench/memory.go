package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// MemoryConfig sizes the memory measurement.
type MemoryConfig struct {
	Backlogs []int // backlog sizes in transactions (oltp_write_only); default 50,000 and 200,000
	// HugeRows: after the backlogs, one transaction of each of these many
	// rows (a single INSERT ... SELECT) is caught up alone; default
	// 1,000,000 and 4,000,000. Negative: none.
	HugeRows []int
	// HugeRelayOff also catches each huge transaction up with the relay
	// off (its pieces applied as they arrive instead of spooled).
	HugeRelayOff bool
	Tables       int // default 4
	Rows         int // default 10,000
	Dir          string
	Log          io.Writer
}

// MemoryResult is pitcrew's peak memory catching up one backlog, or one
// huge transaction (HugeRows set, Backlog 1).
type MemoryResult struct {
	Backlog  int     `json:"backlog_txns"`
	HugeRows int     `json:"huge_txn_rows,omitempty"`
	RelayOff bool    `json:"relay_off,omitempty"`
	Seconds  float64 `json:"seconds"`
	PeakRSS  int64   `json:"peak_rss_bytes"`
	TxnsPerS float64 `json:"txns_per_sec"`
	Equal    bool    `json:"checksums_equal"`
	Note     string  `json:"note,omitempty"`
}

// Memory measures the peak resident memory of this process while pitcrew
// catches up backlogs of growing size (the peak is reset before each run
// through /proc/self/clear_refs): bounded queues keep it flat.
func Memory(ctx context.Context, cfg MemoryConfig) ([]MemoryResult, error) {
	if len(cfg.Backlogs) == 0 {
		cfg.Backlogs = []int{50000, 200000}
	}
	if len(cfg.HugeRows) == 0 {
		cfg.HugeRows = []int{1000000, 4000000}
	}
	setDefault(&cfg.Tables, 4)
	setDefault(&cfg.Rows, 10000)
	cfg.Log = logTo(cfg.Log)
	env, err := newBackdrop(ctx, cfg.Dir, cfg.Tables, cfg.Rows, false, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	if err := env.dump(ctx); err != nil {
		return nil, err
	}
	tables, err := listTables(ctx, env.srcDB)
	if err != nil {
		return nil, err
	}
	written := 0
	var out []MemoryResult
	for _, n := range cfg.Backlogs {
		fmt.Fprintf(cfg.Log, "growing the backlog to %d transactions\n", n)
		if err := backlog(ctx, env.srcDB, CatchupConfig{Workload: WriteOnly, Txns: n - written, Tables: cfg.Tables, Rows: cfg.Rows}); err != nil {
			return out, err
		}
		written = n
		after, err := env.position(ctx)
		if err != nil {
			return out, err
		}
		r, err := env.peak(ctx, after, tables, MemoryResult{Backlog: n}, variant{})
		if err != nil {
			return out, err
		}
		fmt.Fprintf(cfg.Log, "backlog %7d: %6.1fs, peak RSS %d MiB, equal=%v %s\n", n, r.Seconds, r.PeakRSS>>20, r.Equal, r.Note)
		out = append(out, r)
	}
	for i, n := range cfg.HugeRows {
		if n <= 0 {
			continue
		}
		// The target starts from a dump taken just before the transaction,
		// so the run applies it alone.
		table := fmt.Sprintf("huge%d", i+1)
		if _, err := env.srcDB.ExecContext(ctx, "CREATE TABLE "+schema+"."+table+" (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, pad CHAR(60) NOT NULL)"); err != nil {
			return out, err
		}
		if err := env.dump(ctx); err != nil {
			return out, err
		}
		fmt.Fprintf(cfg.Log, "one transaction of %d rows\n", n)
		// The sequence engine (MariaDB) makes the rows server-side.
		if _, err := env.srcDB.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s.%s SELECT seq, seq %% 1000, RPAD(seq, 60, '-') FROM %s.seq_1_to_%d", schema, table, schema, n)); err != nil {
			return out, fmt.Errorf("making a transaction of %d rows: %w", n, err)
		}
		after, err := env.position(ctx)
		if err != nil {
			return out, err
		}
		for _, off := range []bool{false, true} {
			if off && !cfg.HugeRelayOff {
				continue
			}
			r, err := env.peak(ctx, after, []string{table}, MemoryResult{Backlog: 1, HugeRows: n, RelayOff: off}, variant{noRelay: off})
			if err != nil {
				return out, err
			}
			fmt.Fprintf(cfg.Log, "%d rows in one transaction (relay off: %v): %6.1fs, peak RSS %d MiB, equal=%v %s\n", n, off, r.Seconds, r.PeakRSS>>20, r.Equal, r.Note)
			out = append(out, r)
		}
	}
	return out, nil
}

// peak catches a fresh target up to after and fills r with the time and
// this process's peak RSS.
func (b *backdrop) peak(ctx context.Context, after string, tables []string, r MemoryResult, v variant) (MemoryResult, error) {
	tgt, db, err := b.target(ctx, "mem")
	if err != nil {
		return r, err
	}
	defer func() {
		db.Close()
		tgt.Kill()
		os.RemoveAll(tgt.Dir)
	}()
	resetPeakRSS()
	start := time.Now()
	err = b.catchup(ctx, tgt, after, "", v)
	r.Seconds = time.Since(start).Seconds()
	r.PeakRSS = peakRSS()
	if err != nil {
		r.Note = err.Error()
	} else {
		r.TxnsPerS = float64(r.Backlog) / r.Seconds
		r.Equal = b.equal(ctx, db, tables)
	}
	return r, nil
}

// resetPeakRSS resets VmHWM (Linux 4.0+); without it the peak is the
// process's since it started.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// DecodeConfig sizes the decode comparison.
type DecodeConfig struct {
	Txns   int // oltp_write_only transactions in the binlog; default 50,000
	Rounds int // default 3
	Tables int
	Rows   int
	Dir    string
	Log    io.Writer
}

// DecodeResult is one reader's pass over the whole binlog.
type DecodeResult struct {
	Contender string  `json:"contender"`
	Round     int     `json:"round"`
	Seconds   float64 `json:"seconds"`
	MBPerS    float64 `json:"mb_per_sec"`
	Note      string  `json:"note,omitempty"`
}

// Decode times reading the source's whole binlog over the replication
// protocol: pitcrew's reader (read, decode every row image, assemble
// transactions) against mariadb-binlog --read-from-remote-server to
// /dev/null, plain and with --verbose (which decodes rows too).
func Decode(ctx context.Context, cfg DecodeConfig) ([]DecodeResult, error) {
	setDefault(&cfg.Txns, 50000)
	setDefault(&cfg.Rounds, 3)
	setDefault(&cfg.Tables, 4)
	setDefault(&cfg.Rows, 10000)
	cfg.Log = logTo(cfg.Log)
	env, err := newBackdrop(ctx, cfg.Dir, cfg.Tables, cfg.Rows, false, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	if err := backlog(ctx, env.srcDB, CatchupConfig{Workload: WriteOnly, Txns: cfg.Txns, Tables: cfg.Tables, Rows: cfg.Rows}); err != nil {
		return nil, err
	}
	last, err := env.position(ctx)
	if err != nil {
		return nil, err
	}
	var bytes int64
	rows, err := env.srcDB.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	var first string
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			rows.Close()
			return nil, err
		}
		if first == "" {
			first = name
		}
		bytes += size
	}
	rows.Close()
	contenders := []struct {
		name string
		run  func() error
	}{
		{"pitcrew reader (decode + assemble)", func() error { return readAll(ctx, env, last) }},
		{"mariadb-binlog --read-from-remote-server", func() error { return mariadbBinlog(ctx, env, first) }},
		{"mariadb-binlog --read-from-remote-server --verbose", func() error { return mariadbBinlog(ctx, env, first, "--verbose") }},
	}
	var out []DecodeResult
	for round := 1; round <= cfg.Rounds; round++ {
		for _, c := range contenders {
			r := DecodeResult{Contender: c.name, Round: round}
			start := time.Now()
			err := c.run()
			r.Seconds = time.Since(start).Seconds()
			if err != nil {
				r.Note = err.Error()
			} else {
				r.MBPerS = float64(bytes) / 1e6 / r.Seconds
			}
			fmt.Fprintf(cfg.Log, "round %d: %-52s %6.2fs %7.1f MB/s %s\n", round, c.name, r.Seconds, r.MBPerS, r.Note)
			out = append(out, r)
		}
	}
	return out, nil
}

// readAll streams the whole binlog with full row decoding until the last
// GTID arrives.
func readAll(ctx context.Context, env *backdrop, last string) error {
	goal, err := gtid.Parse(gtid.MariaDB, last)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan *txn.Txn, 1024)
	errc := make(chan error, 1)
	go func() {
		errc <- binlog.Stream(ctx, binlog.Config{Source: env.src.Endpoint(), Flavor: gtid.MariaDB, ServerID: 4299}, gtid.Empty(gtid.MariaDB), ch, nil)
	}()
	seen := gtid.Empty(gtid.MariaDB)
	for {
		select {
		case t := <-ch:
			if seen, err = seen.Add(t.GTID); err != nil {
				return err
			}
			if seen.Contains(goal) {
				return nil
			}
		case err := <-errc:
			return fmt.Errorf("the reader stopped before %s: %w", last, err)
		}
	}
}

func mariadbBinlog(ctx context.Context, env *backdrop, first string, extra ...string) error {
	args := append([]string{"--read-from-remote-server", "--host=127.0.0.1", "--port=" + strconv.Itoa(env.src.Port), "--user=root", "--to-last-log"}, extra...)
	cmd := exec.CommandContext(ctx, "mariadb-binlog", append(args, first)...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadb-binlog: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
