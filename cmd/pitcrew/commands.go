package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// A command of the CLI: its one definition. The root's help, `pitcrew help
// CMD`, shell completion and the dispatch all come from this table; each
// command's flags are defined once in its own function (newFlags), which
// prints them for --help.
type command struct {
	name     string
	synopsis string // after "pitcrew NAME"
	short    string // one line, for completion and the command list
	long     string // the root help's paragraph
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"sync", "--config FILE [--start-from WHERE | --start-gtid SET]", "Run a channel as a service",
		"Run as a service until SIGINT/SIGTERM. Serves the console (a web page), /metrics, /healthz, /readyz and /status on http_addr (default 127.0.0.1:9307).",
		func(ctx context.Context, a []string, _, e io.Writer) error { return cmdSync(ctx, a, e) }},
	{"catchup", "--config FILE [--until SET] [--timeout DURATION] [--start-from WHERE | --start-gtid SET]", "Apply until caught up, then exit",
		"Apply until the target has everything the source had at start (or --until SET), then exit 0. Exit 2 on --timeout, with the gap printed.",
		func(ctx context.Context, a []string, _, e io.Writer) error { return cmdCatchup(ctx, a, e) }},
	{"preflight", "--config FILE [--json]", "Check source and target before a migration",
		"Check source and target before a migration: PASS/WARN/FAIL lines, each with its fix; exit 1 on any FAIL.", cmdPreflight},
	{"status", "[--config FILE | --url URL | --data-dir DIR --channel NAME] [--json]", "Show a channel's state",
		"Show a channel's state: from the running service (found through its data dir or http_addr), else from the data dir and the source.", cmdStatus},
	{"load", "--config FILE [--workers N] [--chunk ROWS] [--tables PATTERNS] [--objects all|none|KINDS]", "Full load from one consistent snapshot",
		"Full load: copy the tables from one consistent snapshot whose GTID position is recorded; resumes after a crash; the channel's first start then streams from exactly that position. Then views, routines, triggers, events (disabled), users and grants, AUTO_INCREMENT counters.", cmdLoad},
	{"verify", "--config FILE [--tables PATTERNS] [--repair] [--json] | --objects --config FILE [--repair] [--json]", "Prove the copy: checksums and differing rows; --objects: what is not rows",
		"Prove the copy: chunked checksums computed in each database, values compared (not bytes), differing rows by key; --repair rewrites them. With --objects: table definitions, views, routines, triggers, events, users and grants, AUTO_INCREMENT counters, each difference with its fix; --repair creates what is missing. Exit 0 only when equal.", cmdVerify},
	{"binlog", "decode [--flavor F] [--json] FILE...   (or --from-server --config FILE [--from SET] [--to SET])", "Print transactions as the engine sees them",
		"Print transactions as the engine sees them: GTID, tables, typed row images, DDL.", cmdBinlog},
	{"skip", "--config FILE --gtid GTID", "Do not apply one source transaction",
		"Do not apply one source transaction (a DDL pitcrew refused, say); read at the next start, used once, logged and shown in /status.",
		func(_ context.Context, a []string, o, e io.Writer) error { return cmdSkip(a, o, e) }},
	{"triggers", "restore --config FILE", "Give the target's guarded triggers their own definitions back",
		"Give the source's triggers on the target their own definitions back (pitcrew guards them while it applies, so they do not fire again for replicated rows); for when pitcrew is done.", cmdTriggers},
	{"bidi", "plan|check|sync|status --config FILE [--force]", "Bidirectional (master-master) mode",
		"Bidirectional (master-master) mode over the config's nodes: plan and check auto-increment offsets, run every direction loop-free with conflict policies, and tell when the nodes are in sync.", cmdBidi},
	{"conflicts", "list|show ID|resolve ID --take source|target --config FILE [--node NAME]", "The conflict ledger of each node",
		"The conflict ledger of each node.", cmdConflicts},
	{"migrate", "plan|apply|resume|status|rollback|confirm --plan FILE", "The whole move as a resumable runbook",
		"The whole move (AWS account to account, or server to server) as a resumable runbook: snapshot, KMS share, restore, peering, forward channel, guarded cut-over, DNS, take-down. 'plan' needs no credentials.", cmdMigrate},
	{"fleet", "plan|apply|resume|status|rollback|confirm|manifests --fleet FILE", "Many databases moved in waves",
		"Many databases: each runbook a process of its own under copy limits, applications cut over in waves once all their databases are in sync, one KMS key and peering per account pair, Kubernetes manifests.", cmdFleet},
	{"bench", "catchup|cutover|load|lag|memory|decode|all [FLAGS]", "Measure pitcrew against its contenders",
		"Measure pitcrew against native replication, mydumper and others on throwaway servers (same machine, same run), and what an application feels during a cut-over (bench cutover); 'pitcrew bench' lists the benchmarks.", cmdBench},
	{"sandbox", "up|down|status|workload|compare [--dir DIR]", "Throwaway local source and target",
		"Throwaway local MariaDB source and target for trying pitcrew out.", cmdSandbox},
	{"version", "", "Version, commit and build date",
		"Version, commit and build date of this binary.",
		func(_ context.Context, a []string, o, e io.Writer) error {
			fs := newFlags("version", "version", e)
			if err := parse(fs, a); err != nil {
				return err
			}
			printVersion(o)
			return nil
		}},
}

