// Package bench measures pitcrew against the tools people use today, on
// throwaway servers it starts itself, same machine, same settings, one run.
// It is a library; `pitcrew bench` only binds flags to it.
package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/jobs/load"
	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// LoadConfig sizes the full-load comparison.
type LoadConfig struct {
	Rows    int    // total rows over all tables; default 800,000
	Tables  int    // sysbench-shaped tables; default 8
	Threads int    // for pitcrew and myloader; default 4
	Dir     string // scratch directory; default a temp dir
	Rounds  int    // interleaved rounds (A B C A B C ...); default 1
	Log     io.Writer
}

// LoadResult is one contender's run.
type LoadResult struct {
	Tool       string  `json:"tool"`
	Round      int     `json:"round"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_sec"`
	Equal      bool    `json:"checksums_equal"`
	Note       string  `json:"note,omitempty"`
}

const schema = "sbtest"

// Load times `pitcrew load`, mydumper+myloader and mariadb-dump | mariadb
// loading the same sysbench-shaped tables into the same target.
func Load(ctx context.Context, cfg LoadConfig) ([]LoadResult, error) {
	setDefault(&cfg.Rows, 800000)
	setDefault(&cfg.Tables, 8)
	setDefault(&cfg.Threads, 4)
	setDefault(&cfg.Rounds, 1)
	cfg.Log = logTo(cfg.Log)
	cleanup, err := scratch(&cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	src, err := mariadb.Start(ctx, mariadb.Options{Dir: filepath.Join(cfg.Dir, "src"), ServerID: 1, Extra: []string{"--innodb-buffer-pool-size=512M"}})
	if err != nil {
		return nil, err
	}
	defer src.Kill()
	tgt, err := mariadb.Start(ctx, mariadb.Options{Dir: filepath.Join(cfg.Dir, "tgt"), ServerID: 2, Extra: []string{"--innodb-buffer-pool-size=512M"}})
	if err != nil {
		return nil, err
	}
	defer tgt.Kill()
	srcDB, err := src.DB()
	if err != nil {
		return nil, err
	}
	defer srcDB.Close()
	tgtDB, err := tgt.DB()
	if err != nil {
		return nil, err
	}
	defer tgtDB.Close()
	fmt.Fprintf(cfg.Log, "preparing %d rows in %d tables\n", cfg.Rows, cfg.Tables)
	if err := prepare(ctx, srcDB, cfg.Rows, cfg.Tables); err != nil {
		return nil, err
	}
	tables, err := checksum.BaseTables(ctx, srcDB, schema)
	if err != nil {
		return nil, err
	}
	contenders := []struct {
		name string
		run  func() (string, error)
	}{
		{"pitcrew load", func() (string, error) { return "", pitcrewLoad(ctx, src, tgt, tables, cfg) }},
		{"mydumper+myloader", func() (string, error) { return mydumper(ctx, src, tgt, cfg) }},
		{"mariadb-dump | mariadb", func() (string, error) { return "", dumpPipe(ctx, src, tgt) }},
	}
	var out []LoadResult
	for round := 1; round <= cfg.Rounds; round++ {
		for _, c := range contenders {
			if _, err := tgtDB.ExecContext(ctx, "DROP DATABASE IF EXISTS "+schema); err != nil {
				return out, err
			}
			if _, err := tgtDB.ExecContext(ctx, "DROP DATABASE IF EXISTS _pitcrew"); err != nil {
				return out, err
			}
			start := time.Now()
			note, err := c.run()
			secs := time.Since(start).Seconds()
			r := LoadResult{Tool: c.name, Round: round, Seconds: secs, RowsPerSec: float64(cfg.Rows) / secs, Note: note}
			if err != nil {
				r.Note, r.RowsPerSec = err.Error(), 0
			} else {
				res, err := checksum.Tables(ctx, srcDB, tgtDB, schema, tables)
				r.Equal = err == nil
				for _, x := range res {
					r.Equal = r.Equal && x.Equal()
				}
			}
			fmt.Fprintf(cfg.Log, "round %d: %-24s %6.2fs %9.0f rows/s equal=%v %s\n", round, c.name, r.Seconds, r.RowsPerSec, r.Equal, r.Note)
			out = append(out, r)
		}
	}
	return out, nil
}

// prepare builds sysbench-shaped tables (id, k, c CHAR(120), pad CHAR(60)).
func prepare(ctx context.Context, db *sql.DB, rows, tables int) error {
	per := rows / tables
	stmts := []string{"CREATE DATABASE " + schema}
	for i := 1; i <= tables; i++ {
		t := fmt.Sprintf("%s.sbtest%d", schema, i)
		stmts = append(stmts,
			"CREATE TABLE "+t+" (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB",
			"INSERT INTO "+t+" (k, c, pad) SELECT FLOOR(RAND()*"+fmt.Sprint(per)+"), REPEAT(MD5(RAND()), 3), REPEAT(MD5(RAND()), 1) FROM "+schema+".seq_1_to_"+fmt.Sprint(per))
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.80s: %w", q, err)
		}
	}
	return nil
}

func pitcrewLoad(ctx context.Context, src, tgt *mariadb.Server, tables []string, cfg LoadConfig) error {
	dir, err := os.MkdirTemp(cfg.Dir, "pebble-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := checkpoint.Open(dir)
	if err != nil {
		return err
	}
	defer store.Close()
	var lt []load.Table
	for _, t := range tables {
		lt = append(lt, load.Table{SourceSchema: schema, SourceName: t, TargetSchema: schema, TargetName: t})
	}
	_, err = load.Run(ctx, load.Config{Source: src.Endpoint(), Target: tgt.Endpoint(), Flavor: gtid.MariaDB, Tables: lt,
		Workers: cfg.Threads, Store: store, Channel: "bench", Logger: slog.New(slog.DiscardHandler)})
	return err
}

// mydumper dumps and loads with the same thread count; -e makes myloader
// write the binlog like the other contenders (its default is not to).
func mydumper(ctx context.Context, src, tgt *mariadb.Server, cfg LoadConfig) (string, error) {
	if _, err := exec.LookPath("mydumper"); err != nil {
		return "", fmt.Errorf("mydumper not installed (apt-get install mydumper)")
	}
	out := filepath.Join(cfg.Dir, fmt.Sprintf("dump-%d", time.Now().UnixNano()))
	defer os.RemoveAll(out)
	t := fmt.Sprint(cfg.Threads)
	d0 := time.Now()
	if b, err := exec.CommandContext(ctx, "mydumper", "-h", "127.0.0.1", "-P", fmt.Sprint(src.Port), "-u", "root", "-B", schema, "-t", t, "-o", out).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mydumper: %v: %s", err, strings.TrimSpace(string(b)))
	}
	dump := time.Since(d0)
	l0 := time.Now()
	if b, err := exec.CommandContext(ctx, "myloader", "-h", "127.0.0.1", "-P", fmt.Sprint(tgt.Port), "-u", "root", "-B", schema, "-t", t, "-e", "-d", out).CombinedOutput(); err != nil {
		return "", fmt.Errorf("myloader: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return fmt.Sprintf("dump %.2fs + load %.2fs", dump.Seconds(), time.Since(l0).Seconds()), nil
}

func dumpPipe(ctx context.Context, src, tgt *mariadb.Server) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("mariadb-dump -h127.0.0.1 -P%d -uroot --single-transaction --databases %s | mariadb -h127.0.0.1 -P%d -uroot", src.Port, schema, tgt.Port))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-dump | mariadb: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}
