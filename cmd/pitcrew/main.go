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
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "--version":
		printVersion(stdout)
		return exitOK
	case "-h", "-help":
		args = []string{"help"}
	}
	var err error
	root := newRoot(ctx, stdout, stderr, &err)
	root.SetArgs(args)
	if cerr := root.Execute(); cerr != nil {
		if strings.HasPrefix(cerr.Error(), "unknown command") {
			fmt.Fprintf(stderr, "pitcrew: unknown command %q: run 'pitcrew help' for the list\n", args[0])
		} else {
			fmt.Fprintln(stderr, "pitcrew: "+oneLine(cerr.Error()))
		}
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
		printFlags(stderr, fs)
	}
	return fs
}

// printFlags is flag.PrintDefaults with flags written --name, as they are
// typed (the flag package takes -name and --name alike).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(w)
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if strings.HasPrefix(l, "  -") {
			l = "  --" + l[3:]
		}
		io.WriteString(w, l)
	}
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
