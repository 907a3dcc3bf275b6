package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/jobs/objects"
	"github.com/pitcrew/pitcrew/internal/jobs/verify"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// Job is a load of a channel as `pitcrew load` (and `sync --initial-load`)
// runs it: the source's replicated tables, or those Tables chooses, with
// the hand-off recorded in the channel's data dir, where its first start
// finds it.
type Job struct {
	Source, Target conn.Endpoint
	Route          route.Rules
	ProgressSchema string // pitcrew's schema on the servers, never loaded
	DataDir        string
	Channel        string
	Workers        int
	ChunkRows      int
	// Tables is a comma-separated list of schema.table patterns; "" loads
	// every replicated table (and the objects of every replicated database).
	Tables  string
	Objects objects.Selection
	Logger  *slog.Logger
	// Progress is told the rows copied so far, the source's estimate of
	// all of them (0: unknown), and the time since the copy began.
	Progress func(rows, total int64, elapsed time.Duration)
}

// JobResult is a load's hand-off and how long its copy took.
type JobResult struct {
	Result
	Elapsed time.Duration
}

// RunJob loads (or resumes loading) the job's tables. An error of the copy
// itself says that running the job again resumes it.
func RunJob(ctx context.Context, j Job) (JobResult, error) {
	src, err := conn.Open(j.Source, conn.Options{Init: apply.Session})
	if err != nil {
		return JobResult{}, err
	}
	defer src.Close()
	if err := conn.Ping(ctx, src, "source", j.Source); err != nil {
		return JobResult{}, err
	}
	info, err := binlog.Inspect(ctx, src)
	if err != nil {
		return JobResult{}, err
	}
	if err := info.CheckSource(); err != nil {
		return JobResult{}, err
	}
	router := route.New(j.Route)
	list, err := verify.Replicated(ctx, src, router, j.Tables, j.ProgressSchema)
	if err != nil {
		return JobResult{}, err
	}
	if len(list) == 0 {
		return JobResult{}, errors.New("no table to load: check --tables and the route rules")
	}
	var total int64
	var chosen []string
	for _, t := range list {
		if j.Tables != "" {
			chosen = append(chosen, t.SourceSchema)
		}
		n, err := estimatedRows(ctx, src, t.SourceSchema, t.SourceName)
		if err != nil {
			return JobResult{}, err
		}
		total += n
	}
	scope, err := objects.RouteScope(ctx, src, router, []string{j.Source.User, j.Target.User}, j.ProgressSchema, chosen)
	if err != nil {
		return JobResult{}, err
	}
	if err := os.MkdirAll(j.DataDir, 0o750); err != nil {
		return JobResult{}, err
	}
	store, err := checkpoint.Open(j.DataDir)
	if err != nil {
		return JobResult{}, err
	}
	defer store.Close()
	start := time.Now()
	res, err := Run(ctx, Config{
		Source: j.Source, Target: j.Target, Flavor: info.Flavor, Tables: list,
		Workers: j.Workers, ChunkRows: j.ChunkRows, Store: store, Channel: j.Channel, Rename: router.Table, Logger: j.Logger,
		Objects: j.Objects, ObjectScope: scope,
		Progress: func(rows int64) {
			if j.Progress != nil {
				j.Progress(rows, total, time.Since(start))
			}
		},
	})
	if err != nil {
		return JobResult{Result: res}, fmt.Errorf("load: %w (run it again to resume)", err)
	}
	return JobResult{Result: res, Elapsed: time.Since(start)}, nil
}

// estimatedRows is the source's estimate of a table's rows (0 for a table
// dropped since it was listed).
func estimatedRows(ctx context.Context, src *sql.DB, schema, table string) (int64, error) {
	var n int64
	err := src.QueryRowContext(ctx, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", schema, table).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("estimating the rows of %s.%s: %w", schema, table, err)
	}
	return n, nil
}
