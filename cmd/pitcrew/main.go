// Command pitcrew moves a live MySQL/MariaDB database to a new home while it
// keeps taking writes. This package only binds flags, files and environment
// to the engine's packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

var version = "dev"

const usage = `pitcrew: stream a live MySQL/MariaDB database into another server, exactly once.

Usage:
  pitcrew sync     --config FILE [--start-from WHERE | --start-gtid SET]
      Run as a service until SIGINT/SIGTERM. Serves the console (a web
      page), /metrics, /healthz, /readyz and /status on http_addr
      (default 127.0.0.1:9307).
  pitcrew catchup  --config FILE [--until SET] [--timeout DURATION] [--start-from WHERE | --start-gtid SET]
      Apply until the target has everything the source had at start (or
      --until SET), then exit 0. Exit 2 on --timeout, with the gap printed.
  pitcrew preflight --config FILE [--json]
      Check source and target before a migration: PASS/WARN/FAIL lines, each
      with its fix; exit 1 on any FAIL.
  pitcrew status   [--config FILE | --url URL | --data-dir DIR --channel NAME] [--json]
      Show a channel's state: from the running service, else from the data dir.
  pitcrew load     --config FILE [--workers N] [--chunk ROWS] [--tables PATTERNS] [--objects all|none|KINDS]
      Full load: copy the tables from one consistent snapshot whose GTID
      position is recorded; resumes after a crash; the channel's first
      start then streams from exactly that position. Then views, routines,
      triggers, events (disabled), users and grants, AUTO_INCREMENT counters.
  pitcrew bench load [--rows N] [--threads N] [--rounds N]
      Time pitcrew load against mydumper+myloader and mariadb-dump | mariadb
      on throwaway servers (same machine, same settings, one run).
  pitcrew verify   --config FILE [--tables PATTERNS] [--repair] [--json]
      Prove the copy: chunked checksums computed in each database, values
      compared (not bytes), differing rows by key; --repair rewrites them.
      Exit 0 only when equal.
  pitcrew verify   --objects --config FILE [--repair] [--json]
      Compare what is not rows: table definitions, views, routines, triggers,
      events, users and grants, AUTO_INCREMENT counters; each difference with
      its fix; --repair creates what is missing.
  pitcrew binlog decode [--flavor F] [--json] FILE...   (or --from-server --config FILE [--from SET] [--to SET])
      Print transactions as the engine sees them: GTID, tables, typed row
      images, DDL.
  pitcrew skip     --config FILE --gtid GTID
      Do not apply one source transaction (a DDL pitcrew refused, say); read
      at the next start, used once, logged and shown in /status.
  pitcrew bidi     plan|check|sync|status --config FILE [--force]
      Bidirectional (master-master) mode over the config's nodes: plan and
      check auto-increment offsets, run every direction loop-free with
      conflict policies, and tell when the nodes are in sync.
  pitcrew conflicts list|show ID|resolve ID --take source|target --config FILE [--node NAME]
      The conflict ledger of each node.
  pitcrew migrate  plan|apply|resume|status|rollback|confirm --plan FILE
      The whole move (AWS account to account, or server to server) as a
      resumable runbook: snapshot, KMS share, restore, peering, forward
      channel, guarded cut-over, DNS, take-down. 'plan' needs no credentials.
  pitcrew sandbox  up|down|status|workload|compare [--dir DIR]
      Throwaway local MariaDB source and target for trying pitcrew out.
  pitcrew version

First start of a channel (no checkpoint yet) needs one of:
  --start-from target     the target was restored from a snapshot/dump of the source
  --start-from now        the target already has the data; stream only new changes
  --start-from beginning  replay everything the source's binlog still holds
  --start-gtid SET        the GTID set already applied on the target
  --start-from-dump FILE  the target was loaded from this dump (its recorded GTID position)

Passwords may come from PITCREW_SOURCE_PASSWORD and PITCREW_TARGET_PASSWORD.
Run 'pitcrew COMMAND --help' for a command's flags; README.md documents the config file.
`

func main() {
	// The driver prints connection hiccups on its own; ours are logged once
	// where they are handled.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exit codes
const (
	exitOK      = 0
	exitError   = 1
	exitTimeout = 2
	exitUsage   = 64
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "sync":
		err = cmdSync(ctx, rest, stderr)
	case "catchup":
		err = cmdCatchup(ctx, rest, stderr)
	case "status":
		err = cmdStatus(ctx, rest, stdout, stderr)
	case "preflight":
		err = cmdPreflight(ctx, rest, stdout, stderr)
	case "bench":
		err = cmdBench(ctx, rest, stdout, stderr)
	case "load":
		err = cmdLoad(ctx, rest, stdout, stderr)
	case "verify":
		err = cmdVerify(ctx, rest, stdout, stderr)
	case "binlog":
		err = cmdBinlog(ctx, rest, stdout, stderr)
	case "skip":
		err = cmdSkip(rest, stdout, stderr)
	case "bidi":
		err = cmdBidi(ctx, rest, stdout, stderr)
	case "conflicts":
		err = cmdConflicts(ctx, rest, stdout, stderr)
	case "sandbox":
		err = cmdSandbox(ctx, rest, stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "pitcrew", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "pitcrew: unknown command %q: run 'pitcrew help' for the list\n", cmd)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	}
	fmt.Fprintln(stderr, "pitcrew: "+oneLine(err.Error()))
	if errors.Is(err, errTimeout) {
		return exitTimeout
	}
	return exitError
}

// isHelp reports whether a command's first argument asks for its help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// subcommand splits a command's arguments (at least one) into its
// subcommand and the rest; a help flag in the subcommand's place is left
// to the flags, which print the usage.
func subcommand(args []string) (sub string, rest []string) {
	if isHelp(args[0]) {
		return "", args
	}
	return args[0], args[1:]
}

// errUsage marks flag errors the flag package already printed.
var errUsage = errors.New("usage")

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pitcrew %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "pitcrew: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	return newLoggerFormat(w, level, "")
}

// newLoggerFormat is newLogger with log_format: text (default) or json
// (one JSON object a line, for log shippers).
func newLoggerFormat(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if level == "" {
		level = "info"
	}
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q is unknown: use debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("log_format %q is unknown: use text or json", format)
}

// tuneGC trades a little memory for CPU: the applier allocates a row image
// per change, and at the default GOGC=100 the collector took a tenth of a
// catch-up's CPU. A soft limit keeps the heap (and RSS) bounded; GOGC and
// GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
}
