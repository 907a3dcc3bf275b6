// Package load copies tables from the source to the target from a
// consistent snapshot whose GTID position it knows, so the stream can start
// exactly there ("full load + CDC").
//
// Workers copy primary-key chunks in parallel, each from a snapshot taken
// at the same moment (under a brief FLUSH TABLES WITH READ LOCK when the
// user may take it; one worker otherwise). Progress is kept per chunk in
// pebble. After a crash the load resumes: the remaining chunks come from a
// new snapshot, later than the first; the stream then starts at the first
// snapshot's position and applies idempotently until the latest one, which
// makes every row converge.
package load

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/jobs/objects"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/ddl"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"golang.org/x/sync/errgroup"
)

// Table names a table on both sides (verify takes the same).
type Table = schema.Pair

// Config says what to load.
type Config struct {
	Source, Target conn.Endpoint
	Flavor         string
	Tables         []Table
	Workers        int // default 4
	ChunkRows      int // rows per chunk, default 10000
	InsertRows     int // rows per INSERT statement, default 1000 (measured: 500 was ~7% slower)
	Store          *checkpoint.Store
	Channel        string
	// Rename maps names inside CREATE TABLE (routing); nil keeps them.
	Rename   func(ddl.Ref) ddl.Ref
	Progress func(rows int64)
	Logger   *slog.Logger
	// Objects are the kinds of non-table objects carried after the rows
	// (views, routines, triggers, events, users, AUTO_INCREMENT counters;
	// empty: tables only), within ObjectScope. They are checked against
	// the target before anything is written.
	Objects     objects.Selection
	ObjectScope objects.Scope
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = 10000
	}
	if c.InsertRows <= 0 {
		c.InsertRows = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Result is where the stream continues after the load.
type Result struct {
	Position gtid.Set // start the stream here
	Until    gtid.Set // apply idempotently until here (equal to Position for a load that never crashed)
	Rows     int64
	Objects  int      // objects, accounts and counters created or raised
	Skipped  []string // objects already on the target as the source has them
}

// Run loads the tables (or resumes a load) and returns the hand-off.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	st, ok, err := cfg.Store.Load(cfg.Channel)
	if err != nil {
		return Result{}, err
	}
	if ok && st.Done {
		return result(st)
	}
	if !ok {
		st = &checkpoint.LoadState{Flavor: cfg.Flavor, Tables: map[string]*checkpoint.LoadTable{}}
	}
	snap, err := openSnapshots(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer snap.close()
	if st.Position == "" {
		st.Position = snap.pos.String()
	} else {
		cfg.Logger.Warn("resuming an interrupted load from a newer snapshot; the stream will apply idempotently until it", "first", st.Position, "now", snap.pos.String())
	}
	st.Until = snap.pos.String()
	for _, t := range cfg.Tables {
		if st.Tables[t.Source()] == nil {
			st.Tables[t.Source()] = &checkpoint.LoadTable{Copied: map[int]bool{}}
		}
	}
	tgt, err := conn.Open(cfg.Target, conn.Options{Init: apply.Session, Interpolate: true})
	if err != nil {
		return Result{}, err
	}
	defer tgt.Close()
	var plan *objects.Plan
	if cfg.Objects.Any() {
		// Before anything is recorded or created: a refusal leaves the
		// target, and the load's state, as they were.
		if plan, err = objects.Check(ctx, snap.db, tgt, cfg.ObjectScope, cfg.Objects); err != nil {
			return Result{}, err
		}
	}
	if err := cfg.Store.SetLoad(cfg.Channel, st); err != nil {
		return Result{}, err
	}
	r := &runner{cfg: cfg, st: st, snap: snap, tgt: tgt, resumed: ok}
	if err := r.prepare(ctx); err != nil {
		return Result{}, err
	}
	if err := r.copy(ctx); err != nil {
		return Result{}, err
	}
	var made int
	if plan != nil {
		// After the rows: triggers must not fire for the copy, and the
		// counters are raised over the copied ids.
		if made, err = plan.Create(ctx, snap.db, tgt); err != nil {
			return Result{}, err
		}
	}
	st.Done = true
	if err := cfg.Store.SetLoad(cfg.Channel, st); err != nil {
		return Result{}, err
	}
	res, err := result(st)
	res.Rows, res.Objects = r.rows.Load(), made
	if plan != nil {
		res.Skipped = plan.Skipped
	}
	return res, err
}

func result(st *checkpoint.LoadState) (Result, error) {
	pos, err := gtid.Parse(st.Flavor, st.Position)
	if err != nil {
		return Result{}, err
	}
	until, err := gtid.Parse(st.Flavor, st.Until)
	return Result{Position: pos, Until: until}, err
}

type runner struct {
	cfg  Config
	st   *checkpoint.LoadState
	mu   sync.Mutex // guards st
	snap *snapshots
	tgt  *sql.DB
	rows atomic.Int64
	// resumed: an earlier run may have committed a chunk it did not get to
	// record, so chunks are written with REPLACE; a first run uses INSERT
	// (about 5% faster here).
	resumed bool
}

// prepare creates the tables on the target and plans their chunks, from
// the snapshot (so the plan matches the data it copies).
func (r *runner) prepare(ctx context.Context) error {
	c := r.snap.conns[0]
	for _, t := range r.cfg.Tables {
		lt := r.st.Tables[t.Source()]
		if !lt.Created {
			if err := r.create(ctx, c, t); err != nil {
				return err
			}
			lt.Created = true
		}
		if !lt.Planned {
			bounds, err := plan(ctx, c, t, r.cfg.ChunkRows)
			if err != nil {
				return fmt.Errorf("planning chunks of %s: %w", t.Source(), err)
			}
			lt.Bounds, lt.Planned = bounds, true
		}
		if err := r.cfg.Store.SetLoad(r.cfg.Channel, r.st); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) create(ctx context.Context, c *sql.Conn, t Table) error {
	var name, text string
	if err := c.QueryRowContext(ctx, "SHOW CREATE TABLE "+conn.QuoteName(t.SourceSchema)+"."+conn.QuoteName(t.SourceName)).Scan(&name, &text); err != nil {
		return fmt.Errorf("SHOW CREATE TABLE %s: %w", t.Source(), err)
	}
	var exists int
	if err := r.tgt.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.TargetSchema, t.TargetName).Scan(&exists); err != nil {
		return err
	}
	if exists > 0 {
		return fmt.Errorf("table %s.%s already exists on the target: pitcrew load creates and fills empty tables; drop it or exclude it (route)", t.TargetSchema, t.TargetName)
	}
	if t.TargetSchema != t.SourceSchema || t.TargetName != t.SourceName {
		info, err := ddl.Analyze(t.SourceSchema, text, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Source(), err)
		}
		if text, err = info.Rename(r.cfg.Rename, func(s string) string { return s }); err != nil {
			return fmt.Errorf("%s: %w", t.Source(), err)
		}
	} else {
		text = strings.Replace(text, "CREATE TABLE ", "CREATE TABLE "+conn.QuoteName(t.TargetSchema)+".", 1)
	}
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + conn.QuoteName(t.TargetSchema), text} {
		if err := execNames(ctx, r.tgt, q); err != nil {
			return fmt.Errorf("creating %s.%s on the target: %w", t.TargetSchema, t.TargetName, err)
		}
	}
	return nil
}

