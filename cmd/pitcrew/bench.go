package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/bench"
)

const benchHelp = `Usage: pitcrew bench load|catchup|lag|memory|decode|cutover|all [flags]

Throwaway servers, one machine, one invocation, contenders interleaved:
  load     pitcrew load vs mydumper+myloader vs mariadb-dump | mariadb
  catchup  a backlog applied by native replicas (single, parallel) and pitcrew
  lag      replication lag under a fixed write rate, heartbeat every 100 ms
  memory   pitcrew's peak RSS catching up backlogs of two sizes
  decode   pitcrew's binlog reader vs mariadb-binlog --read-from-remote-server
  cutover  the migrate runbook's switch under an application's writes: lost and
           failed writes, latency across the switch, the stall and its parts
  all      catchup (four backlogs, the relay on and off), lag, memory and
           decode, sized so the native replica runs >= 10 s; --html and
           --json write the report
Each command's defaults finish in under 5 minutes here ('all' in about 35);
'pitcrew bench COMMAND --help' lists the sizes.
`

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchHelp)
		return errUsage
	}
	switch args[0] {
	case "catchup":
		return benchCatchup(ctx, args[1:], stdout, stderr)
	case "cutover":
		return benchCutover(ctx, args[1:], stdout, stderr)
	case "lag", "memory", "decode", "all":
		return benchReport(ctx, args[0], args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, benchHelp)
		return nil
	case "load":
	default:
		fmt.Fprint(stderr, benchHelp)
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
	fs := newFlags("bench catchup", "bench catchup [--workload W] [--txns N] [--durable] [--threads N] [--rounds N] [--lanes N,M] [--also-relay-off] [--tls] [--json]", stderr)
	workload := fs.String("workload", bench.WriteOnly, "backlog shape: write_only (oltp_write_only), insert_only (with the target's ingest ceiling), update_index (hot keys)")
	txns := fs.Int("txns", 20000, "backlog transactions")
	tables := fs.Int("tables", 4, "tables")
	rows := fs.Int("rows", 10000, "rows per table before the backlog")
	durable := fs.Bool("durable", false, "innodb_flush_log_at_trx_commit=1 and sync_binlog=1 (default 2 and 0)")
	threads := fs.Int("threads", 4, "native parallel replica threads")
	rounds := fs.Int("rounds", 1, "interleaved rounds")
	asJSON := fs.Bool("json", false, "print results as JSON")
	profile := fs.String("cpuprofile", "", "write a CPU profile of pitcrew's (last) run to this file")
	noRelay := fs.Bool("also-relay-off", false, "add pitcrew with the relay off as a contender (what the purge protection costs)")
	withTLS := fs.Bool("tls", false, "add pitcrew with every connection over TLS (verify-identity) as a contender: what TLS costs, against pitcrew plaintext in the same run")
	var lanes intList
	fs.Var(&lanes, "lanes", "add pitcrew with N apply lanes as contenders, e.g. 2,4")
	if err := parse(fs, args); err != nil {
		return err
	}
	res, err := bench.Catchup(ctx, bench.CatchupConfig{Lanes: lanes, TLS: *withTLS, Workload: *workload, Txns: *txns, Tables: *tables, Rows: *rows, Durable: *durable, Threads: *threads, Rounds: *rounds, CPUProfile: *profile, AlsoNoRelay: *noRelay, Log: stderr})
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
	if t, p, ratio, ok := bench.TLSCost(res); ok {
		fmt.Fprintf(stdout, "TLS cost: pitcrew over TLS %.0f tx/s, plaintext %.0f tx/s: %.2fx (medians of the rounds)\n", t, p, ratio)
	}
	return nil
}

