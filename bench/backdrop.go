package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pitcrew/pitcrew/internal/devtools/cpuprof"
	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

// backdrop is what every comparison stands on: a scratch dir of its own, a
// source with sysbench tables, and the dump targets start from.
type backdrop struct {
	dir    string // removed by close
	src    *mariadb.Server
	srcDB  *sql.DB
	extra  []string
	before string // the source's GTID position at the dump
	dumpTo string
	n      int
	// lastTarget is the target the last call to target started.
	lastTarget *mariadb.Server
	// certs, when set, make every server serve TLS (plaintext allowed
	// too), so one run compares pitcrew plain and over TLS.
	certs *mariadb.Certs
}

// newBackdrop makes a fresh scratch dir under parent (the system's temp dir
// when empty) and starts the source in it with tables x rows rows.
func newBackdrop(ctx context.Context, parent string, tables, rows int, durable bool, log io.Writer) (*backdrop, error) {
	return newBackdropTLS(ctx, parent, tables, rows, durable, false, log)
}

// newBackdropTLS is newBackdrop; with withTLS every server serves TLS as
// well as plaintext.
func newBackdropTLS(ctx context.Context, parent string, tables, rows int, durable, withTLS bool, log io.Writer) (*backdrop, error) {
	dir, err := os.MkdirTemp(parent, "pitcrew-bench-")
	if err != nil {
		return nil, err
	}
	b := &backdrop{dir: dir, extra: []string{"--innodb-buffer-pool-size=512M"}}
	if durable {
		b.extra = append(b.extra, "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1")
	}
	if withTLS {
		if b.certs, err = mariadb.NewCerts(filepath.Join(dir, "certs")); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if b.src, err = mariadb.Start(ctx, mariadb.Options{Dir: filepath.Join(dir, "src"), ServerID: 1, Extra: b.extra, TLS: b.certs, PlaintextToo: true}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if b.srcDB, err = b.src.DB(); err != nil {
		b.close()
		return nil, err
	}
	// The writers would otherwise open and close a connection per
	// transaction (database/sql keeps 2 idle by default).
	b.srcDB.SetMaxIdleConns(16)
	fmt.Fprintf(log, "preparing %d tables x %d rows\n", tables, rows)
	if err := prepare(ctx, b.srcDB, rows*tables, tables); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// position is the source's current GTID position.
func (b *backdrop) position(ctx context.Context) (string, error) {
	var pos string
	err := b.srcDB.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos)
	return pos, err
}

// dump records the source's state (and its GTID position) for targets.
func (b *backdrop) dump(ctx context.Context) error {
	b.dumpTo = filepath.Join(b.dir, "before.sql")
	if err := mariadbDump(ctx, b.src, b.dumpTo); err != nil {
		return err
	}
	var err error
	b.before, err = b.position(ctx)
	return err
}

// target starts a fresh server restored from the dump, buffer pool warm.
func (b *backdrop) target(ctx context.Context, tag string) (*mariadb.Server, *sql.DB, error) {
	b.n++
	dir := filepath.Join(b.dir, fmt.Sprintf("%s-%d", tag, b.n))
	tgt, err := mariadb.Start(ctx, mariadb.Options{Dir: dir, ServerID: uint32(100 + b.n), Extra: append(b.extra, "--skip-slave-start"), TLS: b.certs, PlaintextToo: true})
	if err != nil {
		return nil, nil, err
	}
	db, err := tgt.DB()
	if err == nil {
		err = restore(ctx, tgt, b.dumpTo)
	}
	if err != nil {
		tgt.Kill()
		return nil, nil, err
	}
	tables, _ := listTables(ctx, db)
	warm(ctx, db, tables)
	b.lastTarget = tgt
	return tgt, db, nil
}

// variant is how a pitcrew contender differs from the defaults.
type variant struct {
	noRelay bool
	lanes   int  // 0: the default
	tls     bool // every connection over TLS (verify-identity); else plaintext
}

// pitcrew is the engine with its defaults (but v), streaming the source
// into tgt from the dump's position, its state in a fresh dir; done
// removes it.
func (b *backdrop) pitcrew(tgt *mariadb.Server, v variant) (s *syncer.Syncer, done func(), err error) {
	d, err := os.MkdirTemp(b.dir, "pitcrew-")
	if err != nil {
		return nil, nil, err
	}
	src, dst := b.src.Endpoint(), tgt.Endpoint()
	if !v.tls {
		src.TLS, dst.TLS = conn.TLS{Mode: conn.ModeDisabled}, conn.TLS{Mode: conn.ModeDisabled}
	}
	cfg := syncer.Default()
	cfg.Source, cfg.Target, cfg.DataDir = src, dst, d
	cfg.StartFrom, cfg.StartGTID, cfg.NoRelay = syncer.StartGTID, b.before, v.noRelay
	if v.lanes != 0 {
		cfg.Lanes = v.lanes
	}
	s, err = syncer.New(cfg, syncer.NewMetrics(prometheus.NewRegistry(), "bench"))
	if err != nil {
		os.RemoveAll(d)
		return nil, nil, err
	}
	return s, func() { os.RemoveAll(d) }, nil
}

// catchup runs pitcrew until tgt has after, with a CPU profile when
// profile names a file.
func (b *backdrop) catchup(ctx context.Context, tgt *mariadb.Server, after, profile string, v variant) error {
	stop, err := cpuprof.Start(profile)
	if err != nil {
		return err
	}
	defer stop()
	s, done, err := b.pitcrew(tgt, v)
	if err != nil {
		return err
	}
	defer done()
	return s.Run(ctx, syncer.RunOptions{CatchUp: true, Until: after})
}

// equal compares the benchmark tables of the source and a target with
// CHECKSUM TABLE.
func (b *backdrop) equal(ctx context.Context, db *sql.DB, tables []string) bool {
	res, err := checksum.Tables(ctx, b.srcDB, db, schema, tables)
	if err != nil {
		return false
	}
	for _, x := range res {
		if !x.Equal() {
			return false
		}
	}
	return true
}

func (b *backdrop) close() {
	if b.srcDB != nil {
		b.srcDB.Close()
	}
	b.src.Kill()
	os.RemoveAll(b.dir)
}
