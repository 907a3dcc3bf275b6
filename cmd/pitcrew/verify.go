package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/jobs/verify"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "verify --config FILE [--tables PATTERNS] [--chunk N] [--repair] [--no-wait] [--json] | verify --objects --config FILE [--repair] [--json]", stderr)
	config := fs.String("config", "pitcrew.yaml", "config file (source, target, route, channel)")
	tables := fs.String("tables", "", "comma-separated schema.table patterns (globs) to verify; default: every replicated table")
	chunk := fs.Int("chunk", 1000, "rows per checksum chunk")
	doRepair := fs.Bool("repair", false, "rewrite differing rows on the target from the source (recorded in _pitcrew.repairs), then verify again")
	noWait := fs.Bool("no-wait", false, "do not wait for the channel to apply past a differing chunk before reporting it")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	withObjects := fs.Bool("objects", false, "compare everything that is not rows instead: table definitions, views, routines, triggers, events, users and grants, AUTO_INCREMENT counters (--repair creates what is missing)")
	if err := parse(fs, args); err != nil {
		return err
	}
	fc, err := loadConfig(*config)
	if err != nil {
		return err
	}
	cfg := fc.syncerConfig()
	if err := cfg.Route.Validate(); err != nil {
		return err
	}
	sides, err := verify.Open(ctx, cfg.Source, cfg.Target)
	if err != nil {
		return err
	}
	defer sides.Close()
	src, tgt := sides.Source, sides.Target
	applied := sides.Applied(serviceApplied(fc), checkpoint.Progress{Schema: cfg.ProgressSchema, Table: cfg.ProgressTable}, cfg.Channel)
	if *withObjects {
		var between func(context.Context) error
		if !*noWait {
			between = func(ctx context.Context) error { return sides.WaitApplied(ctx, applied, 10*time.Second) }
		}
		return verifyObjects(ctx, src, tgt, cfg, route.New(cfg.Route), *doRepair, *asJSON, between, stdout)
	}
	list, err := verify.Replicated(ctx, src, route.New(cfg.Route), *tables, cfg.ProgressSchema)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return errors.New("no table to verify: check --tables and the route rules")
	}
	live := newLiveLine(stderr)
	vc := verify.Config{Source: src, Target: tgt, Tables: list, ChunkRows: *chunk, Repair: *doRepair, Schema: cfg.ProgressSchema,
		Progress: func(table string, rows int64) {
			if !*asJSON && live.due() {
				live.show(fmt.Sprintf("verify: %s: %d rows checked", table, rows))
			}
		}}
	if !*noWait {
		vc.SourcePosition, vc.Applied = sides.Executed, applied
	}
	if *doRepair {
		if err := verify.EnsureRepairs(ctx, tgt, cfg.ProgressSchema, checkpoint.InternalMarker); err != nil {
			return fmt.Errorf("creating %s.repairs on the target: %w", cfg.ProgressSchema, err)
		}
	}
	rep, err := verify.Prove(ctx, vc)
	if err != nil {
		return err
	}
	live.clear()
	printReport(stdout, rep, *asJSON)
	if !rep.Equal {
		return errors.New("source and target differ (see the report): re-run with --repair to rewrite the rows from the source")
	}
	return nil
}

func printReport(w io.Writer, rep verify.Report, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	for _, t := range rep.Tables {
		verdict := "EQUAL"
		if len(t.Diffs) > 0 || t.Note != "" {
			verdict = fmt.Sprintf("%d rows DIFFER", len(t.Diffs))
		}
		if t.Repaired > 0 {
			verdict += fmt.Sprintf(" (%d repaired)", t.Repaired)
		}
		fmt.Fprintf(w, "%-40s %10d rows %6d chunks  %s %s\n", t.Table, t.Rows, t.Chunks, verdict, t.Note)
		for i, d := range t.Diffs {
			if i == 20 {
				fmt.Fprintf(w, "    ... and %d more (--json lists them all)\n", len(t.Diffs)-20)
				break
			}
			fmt.Fprintf(w, "    %s %s\n", d.Kind, keyText(d.Key))
		}
	}
	if rep.Equal {
		fmt.Fprintln(w, "source and target are equal")
	}
}

// keyText prints a row's key as the SQL a person would type after WHERE:
// id=20, or a=1 b='x y' for a composite key (columns in name order).
func keyText(key map[string]string) string {
	cols := slices.Sorted(maps.Keys(key))
	parts := make([]string, len(cols))
	for i, c := range cols {
		v := key[c]
		if v == "" || strings.ContainsAny(v, " '\"=\t\n") {
			v = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		parts[i] = c + "=" + v
	}
	return strings.Join(parts, " ")
}
