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
	Smoke  bool
	Txns   int // catch-up backlog per workload; default 10,000
	Rounds int // default 3
	Dir    string
	Log    io.Writer
}

// All runs every comparison in one invocation: catch-up (write-only
// relaxed and durable, insert-only with the ingest ceiling, the hot-key
// update-index), steady lag at 500 and 2,000 tx/s, peak memory at two
// backlog sizes, and binlog decode speed.
func All(ctx context.Context, cfg AllConfig) (*Report, error) {
	setDefault(&cfg.Txns, 10000)
	setDefault(&cfg.Rounds, 3)
	host, _ := os.Hostname()
	rep := &Report{Started: time.Now(), Host: host}
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
	for _, w := range []struct {
		workload string
		durable  bool
	}{{WriteOnly, false}, {WriteOnly, true}, {InsertOnly, false}, {UpdateIndex, false}} {
		fmt.Fprintf(logTo(cfg.Log), "== catch-up %s durable=%v\n", w.workload, w.durable)
		res, err := Catchup(ctx, CatchupConfig{Workload: w.workload, Durable: w.durable, Txns: cfg.Txns, Rounds: cfg.Rounds,
			Tables: tables, Rows: rows, Dir: cfg.Dir, Log: cfg.Log})
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