// execNames runs DDL text in utf8mb4 (SHOW CREATE TABLE's output).
func execNames(ctx context.Context, db *sql.DB, q string) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, q)
	if _, rerr := c.ExecContext(ctx, "SET NAMES binary"); err == nil {
		err = rerr
	}
	return err
}

// chunk is one unit of copy work.
type chunk struct {
	table  Table
	index  int
	lo, hi []any // nil: open
}

func (r *runner) copy(ctx context.Context) error {
	work := make(chan chunk)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		for _, t := range r.cfg.Tables {
			lt := r.st.Tables[t.Source()]
			var lo []any
			for i := 0; i <= len(lt.Bounds); i++ {
				var hi []any
				if i < len(lt.Bounds) {
					if err := json.Unmarshal(lt.Bounds[i], &hi); err != nil {
						return err
					}
				}
				r.mu.Lock()
				done := lt.Copied[i]
				r.mu.Unlock()
				if !done {
					select {
					case work <- chunk{table: t, index: i, lo: lo, hi: hi}:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				lo = hi
			}
		}
		return nil
	})
	for w := range r.snap.conns {
		c := r.snap.conns[w]
		g.Go(func() error {
			for ch := range work {
				if err := r.copyChunk(gctx, c, ch); err != nil {
					return fmt.Errorf("copying %s chunk %d: %w", ch.table.Source(), ch.index, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// copyChunk reads one key range in the worker's snapshot and writes it to
// the target (with REPLACE after a crash: a chunk copied again overwrites
// its earlier copy), then records it.
func (r *runner) copyChunk(ctx context.Context, c *sql.Conn, ch chunk) error {
	cols, key, err := columns(ctx, c, ch.table)
	if err != nil {
		return err
	}
	sel := make([]string, len(cols))
	names := make([]string, len(cols))
	for i, col := range cols {
		names[i] = conn.QuoteName(col.Name)
		sel[i] = names[i]
		if col.DataType == "float" {
			sel[i] += " * 1e0" // FLOAT prints 6 digits; this prints every bit
		}
	}
	where, args := schema.KeyRange(key, ch.lo, ch.hi)
	// Interpolated here, not by the driver: it counts the ? of a name such
	// as `c?` as placeholders and falls back to a prepared statement (binary
	// protocol on the source, the 65535-placeholder limit on the target).
	sq, err := conn.Interpolate(nil, "SELECT "+strings.Join(sel, ",")+" FROM "+conn.QuoteName(ch.table.SourceSchema)+"."+conn.QuoteName(ch.table.SourceName)+" WHERE "+where, args)
	if err != nil {
		return err
	}
	rows, err := c.QueryContext(ctx, string(sq))
	if err != nil {
		return err
	}
	defer rows.Close()
	tx, err := r.tgt.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	verb := "INSERT"
	if r.resumed {
		verb = "REPLACE"
	}
	head := verb + " INTO " + conn.QuoteName(ch.table.TargetSchema) + "." + conn.QuoteName(ch.table.TargetName) + " (" + strings.Join(names, ",") + ") VALUES "
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	var batch []any
	var text []byte
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		var err error
		if text, err = conn.Interpolate(text[:0], head+strings.TrimSuffix(strings.Repeat(tuple+",", n), ","), batch); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(text)); err != nil {
			return err
		}
		r.rows.Add(int64(n))
		if r.cfg.Progress != nil {
			r.cfg.Progress(r.rows.Load())
		}
		batch, n = batch[:0], 0
		return nil
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		batch = append(batch, vals...)
		if n++; n >= r.cfg.InsertRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Tables[ch.table.Source()].Copied[ch.index] = true
	return r.cfg.Store.SetLoad(r.cfg.Channel, r.st)
}
