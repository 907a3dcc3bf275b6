package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/jobs/load"
	"github.com/pitcrew/pitcrew/internal/jobs/objects"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
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
// hand-off in the data dir, where the channel's first start finds it.
func runLoad(ctx context.Context, cfg syncer.Config, workers, chunk int, patterns string, sel objects.Selection, stderr io.Writer) (load.Result, error) {
	if err := cfg.Validate(); err != nil {
		return load.Result{}, err
	}
	src, err := conn.Open(cfg.Source, conn.Options{Init: apply.Session})
	if err != nil {
		return load.Result{}, err
	}
	defer src.Close()
	if err := conn.Ping(ctx, src, "source", cfg.Source); err != nil {
		return load.Result{}, err
	}
	info, err := binlog.Inspect(ctx, src)
	if err != nil {
		return load.Result{}, err
	}
	if err := info.CheckSource(); err != nil {
		return load.Result{}, err
	}
	router := route.New(cfg.Route)
	list, err := replicatedTables(ctx, src, router, patterns, cfg.ProgressSchema)
	if err != nil {
		return load.Result{}, err
	}
	if len(list) == 0 {
		return load.Result{}, errors.New("no table to load: check --tables and the route rules")
	}
	var total int64
	var tables []load.Table
	var chosen []tableRef
	for _, t := range list {
		tables = append(tables, load.Table{SourceSchema: t.SourceSchema, SourceName: t.SourceName, TargetSchema: t.TargetSchema, TargetName: t.TargetName})
		if patterns != "" {
			chosen = append(chosen, tableRef{t.SourceSchema})
		}
		var n int64
		_ = src.QueryRowContext(ctx, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.SourceSchema, t.SourceName).Scan(&n)
		total += n
	}
	scope, err := objectScope(ctx, src, cfg, router, chosen)
	if err != nil {
		return load.Result{}, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return load.Result{}, err
	}
	store, err := checkpoint.Open(cfg.DataDir)
	if err != nil {
		return load.Result{}, err
	}
	defer store.Close()
	start := time.Now()
	live := newLiveLine(stderr)
	res, err := load.Run(ctx, load.Config{
		Source: cfg.Source, Target: cfg.Target, Flavor: info.Flavor, Tables: tables,
		Workers: workers, ChunkRows: chunk, Store: store, Channel: cfg.Channel, Rename: router.Table, Logger: cfg.Logger,
		Objects: sel, ObjectScope: scope,
		Progress: func(rows int64) {
			if !live.due() {
				return
			}
			elapsed := time.Since(start)
			rate := float64(rows) / elapsed.Seconds()
			eta, pct := "?", 0.0
			if total > 0 {
				pct = min(100, 100*float64(rows)/float64(total))
			}
			if rate > 0 && total > rows {
				eta = time.Duration(float64(total-rows) / rate * float64(time.Second)).Round(time.Second).String()
			}
			live.show(fmt.Sprintf("load: %3.0f%%, %d of ~%d rows, %.0f rows/s, elapsed %s, ETA %s",
				pct, rows, total, rate, elapsed.Round(time.Second), eta))
		},
	})
	live.clear()
	if err != nil {
		return res, fmt.Errorf("load: %w (run it again to resume)", err)
	}
	fmt.Fprintf(stderr, "load: %d rows in %s (%.0f rows/s)\n", res.Rows, time.Since(start).Round(time.Millisecond), float64(res.Rows)/time.Since(start).Seconds())
	if len(res.Skipped) > 0 {
		fmt.Fprintf(stderr, "load: already on the target as on the source, left as they are: %s\n", strings.Join(res.Skipped, ", "))
	}
	return res, nil
}
