package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/pitcrew/pitcrew/bench"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "catchup" {
		return benchCatchup(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "load" {
		fmt.Fprintln(stderr, "Usage: pitcrew bench load|catchup [flags]   (pitcrew bench catchup --help)")
		return errUsage
	}
	fs := newFlags("bench load", "bench load [--rows N] [--tables N] [--threads N] [--rounds N] [--json]", stderr)
	rows := fs.Int("rows", 800000, "rows over all tables (sysbench-shaped)")
	tables := fs.Int("tables", 8, "tables")
	threads := fs.Int("threads", 4, "threads for pitcrew load and myloader")
	rounds := fs.Int("rounds", 1, "interleaved rounds (the machine is noisy: use 3 for numbers you quote)")
	asJSON := fs.Bool("json", false, "print results as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	res, err := bench.Load(ctx, bench.LoadConfig{Rows: *rows, Tables: *tables, Threads: *threads, Rounds: *rounds, Log: stderr})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "%-24s %5s %9s %12s %6s  %s\n", "TOOL", "ROUND", "SECONDS", "ROWS/S", "EQUAL", "NOTE")
	for _, r := range res {
		fmt.Fprintf(stdout, "%-24s %5d %9.2f %12.0f %6v  %s\n", r.Tool, r.Round, r.Seconds, r.RowsPerSec, r.Equal, r.Note)
	}
	return nil
}

func benchCatchup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench catchup", "bench catchup [--txns N] [--durable] [--threads N] [--rounds N] [--json]", stderr)
	txns := fs.Int("txns", 20000, "backlog transactions (sysbench oltp_write_only shape)")
	tables := fs.Int("tables", 4, "tables")
	rows := fs.Int("rows", 10000, "rows per table before the backlog")
	durable := fs.Bool("durable", false, "innodb_flush_log_at_trx_commit=1 and sync_binlog=1 (default 2 and 0)")
	threads := fs.Int("threads", 4, "native parallel replica threads")
	rounds := fs.Int("rounds", 1, "interleaved rounds")
	asJSON := fs.Bool("json", false, "print results as JSON")
	profile := fs.String("cpuprofile", "", "write a CPU profile of pitcrew's (last) run to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	res, err := bench.Catchup(ctx, bench.CatchupConfig{Txns: *txns, Tables: *tables, Rows: *rows, Durable: *durable, Threads: *threads, Rounds: *rounds, CPUProfile: *profile, Log: stderr})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "%-34s %5s %8s %9s %10s %6s  %s\n", "CONTENDER", "ROUND", "SECONDS", "TX/S", "ROWS/S", "EQUAL", "NOTE")
	for _, r := range res {
		fmt.Fprintf(stdout, "%-34s %5d %8.2f %9.0f %10.0f %6v  %s\n", r.Contender, r.Round, r.Seconds, r.TxnsPerS, r.RowsPerS, r.Equal, r.Note)
	}
	return nil
}
