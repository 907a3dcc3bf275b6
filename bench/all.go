package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// AllConfig sizes `pitcrew bench all`.
type AllConfig struct {
	// Smoke shrinks everything to seconds: it keeps the harness working
	// (CI runs it); its numbers mean nothing.
	Smoke bool
	// Txns is the catch-up backlog of every workload; 0: per workload,
	// sized so the native single-threaded replica runs >= 10 s on a
	// 2-core host (shorter runs measure start-up, not applying).
	Txns   int
	Rounds int // default 3
	Dir    string
	Log    io.Writer
}

// All runs every comparison in one invocation: catch-up (write-only
// relaxed and durable, insert-only with the ingest ceiling, the hot-key
// update-index), steady lag at 500 and 2,000 tx/s, peak memory at two
// backlog sizes, and binlog decode speed.
func All(ctx context.Context, cfg AllConfig) (*Report, error) {
	setDefault(&cfg.Rounds, 3)
	host, _ := os.Hostname()
	rep := &Report{Started: time.Now(), Host: host, Smoke: cfg.Smoke}
	lag := LagConfig{Rounds: cfg.Rounds, Dir: cfg.Dir, Log: cfg.Log}
	mem := MemoryConfig{Dir: cfg.Dir, Log: cfg.Log}
	dec := DecodeConfig{Rounds: cfg.Rounds, Dir: cfg.Dir, Log: cfg.Log}
	rows, tables := 10000, 4
	if cfg.Smoke {
		cfg.Txns, cfg.Rounds, rows, tables = 200, 1, 500, 2
		lag = LagConfig{Rates: []int{100}, Duration: time.Second, Rounds: 1, Tables: tables, Rows: rows, Dir: cfg.Dir, Log: cfg.Log}
		mem = MemoryConfig{Backlogs: []int{200, 400}, HugeRows: []int{20000}, HugeRelayOff: true, Tables: tables, Rows: rows, Dir: cfg.Dir, Log: cfg.Log}
		dec = DecodeConfig{Txns: 200, Rounds: 1, Tables: tables, Rows: rows, Dir: cfg.Dir, Log: cfg.Log}
	}
	// Backlogs for >= 10 s of the native single-threaded replica, from
	// its rates on this 2-core host: write_only 6-11k tx/s relaxed and
	// 1.5-3.3k durable, insert_only 7-14k, update_index 14k (a run
	// shorter than 10 s is flagged in the report).
	for _, w := range []struct {
		workload string
		durable  bool
		txns     int
	}{{WriteOnly, false, 150000}, {WriteOnly, true, 40000}, {InsertOnly, false, 150000}, {UpdateIndex, false, 160000}} {
		txns := w.txns
		if cfg.Txns > 0 {
			txns = cfg.Txns
		}
		fmt.Fprintf(logTo(cfg.Log), "== catch-up %s durable=%v, %d transactions\n", w.workload, w.durable, txns)
		// Relay off beside the defaults where the targets compare them
		// (what the purge protection costs), write_only and insert_only.
		res, err := Catchup(ctx, CatchupConfig{Workload: w.workload, Durable: w.durable, Txns: txns, Rounds: cfg.Rounds,
			Tables: tables, Rows: rows, AlsoNoRelay: w.workload != UpdateIndex, Dir: cfg.Dir, Log: cfg.Log})
		if w.durable {
			for i := range res {
				res[i].Workload += " durable"
			}
		}
		rep.Catchup = append(rep.Catchup, res...)
		if err != nil {
			return rep, err
		}
	}
	fmt.Fprintln(logTo(cfg.Log), "== steady lag")
	l, err := Lag(ctx, lag)
	rep.Lag = l
	if err != nil {
		return rep, err
	}
	fmt.Fprintln(logTo(cfg.Log), "== memory")
	m, err := Memory(ctx, mem)
	rep.Memory = m
	if err != nil {
		return rep, err
	}
	fmt.Fprintln(logTo(cfg.Log), "== decode")
	d, err := Decode(ctx, dec)
	rep.Decode = d
	return rep, err
}
