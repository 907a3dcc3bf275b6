package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
)

// cmdTriggers: `pitcrew triggers restore`, the source's triggers on the
// target given back their own definitions once pitcrew is done.
func cmdTriggers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "restore" && !isHelp(args[0])) {
		fmt.Fprintln(stderr, "Usage: pitcrew triggers restore --config FILE")
		return errUsage
	}
	_, rest := subcommand(args)
	fs := newFlags("triggers restore", "triggers restore --config FILE", stderr)
	config := fs.String("config", "pitcrew.yaml", "config file (its target, data_dir and channel)")
	if err := parse(fs, rest); err != nil {
		return err
	}
	// A channel running on this data dir would apply with its triggers
	// firing again: it must be stopped.
	cfg, store, err := stoppedChannel(*config, "its triggers would fire again for what it applies")
	if err != nil {
		return err
	}
	defer store.Close()
	db, err := conn.Open(cfg.Target)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := conn.Ping(ctx, db, "target", cfg.Target); err != nil {
		return err
	}
	// Unmarked: the definitions come back exactly as they were (in a
	// bidirectional pair the other node's channel applies the statement
	// and guards its copy again).
	done, err := stored.RestoreTriggers(ctx, db, "")
	for _, t := range done {
		fmt.Fprintf(stdout, "restored %s\n", t)
	}
	if err != nil {
		return fmt.Errorf("restoring the triggers (%d done; run it again to finish): %w", len(done), err)
	}
	fmt.Fprintf(stdout, "%d triggers have their own definitions again; they fire for every write (the next start of the channel guards them again)\n", len(done))
	return nil
}
