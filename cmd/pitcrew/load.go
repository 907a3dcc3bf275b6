package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/jobs/load"
	"github.com/pitcrew/pitcrew/internal/jobs/objects"
	"github.com/pitcrew/pitcrew/syncer"
)

func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", "load --config FILE [--workers N] [--chunk ROWS] [--tables PATTERNS] [--objects KINDS]", stderr)
	config := fs.String("config", "pitcrew.yaml", "config file (source, target, route, data_dir, channel)")
	workers := fs.Int("workers", 4, "parallel copy workers (one snapshot connection each)")
	chunk := fs.Int("chunk", 10000, "rows per chunk (the unit of progress and resume)")
	tables := fs.String("tables", "", "comma-separated schema.table patterns; default: every replicated table")
	sel := objectsFlag(fs, "all")
	if err := parse(fs, args); err != nil {
		return err
	}
	fc, err := loadConfig(*config)
	if err != nil {
		return err
	}
	cfg := fc.syncerConfig()
	if cfg.Logger, err = newLogger(stderr, "warn"); err != nil {
		return err
	}
	res, err := runLoad(ctx, cfg, *workers, *chunk, *tables, *sel, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "loaded %d rows and %d objects; the stream starts at %q (run pitcrew sync or catchup with this config)\n", res.Rows, res.Objects, res.Position.String())
	return nil
}

// runLoad loads (or resumes loading) the replicated tables and records the
// hand-off in the data dir, where the channel's first start finds it; it
// shows the progress on stderr.
func runLoad(ctx context.Context, cfg syncer.Config, workers, chunk int, patterns string, sel objects.Selection, stderr io.Writer) (load.Result, error) {
	if err := cfg.Validate(); err != nil {
		return load.Result{}, err
	}
	live := newLiveLine(stderr)
	res, err := load.RunJob(ctx, load.Job{
		Source: cfg.Source, Target: cfg.Target, Route: cfg.Route, ProgressSchema: cfg.ProgressSchema,
		DataDir: cfg.DataDir, Channel: cfg.Channel, Workers: workers, ChunkRows: chunk, Tables: patterns,
		Objects: sel, Logger: cfg.Logger,
		Progress: func(rows, total int64, elapsed time.Duration) {
			if live.due() {
				live.show(loadProgress(rows, total, elapsed))
			}
		},
	})
	live.clear()
	if err != nil {
		return res.Result, err
	}
	fmt.Fprintf(stderr, "load: %d rows in %s (%.0f rows/s)\n", res.Rows, res.Elapsed.Round(time.Millisecond), float64(res.Rows)/res.Elapsed.Seconds())
	if len(res.Skipped) > 0 {
		fmt.Fprintf(stderr, "load: already on the target as on the source, left as they are: %s\n", strings.Join(res.Skipped, ", "))
	}
	return res.Result, nil
}

// loadProgress is the live line of a load.
func loadProgress(rows, total int64, elapsed time.Duration) string {
	rate := float64(rows) / elapsed.Seconds()
	eta, pct := "?", 0.0
	if total > 0 {
		pct = min(100, 100*float64(rows)/float64(total))
	}
	if rate > 0 && total > rows {
		eta = time.Duration(float64(total-rows) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("load: %3.0f%%, %d of ~%d rows, %.0f rows/s, elapsed %s, ETA %s",
		pct, rows, total, rate, elapsed.Round(time.Second), eta)
}
