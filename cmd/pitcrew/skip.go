package main

import (
	"errors"
	"fmt"
	"io"
)

func cmdSkip(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("skip", "skip --config FILE --gtid GTID", stderr)
	config := fs.String("config", "pitcrew.yaml", "config file (its data_dir and channel)")
	g := fs.String("gtid", "", "the GTID of the source transaction not to apply (from the error that stopped the channel)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *g == "" {
		return errors.New("--gtid is required: take it from the error that stopped the channel")
	}
	if err := checkGTIDSyntax(*g); err != nil {
		return fmt.Errorf("--gtid: %w", err)
	}
	cfg, store, err := stoppedChannel(*config, "the skip is read at start")
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.AddSkip(cfg.Channel, *g); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "channel %s will not apply %s: it is skipped once, at the next start, and the log and /status will say so\n", cfg.Channel, *g)
	return nil
}