// benchReport runs lag, memory, decode or all, and prints the summary
// table (medians, ratios), with JSON and HTML reports on request.
func benchReport(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench "+what, "bench "+what+" [flags]", stderr)
	rounds := fs.Int("rounds", 3, "interleaved rounds (medians are reported)")
	txns := fs.Int("txns", 0, "all: catch-up backlog of every workload (default: per workload, >= 10 s of the native replica); decode: transactions in the binlog (default 50000)")
	rates := fs.String("rates", "500,2000", "lag: source write rates, tx/s")
	duration := fs.Duration("duration", 8*time.Second, "lag: measured window per run")
	backlogs := fs.String("backlogs", "50000,200000", "memory: backlog sizes")
	huge := fs.String("huge-rows", "1000000,4000000", "memory: then one transaction of each of these many rows, caught up alone (0: none)")
	hugeRelayOff := fs.Bool("also-relay-off", false, "memory: catch each huge transaction up with the relay off too")
	smoke := fs.Bool("smoke", false, "all: tiny sizes, seconds; keeps the harness working, numbers mean nothing")
	jsonOut := fs.String("json", "", "write the full report (every round, every sample) as JSON to this file")
	htmlOut := fs.String("html", "", "write an HTML report with SVG charts to this file")
	var lanes intList
	fs.Var(&lanes, "lanes", "lag: add pitcrew with N apply lanes as contenders, e.g. 1,4")
	profile := fs.String("cpuprofile", "", "lag: write a CPU profile of pitcrew's last measured window (writers included) to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	rep := &bench.Report{Started: time.Now()}
	rep.Host, _ = os.Hostname()
	var err error
	switch what {
	case "lag":
		r, e := parseInts(*rates, "--rates")
		if e != nil {
			return e
		}
		rep.Lag, err = bench.Lag(ctx, bench.LagConfig{Rates: r, Lanes: lanes, CPUProfile: *profile, Duration: *duration, Rounds: *rounds, Log: stderr})
	case "memory":
		b, e := parseInts(*backlogs, "--backlogs")
		if e != nil {
			return e
		}
		h := []int{-1} // none
		if strings.TrimSpace(*huge) != "0" {
			if h, e = parseInts(*huge, "--huge-rows"); e != nil {
				return e
			}
		}
		rep.Memory, err = bench.Memory(ctx, bench.MemoryConfig{Backlogs: b, HugeRows: h, HugeRelayOff: *hugeRelayOff, Log: stderr})
	case "decode":
		rep.Decode, err = bench.Decode(ctx, bench.DecodeConfig{Txns: *txns, Rounds: *rounds, Log: stderr})
	case "all":
		rep, err = bench.All(ctx, bench.AllConfig{Smoke: *smoke, Txns: *txns, Rounds: *rounds, Log: stderr})
	}
	if rep != nil {
		rep.WriteTable(stdout)
		if *jsonOut != "" {
			if werr := writeFile(*jsonOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(rep) }); werr != nil {
				return werr
			}
		}
		if *htmlOut != "" {
			if werr := writeFile(*htmlOut, rep.WriteHTML); werr != nil {
				return werr
			}
			fmt.Fprintf(stderr, "report: %s\n", *htmlOut)
		}
	}
	return err
}

func parseInts(s, flagName string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s %q: use positive integers separated by commas", flagName, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// intList is a flag of positive integers separated by commas.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	v, err := parseInts(s, "")
	if err != nil {
		return errors.New("use positive integers separated by commas, e.g. 1,4")
	}
	*l = v
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func benchCutover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench cutover", "bench cutover [--runs N] [--fence read_only|lock_users] [--order fence-first|both-writable] [--rollback] [--conns N] [--rate N] [--short] [--html F] [--json F]", stderr)
	runs := fs.Int("runs", 3, "cut-overs, each on fresh servers")
	fence := fs.String("fence", "read_only", "the fence: read_only or lock_users (accounts locked, sessions ended)")
	order := fs.String("order", "fence-first", "fence-first (fence, drain, release) or both-writable (the application moves before the fence)")
	rollback := fs.Bool("rollback", false, "roll back after the switch; the old database is checked")
	conns := fs.Int("conns", 4, "the application's connections")
	rate := fs.Int("rate", 1200, "the application's writes per second, all connections")
	hot := fs.Int("hot-rows", 4, "rows every connection increments")
	before := fs.Duration("before", 2*time.Second, "writing on the old side before the cut-over")
	after := fs.Duration("after", 2*time.Second, "writing on the new side after the switch")
	short := fs.Bool("short", false, "one run, 1 s before and after (CI)")
	jsonOut := fs.String("json", "", "write every run (per-second and 100 ms latency, steps) as JSON to this file")
	htmlOut := fs.String("html", "", "write the HTML report (latency over time, steps marked) to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := bench.CutoverConfig{Runs: *runs, Fence: *fence, Order: *order, Rollback: *rollback, Conns: *conns, Rate: *rate, HotRows: *hot,
		Before: *before, After: *after, Log: stderr}
	if *short {
		cfg.Runs, cfg.Before, cfg.After = 1, time.Second, time.Second
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := bench.Cutover(ctx, cfg)
	bench.WriteCutoverTable(stdout, res)
	if *jsonOut != "" {
		if werr := writeFile(*jsonOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(res) }); werr != nil {
			return werr
		}
	}
	if *htmlOut != "" {
		if werr := writeFile(*htmlOut, func(w io.Writer) error { return bench.WriteCutoverHTML(w, res) }); werr != nil {
			return werr
		}
		fmt.Fprintf(stderr, "report: %s\n", *htmlOut)
	}
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Note != "" {
			return fmt.Errorf("run %d failed: %s", r.Run, strings.SplitN(r.Note, "\n", 2)[0])
		}
	}
	return nil
}
