package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"text/tabwriter"

	"github.com/pitcrew/pitcrew/internal/jobs/preflight"
)

func cmdPreflight(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("preflight", "preflight --config FILE [--json]", stderr)
	config := fs.String("config", "pitcrew.yaml", "config file with the source and target")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	fc, err := loadConfig(*config)
	if err != nil {
		return err
	}
	cfg := fc.syncerConfig()
	rs := preflight.Run(ctx, preflight.Config{Source: cfg.Source, Target: cfg.Target, ServerID: cfg.ServerID, Channel: cfg.Channel, Route: cfg.Route})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rs); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LEVEL\tSIDE\tCHECK\tDETAIL")
		for _, r := range rs {
			line := r.Detail
			if r.Fix != "" {
				line += " -> fix: " + r.Fix
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Level, r.Side, r.Check, line)
		}
		tw.Flush()
	}
	if preflight.Failed(rs) {
		return errors.New("preflight found problems (FAIL lines above): fix them and run it again")
	}
	return nil
}
