package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/pitcrew/pitcrew/bench"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "load" {
		fmt.Fprintln(stderr, "Usage: pitcrew bench load [--rows N] [--tables N] [--threads N] [--rounds N] [--json]\n(the replication benchmarks of the performance issue are not built yet)")
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
