// Package corpus proves pitcrew against the reference: a source server
// with both a native replica (the server's own row-based replication) and
// pitcrew behind it, a generated mix of schemas and DML on the source, and,
// at checkpoints, every table of pitcrew's target compared with the native
// replica's (row count, CHECKSUM TABLE, definition, AUTO_INCREMENT
// counter, and the triggers and events of each database).
//
// Each feature is a named Case writing in a database of its own, so a set
// of cases can be switched on by name; a case whose fix is not in yet is
// left out by the caller with a message (corpus_test.go, pending).
package corpus

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

// Case is one feature: the schema it needs and the DML (and DDL) of one
// round. Statements run on the source only.
type Case struct {
	Name string
	// Setup is run once, in order, before the first round; an error fails
	// the run (the generator is wrong).
	Setup func(g *Gen) []string
	// Round returns the transactions of one round: each is run on one
	// connection, inside BEGIN ... COMMIT when it has more than one
	// statement. A transaction the source refuses (a duplicate key, a
	// foreign key or CHECK violation the generator made on purpose) is
	// rolled back and counted; it never reaches a binlog.
	Round func(g *Gen) [][]string
	// Exclude: tables pitcrew is told not to replicate (schema.table
	// patterns, the case's database filled in for "%s"), for what pitcrew
	// refuses by design; they are not compared.
	Exclude []string
}

// Gen is what a case generates with: its database, a seeded random
// source, and a counter for fresh ids.
type Gen struct {
	DB   string // the case's database, quoted for SQL
	Name string // the same, unquoted
	R    *rand.Rand
	Env  *Env // the servers (a case may read the source's catalogue)
	Long bool // the long form: more rows per round
	next int
}

// ID is a fresh integer, unique within the run for this case.
func (g *Gen) ID() int { g.next++; return g.next }

// N is a random integer in [0, n).
func (g *Gen) N(n int) int { return g.R.IntN(n) }

// Rows is how many rows a round writes at a time: more in the long form.
func (g *Gen) Rows(n int) int {
	if g.Long {
		return n * 5
	}
	return n
}

// T names a table of the case's database for SQL.
func (g *Gen) T(table string) string { return g.DB + "." + conn.QuoteName(table) }

