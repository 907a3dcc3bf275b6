package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/devtools/sandbox"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

const sandboxUsage = "sandbox up|down|status|workload|compare [--dir DIR] [--tls] [--txns N] [--schema NAME]"

func cmdSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: pitcrew "+sandboxUsage)
		return errUsage
	}
	sub, rest := subcommand(args)
	fs := newFlags("sandbox "+sub, sandboxUsage, stderr)
	dir := fs.String("dir", ".sandbox", "sandbox directory (servers' data, sandbox.json, pitcrew.yaml)")
	txns := fs.Int("txns", 2000, "workload: transactions to write on the source")
	schema := fs.String("schema", "demo", "workload/compare: database to use")
	useTLS := fs.Bool("tls", false, "up: servers that serve TLS (certificates generated into DIR/certs) and refuse plaintext; pitcrew.yaml uses tls verify-identity with a client certificate")
	if err := parse(fs, rest); err != nil {
		return err
	}
	switch sub {
	case "up":
		if _, _, err := mariadb.Binaries(); err != nil {
			return err
		}
		st, err := sandbox.Up(ctx, *dir, *useTLS)
		if err != nil {
			return err
		}
		printSandbox(stdout, st, *dir)
		return nil
	case "down":
		if err := sandbox.Down(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sandbox in %s stopped and removed\n", *dir)
		return nil
	case "status":
		st, err := sandbox.Load(*dir)
		if err != nil {
			return err
		}
		printSandbox(stdout, st, *dir)
		return nil
	case "workload":
		st, err := sandbox.Load(*dir)
		if err != nil {
			return err
		}
		db, err := conn.Open(st.Source.Endpoint())
		if err != nil {
			return err
		}
		defer db.Close()
		for _, q := range workload.Schema(*schema) {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("creating the demo schema on the sandbox source: %w", err)
			}
		}
		gen := workload.New(db, *schema, 42)
		if err := gen.Run(ctx, *txns); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d transactions (%d row changes) to %s on the source\n", *txns, gen.TotalChanges(), *schema)
		return nil
	case "compare":
		st, err := sandbox.Load(*dir)
		if err != nil {
			return err
		}
		return compareSandbox(ctx, stdout, st, *schema)
	}
	fmt.Fprintf(stderr, "pitcrew sandbox: unknown subcommand %q\nUsage: pitcrew %s\n", sub, sandboxUsage)
	return errUsage
}

func printSandbox(w io.Writer, st sandbox.State, dir string) {
	for _, s := range []sandbox.Server{st.Source, st.Target} {
		state := "stopped"
		if s.Running() {
			state = "running"
		}
		fmt.Fprintf(w, "%-6s %-7s DSN %-28s client: %s\n", s.Role, state, s.DSN(), s.Client())
	}
	fmt.Fprintf(w, "config: %s\n", sandbox.ConfigFile(dir))
}

func compareSandbox(ctx context.Context, w io.Writer, st sandbox.State, schema string) error {
	src, err := conn.Open(st.Source.Endpoint())
	if err != nil {
		return err
	}
	defer src.Close()
	tgt, err := conn.Open(st.Target.Endpoint())
	if err != nil {
		return err
	}
	defer tgt.Close()
	tables, err := checksum.BaseTables(ctx, src, schema)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("the source has no tables in %s: run 'pitcrew sandbox workload' first", schema)
	}
	res, err := checksum.Tables(ctx, src, tgt, schema, tables)
	if err != nil {
		return err
	}
	differ := 0
	for _, r := range res {
		fmt.Fprintln(w, r)
		if !r.Equal() {
			differ++
		}
	}
	if differ > 0 {
		return fmt.Errorf("%d of %d tables differ between source and target", differ, len(res))
	}
	fmt.Fprintf(w, "all %d tables equal (CHECKSUM TABLE and row counts)\n", len(res))
	return nil
}