const usageTail = `
First start of a channel (no checkpoint yet) needs one of:
  --start-from target     the target was restored from a snapshot or dump
  --start-from now        the target has the data: stream only new changes
  --start-from beginning  replay everything the source's binlog still holds
  --start-gtid SET        the GTID set already applied on the target
  --start-from-dump FILE  the target was loaded from this dump (at its GTID)

Passwords may come from PITCREW_SOURCE_PASSWORD and PITCREW_TARGET_PASSWORD.
Run 'pitcrew help COMMAND' (or 'pitcrew COMMAND --help') for a command's flags;
'pitcrew completion bash|zsh|fish' prints a shell completion script.
README.md documents the config file.
`

// usage is the root help: every command with its synopsis and paragraph.
func usage() string {
	var b strings.Builder
	b.WriteString("pitcrew: stream a live MySQL/MariaDB database into another server, exactly once.\n\nUsage:\n")
	for _, c := range commands {
		// The synopsis wraps under itself: the overview fits 80 columns.
		head := fmt.Sprintf("  pitcrew %-9s ", c.name)
		for i, l := range wrap(keepBrackets(c.synopsis), 79-len(head)) {
			if i > 0 {
				head = strings.Repeat(" ", len(head))
			}
			b.WriteString(strings.TrimRight(head+strings.ReplaceAll(l, nbsp, " "), " ") + "\n")
		}
		if c.synopsis == "" {
			b.WriteString(strings.TrimRight(head, " ") + "\n")
		}
		for _, l := range wrap(c.long, 72) {
			b.WriteString("      " + l + "\n")
		}
	}
	b.WriteString(usageTail)
	return b.String()
}

const nbsp = "\x00" // a space wrap must not break at (strings.Fields breaks at U+00A0)

// keepBrackets joins the words of each [option] so wrap does not break it.
func keepBrackets(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case r == ' ' && depth > 0:
			b.WriteString(nbsp)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// wrap breaks s into lines of at most n columns at spaces.
func wrap(s string, n int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// newRoot is the command tree: each command parses its own flags (so a
// command's help and its parsing are one definition); cobra gives `help
// CMD`, completion scripts and the dispatch. *result receives the
// command's error.
func newRoot(ctx context.Context, stdout, stderr io.Writer, result *error) *cobra.Command {
	root := &cobra.Command{
		Use:           "pitcrew",
		Short:         "Stream a live MySQL/MariaDB database into another server, exactly once",
		SilenceErrors: true,
		SilenceUsage:  true,
		// The root's own help is the hand-kept overview above.
		RunE: func(c *cobra.Command, args []string) error { fmt.Fprint(stdout, usage()); return nil },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		if c == root {
			fmt.Fprint(stdout, usage())
			return
		}
		// `pitcrew help CMD`: the command's own --help, on stdout.
		for _, cmd := range commands {
			if cmd.name == c.Name() {
				*result = cmd.run(ctx, []string{"--help"}, stdout, stdout)
				return
			}
		}
		_ = c.Usage()
	})
	for _, cmd := range commands {
		root.AddCommand(&cobra.Command{
			Use:                cmd.name + " " + cmd.synopsis,
			Short:              cmd.short,
			DisableFlagParsing: true,
			RunE: func(c *cobra.Command, args []string) error {
				errOut := stderr
				if len(args) > 0 && (isHelp(args[len(args)-1]) || isHelp(args[0])) {
					errOut = stdout // asked-for help goes to stdout
				}
				*result = cmd.run(ctx, args, stdout, errOut)
				return nil
			},
		})
	}
	return root
}
