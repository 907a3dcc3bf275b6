package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
)

// Table names a table on both sides (load takes the same).
type Table = schema.Pair

// Config says what to compare and how.
type Config struct {
	Source, Target *sql.DB // both with the applier's session (binary strings, UTC)
	Tables         []Table
	ChunkRows      int // default 1000
	// SourcePosition and Applied, when set, make verify safe while
	// replication runs: a chunk that differs is read again once Applied
	// covers the source position it was read at. Nil: compare as is.
	SourcePosition func(context.Context) (gtid.Set, error)
	Applied        func(context.Context) (gtid.Set, error)
	Rechecks       int           // default 5
	Wait           time.Duration // give up rechecking when the channel has not moved for this long; default 10s
	Repair         bool          // rewrite differing rows from the source
	// Schema is pitcrew's own schema on the target (progress_schema),
	// where repairs are recorded; default _pitcrew.
	Schema   string
	Progress func(table string, rowsDone int64)
}

func (c *Config) defaults() {
	if c.ChunkRows <= 0 {
		c.ChunkRows = 1000
	}
	if c.Rechecks <= 0 {
		c.Rechecks = 5
	}
	if c.Wait <= 0 {
		c.Wait = 10 * time.Second
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
}

// Diff is one row that differs.
type Diff struct {
	Key  map[string]string `json:"key"`
	Kind string            `json:"kind"` // missing-on-target, extra-on-target, different
}

// TableReport is one table's result.
type TableReport struct {
	Table    string `json:"table"`
	Rows     int64  `json:"rows"`
	Chunks   int    `json:"chunks"`
	Diffs    []Diff `json:"diffs,omitempty"`
	Repaired int    `json:"repaired,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Report is the result of a run.
type Report struct {
	Equal  bool          `json:"equal"`
	Tables []TableReport `json:"tables"`
}

// Run compares the tables.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.defaults()
	rep := Report{Equal: true}
	for _, tb := range cfg.Tables {
		t, err := describe(ctx, cfg.Source, tb.SourceSchema, tb.SourceName)
		if err != nil {
			return rep, err
		}
		t.tgtSchema, t.tgtName = tb.TargetSchema, tb.TargetName
		tr, err := cfg.table(ctx, t)
		if err != nil {
			return rep, fmt.Errorf("verifying %s: %w", t.srcSchema+"."+t.srcName, err)
		}
		if len(tr.Diffs) > tr.Repaired || tr.Note != "" {
			rep.Equal = false
		}
		rep.Tables = append(rep.Tables, tr)
	}
	return rep, nil
}

func (cfg *Config) table(ctx context.Context, t table) (TableReport, error) {
	tr := TableReport{Table: t.srcSchema + "." + t.srcName}
	if t.tgtSchema != t.srcSchema || t.tgtName != t.srcName {
		tr.Table += " -> " + t.tgtSchema + "." + t.tgtName
	}
	if len(t.key) == 0 {
		equal, n, err := cfg.chunk(ctx, t, nil, nil)
		tr.Rows, tr.Chunks = n, 1
		if err == nil && !equal {
			tr.Note = "differs (no primary or unique NOT NULL key: rows cannot be named or repaired)"
		}
		return tr, err
	}
	var lo []any
	for {
		hi, err := cfg.bound(ctx, t, lo)
		if err != nil {
			return tr, err
		}
		equal, n, err := cfg.chunk(ctx, t, lo, hi)
		if err != nil {
			return tr, err
		}
		tr.Rows += n
		tr.Chunks++
		if !equal {
			diffs, err := rowDiffs(ctx, cfg.Source, cfg.Target, t, lo, hi)
			if err != nil {
				return tr, err
			}
			tr.Diffs = append(tr.Diffs, diffs...)
			if cfg.Repair {
				for _, d := range diffs {
					if err := repair(ctx, cfg.Source, cfg.Target, cfg.Schema, t, d); err != nil {
						return tr, err
					}
					tr.Repaired++
				}
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(tr.Table, tr.Rows)
		}
		if hi == nil {
			return tr, nil
		}
		lo = hi
	}
}

// bound returns the key of the ChunkRows-th row after lo, or nil for the
// last chunk.
func (cfg *Config) bound(ctx context.Context, t table, lo []any) ([]any, error) {
	where, args := t.rangeWhere(lo, nil)
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 1 OFFSET %d", t.keyList(), t.src(), where, t.keyList(), cfg.ChunkRows-1)
	vals := make([]any, len(t.key))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err := cfg.Source.QueryRowContext(ctx, q, args...).Scan(ptrs...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return vals, err
}

// chunk compares one key range. A difference while replication runs may
// be a change in flight: the chunk is read again once the channel has
// applied past the source position the source side was read at, up to
// Rechecks times; a channel that does not move ends the rechecks.
func (cfg *Config) chunk(ctx context.Context, t table, lo, hi []any) (bool, int64, error) {
	where, args := t.rangeWhere(lo, hi)
	sum := "SELECT COUNT(*), COALESCE(BIT_XOR(" + t.rowExpr() + "), 0) FROM "
	var n int64
	for attempt := 0; ; attempt++ {
		var pos gtid.Set
		if cfg.SourcePosition != nil {
			var err error
			if pos, err = cfg.SourcePosition(ctx); err != nil {
				return false, 0, err
			}
		}
		var sc, tc, sx, tx int64
		if err := cfg.Source.QueryRowContext(ctx, sum+t.src()+" WHERE "+where, args...).Scan(&sc, &sx); err != nil {
			return false, 0, err
		}
		n = sc
		if attempt > 0 && !waitFor(ctx, cfg.Applied, pos, cfg.Wait) {
			return false, n, ctx.Err()
		}
		if err := cfg.Target.QueryRowContext(ctx, sum+t.tgt()+" WHERE "+where, args...).Scan(&tc, &tx); err != nil {
			return false, n, fmt.Errorf("target: %w", err)
		}
		if sc == tc && sx == tx {
			return true, n, nil
		}
		if cfg.Applied == nil || cfg.SourcePosition == nil || attempt+1 >= cfg.Rechecks {
			return false, n, nil
		}
	}
}

// waitFor waits until applied covers pos. It gives up (false) when the
// position stops moving for max: a stopped or idle channel will not bring
// the chunk any closer.
func waitFor(ctx context.Context, applied func(context.Context) (gtid.Set, error), pos gtid.Set, max time.Duration) bool {
	var last string
	since := time.Now()
	for {
		have, err := applied(ctx)
		if err == nil && have.Contains(pos) {
			return true
		}
		if have.String() != last {
			last, since = have.String(), time.Now()
		}
		if time.Since(since) > max {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// keyed reads key -> row fingerprint for a range.
func keyed(ctx context.Context, db *sql.DB, name string, t table, lo, hi []any) (map[string]string, [][]string, error) {
	where, args := t.rangeWhere(lo, hi)
	rows, err := db.QueryContext(ctx, "SELECT "+t.keyList()+", "+t.rowExpr()+" FROM "+name+" WHERE "+where+" ORDER BY "+t.keyList(), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	var order [][]string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(t.key)+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		key := make([]string, len(t.key))
		for i := range t.key {
			key[i] = string(vals[i])
		}
		id := strings.Join(key, "\x00")
		m[id] = string(vals[len(t.key)])
		order = append(order, key)
	}
	return m, order, rows.Err()
}

func rowDiffs(ctx context.Context, src, tgt *sql.DB, t table, lo, hi []any) ([]Diff, error) {
	s, sOrder, err := keyed(ctx, src, t.src(), t, lo, hi)
	if err != nil {
		return nil, err
	}
	d, dOrder, err := keyed(ctx, tgt, t.tgt(), t, lo, hi)
	if err != nil {
		return nil, err
	}
	keyMap := func(k []string) map[string]string {
		m := map[string]string{}
		for i, c := range t.key {
			m[c] = k[i]
		}
		return m
	}
	var out []Diff
	for _, k := range sOrder {
		id := strings.Join(k, "\x00")
		switch v, ok := d[id]; {
		case !ok:
			out = append(out, Diff{Key: keyMap(k), Kind: "missing-on-target"})
		case v != s[id]:
			out = append(out, Diff{Key: keyMap(k), Kind: "different"})
		}
	}
	for _, k := range dOrder {
		if _, ok := s[strings.Join(k, "\x00")]; !ok {
			out = append(out, Diff{Key: keyMap(k), Kind: "extra-on-target"})
		}
	}
	slices.SortStableFunc(out, func(a, b Diff) int { return strings.Compare(fmt.Sprint(a.Key), fmt.Sprint(b.Key)) })
	return out, nil
}

// repair makes the target row equal to the source row (or deletes it),
// with the applier's session, and records it in the repairs table of
// pitcrew's schema in the same transaction.
func repair(ctx context.Context, src, tgt *sql.DB, schema string, t table, d Diff) error {
	var where []string
	var args []any
	for _, k := range t.key {
		where = append(where, conn.QuoteName(k)+" = ?")
		args = append(args, d.Key[k])
	}
	var sel []string
	for _, c := range t.cols {
		e := conn.QuoteName(c.name)
		if c.dataType == "float" || c.dataType == "double" {
			e += " * 1e0" // every digit
		}
		sel = append(sel, e)
	}
	tx, err := tgt.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.tgt()+" WHERE "+strings.Join(where, " AND "), args...); err != nil {
		return err
	}
	if d.Kind != "extra-on-target" {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := src.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ",")+" FROM "+t.src()+" WHERE "+strings.Join(where, " AND "), args...).Scan(ptrs...)
		switch {
		case errors.Is(err, sql.ErrNoRows): // deleted on the source meanwhile
		case err != nil:
			return err
		default:
			names := make([]string, len(t.cols))
			for i, c := range t.cols {
				names[i] = conn.QuoteName(c.name)
			}
			q := "INSERT INTO " + t.tgt() + " (" + strings.Join(names, ",") + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",") + ")"
			if _, err := tx.ExecContext(ctx, q, vals...); err != nil {
				return fmt.Errorf("rewriting %v: %w", d.Key, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+repairsName(schema)+" (tbl, row_key, kind) VALUES (?, ?, ?)",
		t.tgtSchema+"."+t.tgtName, fmt.Sprint(d.Key), d.Kind); err != nil {
		return fmt.Errorf("recording the repair: %w", err)
	}
	return tx.Commit()
}

// DefaultSchema is pitcrew's own schema when none is configured.
const DefaultSchema = "_pitcrew"

func repairsName(schema string) string { return conn.QuoteName(schema) + ".`repairs`" }

// EnsureRepairs creates the table that records repairs in schema
// (pitcrew's own, progress_schema; "" is DefaultSchema).
func EnsureRepairs(ctx context.Context, db *sql.DB, schema, marker string) error {
	if schema == "" {
		schema = DefaultSchema
	}
	for _, q := range []string{
		marker + "CREATE DATABASE IF NOT EXISTS " + conn.QuoteName(schema),
		marker + "CREATE TABLE IF NOT EXISTS " + repairsName(schema) + " (id BIGINT AUTO_INCREMENT PRIMARY KEY, tbl VARBINARY(200) NOT NULL, row_key BLOB NOT NULL, kind VARBINARY(32) NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB COMMENT='pitcrew verify --repair: rows rewritten from the source'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