// Lit quotes s as a string literal (backslashes escaped: the source's
// sql_mode keeps backslash escapes).
func Lit(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`, "\x00", `\0`).Replace(s) + "'"
}

// Env is the three servers of a run.
type Env struct {
	Source, Native, Target *testenv.Server
	Src, Nat, Tgt          *sql.DB
}

// Config is one run.
type Config struct {
	Cases      []Case
	Rounds     int           // default 6
	CheckEvery int           // rounds between checkpoints; default 2 (and always at the end)
	Seed       uint64        // default 1
	Long       bool          // more rows per round (Gen.Rows)
	Lanes      []int         // pitcrew's lanes, one value per checkpoint in turn; default [1]
	Timeout    time.Duration // for each catch-up and wait; default 3m
	DataDir    string        // pitcrew's data dir (required)
	NoCompact  bool          // pitcrew without folding batches into net changes
	// Inspect, when set, is called at each checkpoint with differences,
	// before the run goes on (a test dumps rows there).
	Inspect func(diffs []string)
	Logger  *slog.Logger
	// Logf reports progress (t.Logf); nil: silent.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.Rounds == 0 {
		c.Rounds = 6
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = 2
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if len(c.Lanes) == 0 {
		c.Lanes = []int{1}
	}
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Report is what a run did and found.
type Report struct {
	Txns, Refused map[string]int    // per case: transactions committed, refused by the source
	Why           map[string]string // per case: the source's first refusal
	Checkpoints   int
	Tables        int      // tables compared at the last checkpoint
	Diffs         []string // every difference found, "checkpoint N: case: what"
}

// Run generates the corpus on the source and compares pitcrew's target
// with the native replica at every checkpoint. An error is a failure of
// the harness or of pitcrew's channel (it stopped); differences are in the
// report.
func Run(ctx context.Context, env *Env, cfg Config) (*Report, error) {
	cfg.defaults()
	rep := &Report{Txns: map[string]int{}, Refused: map[string]int{}, Why: map[string]string{}}
	gens := make([]*Gen, len(cfg.Cases))
	var exclude []string
	for i, c := range cfg.Cases {
		name := "c_" + c.Name
		gens[i] = &Gen{DB: conn.QuoteName(name), Name: name, R: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), Env: env, Long: cfg.Long}
		for _, x := range c.Exclude {
			exclude = append(exclude, fmt.Sprintf(x, name))
		}
	}
	for i, c := range cfg.Cases {
		g := gens[i]
		stmts := append([]string{"CREATE DATABASE " + g.DB}, c.Setup(g)...)
		for _, q := range stmts {
			if _, err := env.Src.ExecContext(ctx, q); err != nil {
				return rep, fmt.Errorf("case %s: setup %.300q: %w", c.Name, q, err)
			}
		}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for i, c := range cfg.Cases {
			for _, tx := range c.Round(gens[i]) {
				refusal, err := runTxn(ctx, env.Src, tx)
				if err != nil {
					return rep, fmt.Errorf("case %s: %w", c.Name, err)
				}
				if refusal == nil {
					rep.Txns[c.Name]++
					continue
				}
				rep.Refused[c.Name]++
				if rep.Why[c.Name] == "" {
					rep.Why[c.Name] = refusal.Error()
				}
			}
		}
		if round%cfg.CheckEvery != 0 && round != cfg.Rounds {
			continue
		}
		lanes := cfg.Lanes[rep.Checkpoints%len(cfg.Lanes)]
		rep.Checkpoints++
		start := time.Now()
		if err := catchUp(ctx, env, cfg, exclude, lanes); err != nil {
			return rep, fmt.Errorf("checkpoint %d (round %d): pitcrew: %w", rep.Checkpoints, round, err)
		}
		applied := time.Since(start)
		diffs, notes, tables, err := compareAll(ctx, env, cfg.Cases, gens)
		if err != nil {
			return rep, fmt.Errorf("checkpoint %d: comparing: %w", rep.Checkpoints, err)
		}
		rep.Tables = tables
		for _, n := range notes {
			cfg.Logf("checkpoint %d: note: %s", rep.Checkpoints, n)
		}
		if len(diffs) > 0 && cfg.Inspect != nil {
			cfg.Inspect(diffs)
		}
		for _, d := range diffs {
			rep.Diffs = append(rep.Diffs, fmt.Sprintf("checkpoint %d (round %d): %s", rep.Checkpoints, round, d))
		}
		cfg.Logf("checkpoint %d (round %d, %d lanes): caught up in %s; %d tables compared, %d differences", rep.Checkpoints, round, lanes, applied.Round(time.Millisecond), tables, len(diffs))
	}
	return rep, nil
}

// runTxn runs one generated transaction; refusal is the source's error
// when it refused it (rolled back).
func runTxn(ctx context.Context, db *sql.DB, tx []string) (refusal, err error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	multi := len(tx) > 1
	if multi {
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			return nil, err
		}
	}
	for _, q := range tx {
		if _, err := c.ExecContext(ctx, q); err != nil {
			if conn.Code(err) == 0 {
				return nil, fmt.Errorf("%.300q: %w", q, err) // not the server's refusal
			}
			if multi {
				_, _ = c.ExecContext(ctx, "ROLLBACK")
			}
			return fmt.Errorf("%.200s: %w", q, err), nil
		}
	}
	if multi {
		if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// catchUp waits for the native replica, then runs pitcrew to the source's
// position (a new process each time: every checkpoint is also a restart).
func catchUp(ctx context.Context, env *Env, cfg Config, exclude []string, lanes int) error {
	var pos string
	if err := env.Src.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		return err
	}
	if err := testenv.WaitReplica(ctx, env.Nat, pos, cfg.Timeout); err != nil {
		return err
	}
	scfg := syncer.Config{
		Source: env.Source.Endpoint(), Target: env.Target.Endpoint(),
		DataDir: filepath.Clean(cfg.DataDir), Logger: cfg.Logger,
		StreamConfig:      syncer.StreamConfig{StartFrom: syncer.StartBeginning},
		ApplyConfig:       syncer.ApplyConfig{Lanes: lanes, NoCompact: cfg.NoCompact},
		RestartBackoffMax: time.Second, Route: route.Rules{Exclude: exclude},
	}
	s, err := syncer.New(scfg, syncer.NewMetrics(prometheus.NewRegistry(), "corpus"))
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := s.Run(rctx, syncer.RunOptions{CatchUp: true, Until: pos}); err != nil {
		return err
	}
	// What an operator does when pitcrew is done: the triggers it guarded
	// get their own definitions back (compared with the native replica's;
	// the next checkpoint's start guards them again).
	_, err = stored.RestoreTriggers(ctx, env.Tgt, "")
	return err
}
