// Package apply writes source transactions to the target as SQL.
//
// Invariants:
//   - a batch of source transactions commits in one target transaction
//     together with the progress row that records it (exactly once);
//   - a failure mid-batch rolls the whole batch back; after a lost
//     connection the progress row tells whether the COMMIT landed before the
//     batch is tried again, so nothing is applied twice or half;
//   - every UPDATE and DELETE must hit exactly one row: a miss means the
//     target diverged from the source and stops the channel.
package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Config says where and how to apply.
type Config struct {
	Target   conn.Endpoint
	Channel  string
	Flavor   string // of the source's GTIDs
	Progress checkpoint.Progress
	// Resolver turns conflicts into decisions (bidirectional mode). Nil:
	// a row that does not match is a divergence and stops the channel.
	Resolver Resolver
	// DDLPrefix is prepended to every applied DDL: a comment that names
	// the channel, so the DDL is recognised when it comes back.
	DDLPrefix string
	// MarkDefinitions puts DDLPrefix inside CREATE TRIGGER and CREATE EVENT
	// as well (after the keyword), where the server's binlog keeps it
	// (bidirectional mode: the statement comes back otherwise unmarked).
	MarkDefinitions bool
	// AfterDDL, when set, runs after each DDL statement succeeded on the
	// target, before the DDL is recorded as applied (a crash in between
	// runs the DDL and it again): pitcrew's care of the triggers and
	// events a DDL created (internal/stored).
	AfterDDL func(ctx context.Context, q *txn.Query) error
	// NoCompact turns off folding a batch's row changes into net changes
	// per key written with set statements (see compactor).
	NoCompact bool
	// Retries bounds the attempts at one batch after transient errors (lost
	// connection, deadlock). Default 10, with backoff capped at 5s.
	Retries int
	Logger  *slog.Logger
}

// Default fills the documented defaults.
func (c *Config) Default() {
	if c.Retries == 0 {
		c.Retries = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Session is how every applier connection is set up (DESIGN.md, "Sessions on
// the target"): row images carry values, so TIMESTAMPs are UTC, the sql_mode
// is permissive (zero dates and 0 in AUTO_INCREMENT columns are kept as
// logged), foreign keys were checked on the source (a change that cascades
// turns them on for itself), strings are bytes, and the triggers pitcrew
// guarded do not fire (they already did on the source).
var Session = []string{
	"SET time_zone = '+00:00'",
	"SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
	"SET foreign_key_checks = 0",
	"SET NAMES binary",
	stored.SessionMarker,
}

// The session's foreign_key_checks around a change that cascades.
const (
	fkChecksOn  = "SET foreign_key_checks = 1"
	fkChecksOff = "SET foreign_key_checks = 0"
)

// Executor applies transactions to one target.
type Executor struct {
	cfg    Config
	db     *sql.DB
	schema *schema.Tracker
	// plans caches the mapping of a binlog table onto a target definition
	// (the assembler reuses a Table while its table map stands; the
	// tracker replaces a definition after DDL).
	plans   map[planKey]*plan
	plansMu sync.Mutex // lanes and the dispatcher share the cache (and versioned)
	// versioned: whether the table of a definition is system-versioned on
	// the target (refuseVersioned).
	versioned map[*schema.Table]bool
	// idempotent: rows may already be in the state a change leads to (the
	// window after a resumed full load, whose later chunks were copied from
	// a newer snapshot). INSERT becomes REPLACE, UPDATE becomes REPLACE of
	// the after image, DELETE may find nothing. Set by the syncer.
	idempotent bool
	// packet is the target's max_allowed_packet as last read: statements
	// and round trips are cut to fit it (stmts).
	packet atomic.Int64
}

// SetIdempotent switches the idempotent window on or off.
func (e *Executor) SetIdempotent(on bool) { e.idempotent = on }

// Open connects to the target; it writes nothing.
func Open(ctx context.Context, cfg Config) (*Executor, error) {
	cfg.Default()
	db, err := conn.Open(cfg.Target, conn.Options{Init: Session, FoundRows: true, Interpolate: true, Multi: true})
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx, db, "target", cfg.Target); err != nil {
		db.Close()
		return nil, err
	}
	e := &Executor{cfg: cfg, db: db, schema: schema.NewTracker(db)}
	var packet int64
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		db.Close()
		return nil, fmt.Errorf("target %s: reading max_allowed_packet: %w", cfg.Target, err)
	}
	e.packet.Store(packet)
	return e, nil
}

// DB is the target pool (for reading state).
func (e *Executor) DB() *sql.DB { return e.db }

// Close closes the pool.
func (e *Executor) Close() error { return e.db.Close() }

// ErrDiverged means the target does not hold what the source's change
// expects: a row to update or delete is missing.
var ErrDiverged = errors.New("target diverged from source")

// ApplyRows applies row-only transactions in one target transaction that
// also records after as the channel's position.
func (e *Executor) ApplyRows(ctx context.Context, batch []*txn.Txn, after gtid.Set) error {
	return e.ApplyRowsRecord(ctx, batch, e.progressRecord(after))
}

// progressRecord writes after as the channel's position; after a lost
// reply, the progress row tells whether it landed.
func (e *Executor) progressRecord(after gtid.Set) Record {
	q, args := e.cfg.Progress.WriteSQL(e.cfg.Channel, e.cfg.Flavor, after.String())
	return Record{SQL: q, Args: args, Landed: func(ctx context.Context) (bool, error) { return e.committed(ctx, after) }}
}

// Record is the bookkeeping write that commits with a batch: the channel's
// progress row, or a lane's row (checkpoint.Lanes).
type Record struct {
	SQL  string
	Args []any
	// Landed tells, after a failure whose outcome is unknown (a lost
	// COMMIT reply), whether the batch committed after all.
	Landed func(ctx context.Context) (bool, error)
}

// ApplyRowsRecord applies row-only transactions in one target transaction
// that also runs rec. It may run on several goroutines at once (lanes).
func (e *Executor) ApplyRowsRecord(ctx context.Context, batch []*txn.Txn, rec Record) error {
	for _, t := range batch {
		if err := refuse(t); err != nil {
			return err
		}
	}
	label := fmt.Sprintf("GTIDs %s..%s", batch[0].GTID, batch[len(batch)-1].GTID)
	return e.applyEvents(ctx, label, func(yield func(string, txn.Event) error) error {
		for _, t := range batch {
			for _, ev := range t.Events {
				if err := yield(t.GTID, ev); err != nil {
					return err
				}
			}
		}
		return nil
	}, rec, nil)
}

// Events yields the row events of a target transaction in order, each with
// its source GTID. It may be called again (a retry starts over).
type Events func(yield func(gtid string, ev txn.Event) error) error

// ApplyStream applies one source transaction whose events are decoded as
// they are applied (one too big to hold decoded), in one target
// transaction that also records after as the channel's position. Memory
// stays bounded: statements go out in 1 MiB round trips and the net
// changes are flushed every compactBound rows. A DDL first (a large
// CREATE TABLE ... SELECT) runs as ApplyDDL runs it, before its rows.
func (e *Executor) ApplyStream(ctx context.Context, gtidStr string, each Events, before, after gtid.Set, mayBeDone bool) error {
	d := &ddlStep{gtid: gtidStr, before: before, mayBeDone: mayBeDone}
	return e.applyEvents(ctx, "GTID "+gtidStr, func(yield func(string, txn.Event) error) error {
		return each(func(g string, ev txn.Event) error {
			if err := refuseEvent(g, ev); err != nil {
				return err
			}
			return yield(g, ev)
		})
	}, e.progressRecord(after), d)
}

// refuseVersioned stops at a row change on a system-versioned table (one
// created on the target by hand, or by CREATE TABLE ... LIKE a versioned
// table): through SQL its history rows would differ from the source's.
// Asked once per definition.
func (e *Executor) refuseVersioned(ctx context.Context, def *schema.Table) error {
	e.plansMu.Lock()
	v, ok := e.versioned[def]
	e.plansMu.Unlock()
	if !ok {
		var kind string
		err := e.db.QueryRowContext(ctx, "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", def.Schema, def.Name).Scan(&kind)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading the type of %s.%s on the target: %w", def.Schema, def.Name, err)
		}
		v = kind == "SYSTEM VERSIONED"
		e.plansMu.Lock()
		if e.versioned == nil || len(e.versioned) > 4096 {
			e.versioned = map[*schema.Table]bool{}
		}
		e.versioned[def] = v
		e.plansMu.Unlock()
	}
	if v {
		return fmt.Errorf("%s.%s is system-versioned (WITH SYSTEM VERSIONING): pitcrew writes rows as SQL and cannot write its history rows (row_start/row_end) as the source logged them; exclude it (route: exclude: [%s.%s]) and copy it another way, or drop the versioning on both sides", def.Schema, def.Name, def.Schema, def.Name)
	}
	return nil
}

// compactBound bounds the net changes a compactor holds before it writes
// them out (a huge transaction would otherwise be held whole).
const compactBound = 50000

// applyEvents applies the events in one target transaction with rec. A
// statement the target refuses in a round trip of several, or among the net
// changes of several source transactions, is not known by itself: the
// attempt is rolled back and made once more one statement at a time,
// uncompacted, so the stop names the source transaction and the table.
func (e *Executor) applyEvents(ctx context.Context, label string, each Events, rec Record, ddl *ddlStep) error {
	return e.retry(ctx, rec.Landed, func() error {
		err := e.attempt(ctx, label, each, rec, ddl, false)
		var se *stmtError
		if errors.As(err, &se) && !se.placed && !conn.Retryable(err) {
			err = e.attempt(ctx, label, each, rec, ddl, true)
		}
		return err
	})
}

// attempt is one try at applyEvents; single sends each statement alone.
func (e *Executor) attempt(ctx context.Context, label string, each Events, rec Record, ddl *ddlStep, single bool) error {
	c, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	committed := false
	defer func() {
		if !committed {
			// A broken connection fails here too; the driver then
			// discards it instead of returning it to the pool.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = c.ExecContext(rctx, "ROLLBACK")
			_, _ = c.ExecContext(rctx, fkChecksOff) // a cascade cut off half-way
			cancel()
		}
	}()
	// BEGIN, the rows and the progress row go in as few round trips as
	// the statements' size allows; COMMIT alone after them.
	b := &stmts{c: c, packet: &e.packet, single: single}
	if err := b.add(ctx, "BEGIN", nil, -1, stmtRef{what: "BEGIN"}); err != nil {
		return err
	}
	var cb *compactor
	if !single && !e.cfg.NoCompact && !e.idempotent && e.cfg.Resolver == nil {
		cb = newCompactor()
	}
	first := true
	err = each(func(g string, ev txn.Event) error {
		opens := first
		first = false
		if q := ev.Query; q != nil && !q.Statement && ddl != nil && opens {
			return e.runDDL(ctx, ddl, q)
		}
		if ev.Rows == nil {
			return fmt.Errorf("GTID %s: a statement inside a row transaction: set binlog_format=ROW on the source", g)
		}
		if err := e.applyRows(ctx, c, b, cb, g, ev.Rows); err != nil {
			return err
		}
		if cb != nil && cb.n > compactBound {
			if err := cb.flush(ctx, b); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cb != nil {
		if err := cb.flush(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	if err := b.add(ctx, rec.SQL, rec.Args, -1, stmtRef{what: "writing the progress row", db: conn.QuoteName(e.cfg.Progress.Schema)}); err != nil {
		return err
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	// COMMIT is not cancelled with ctx: a COMMIT cut off half-way would
	// leave the caller unsure whether the batch landed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := c.ExecContext(cctx, "COMMIT"); err != nil {
		return err
	}
	committed = true
	return nil
}

func (e *Executor) applyRows(ctx context.Context, tx dbtx, b *stmts, cb *compactor, gtidStr string, rc *txn.RowChange) error {
	def, err := e.schema.Table(ctx, rc.Table.Schema, rc.Table.Name)
	if err != nil {
		return fmt.Errorf("GTID %s: %w", gtidStr, err)
	}
	if err := e.refuseVersioned(ctx, def); err != nil {
		return fmt.Errorf("GTID %s: %w", gtidStr, err)
	}
	if err := checkImages(rc, def); err != nil {
		return fmt.Errorf("GTID %s: %w", gtidStr, err)
	}
	p, err := e.planFor(rc.Table, def)
	if err != nil {
		// The target's definition may have changed under us (DDL run on
		// the target itself, as in bidirectional mode): read it again once.
		e.schema.Forget(rc.Table.Schema, rc.Table.Name)
		if def, err = e.schema.Table(ctx, rc.Table.Schema, rc.Table.Name); err == nil {
			p, err = newPlan(rc.Table, def)
		}
		if err != nil {
			return fmt.Errorf("GTID %s: %w", gtidStr, err)
		}
	}
	if len(p.unsigned) > 0 {
		p.fixSigns(rc.Rows, rc.Table.Types)
	}
	if len(p.pads) > 0 {
		p.padBinary(rc.Rows)
	}
	wrap := func(err error) error {
		return fmt.Errorf("GTID %s: %s on %s: %w", gtidStr, rc.Kind, rc.Table.QualifiedName(), err)
	}
	// A change to a table that cascading foreign keys reference runs with
	// foreign_key_checks=1, as a native replica runs it, so the target
	// changes the rows the source's cascade changed (they are not in the
	// binlog). Whatever the batch folded so far is written first: the
	// cascade must meet the rows as the source's did.
	cascade := def.Cascades && !rc.NoFKChecks
	if cascade && cb != nil {
		if err := cb.flush(ctx, b); err != nil {
			return err
		}
	}
	if e.idempotent || e.cfg.Resolver != nil {
		// Statement by statement: these paths read the target as they go.
		if err := b.flush(ctx); err != nil {
			return err
		}
		tx = textTx{dbtx: tx, packet: &e.packet}
		// Idempotent inserts and updates are REPLACEs, whose delete half
		// would cascade: only a delete cascades in that window.
		if cascade && (e.cfg.Resolver != nil || rc.Kind == txn.Delete) {
			if _, err := tx.ExecContext(ctx, fkChecksOn); err != nil {
				return wrap(err)
			}
			defer func() { _, _ = tx.ExecContext(ctx, fkChecksOff) }()
		}
	}
	if e.idempotent {
		if err := applyIdempotent(ctx, tx, rc, p); err != nil {
			return wrap(err)
		}
		return nil
	}
	if e.cfg.Resolver != nil {
		if err := e.applyResolving(ctx, tx, gtidStr, rc, p); err != nil {
			return wrap(err)
		}
		return nil
	}
	what := stmtRef{gtid: gtidStr, what: rc.Kind.String(), db: p.db, table: p.table}
	if cascade {
		if err := b.add(ctx, fkChecksOn, nil, -1, what); err != nil {
			return err
		}
	} else if cb != nil && p.foldable {
		if cb.add(p, rc) {
			return nil
		}
		// An update of a key: what came before goes first, then row by row.
		if err := cb.flushTable(ctx, b, p.table); err != nil {
			return err
		}
	}
	if err := p.addRows(ctx, b, rc, what); err != nil {
		return err
	}
	if cascade {
		return b.add(ctx, fkChecksOff, nil, -1, what)
	}
	return nil
}

// addRows adds a row change's statements to b, row by row (a multi-row
// INSERT for inserts).
func (p *plan) addRows(ctx context.Context, b *stmts, rc *txn.RowChange, what stmtRef) error {
	switch rc.Kind {
	case txn.Insert:
		for chunk := range chunks(rc.Rows, p.insertsPer()) {
			if err := b.addSQL(ctx, func(w *sqlText) { p.writeInsert(w, chunk) }, -1, what); err != nil {
				return err
			}
		}
	case txn.Update:
		for i := 0; i+1 < len(rc.Rows); i += 2 {
			if err := b.addSQL(ctx, func(w *sqlText) { p.writeUpdate(w, rc.Rows[i], rc.Rows[i+1]) }, 1, what); err != nil {
				return err
			}
		}
	case txn.Delete:
		for _, row := range rc.Rows {
			if err := b.addSQL(ctx, func(w *sqlText) { p.writeDelete(w, row) }, 1, what); err != nil {
				return err
			}
		}
	}
	return nil
}

type planKey struct {
	bt  *txn.Table
	def *schema.Table
}

func (e *Executor) planFor(bt *txn.Table, def *schema.Table) (*plan, error) {
	k := planKey{bt, def}
	e.plansMu.Lock()
	defer e.plansMu.Unlock()
	if p, ok := e.plans[k]; ok {
		return p, nil
	}
	p, err := newPlan(bt, def)
	if err != nil {
		return nil, err
	}
	if e.plans == nil || len(e.plans) > 4096 {
		e.plans = map[planKey]*plan{}
	}
	e.plans[k] = p
	return p, nil
}

// checkImages accepts partial images only when what is missing is generated
// on the target (MySQL does not log hidden generated columns).
func checkImages(rc *txn.RowChange, def *schema.Table) error {
	for _, skipped := range rc.Skipped {
		for _, i := range skipped {
			if rc.Table.Columns == nil && i < len(def.Columns) && def.Columns[i].Generated {
				continue
			}
			return fmt.Errorf("%s logged without a full row image: set binlog_row_image=FULL on the source", rc.Table.QualifiedName())
		}
	}
	return nil
}

// retry runs fn until it succeeds, fails for good, or the retries run out.
// After a transient failure it first asks the progress row whether the
// previous attempt committed after all (a COMMIT whose reply was lost).
func (e *Executor) retry(ctx context.Context, landed func(context.Context) (bool, error), fn func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if !conn.Retryable(err) || attempt >= e.cfg.Retries {
			return err
		}
		e.cfg.Logger.Warn("target transaction failed; rolled back, retrying", "component", "apply", "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		if done, cerr := landed(ctx); cerr == nil && done {
			return nil
		}
	}
}

func (e *Executor) committed(ctx context.Context, after gtid.Set) (bool, error) {
	row, ok, err := e.cfg.Progress.Load(ctx, e.db, e.cfg.Channel)
	if err != nil || !ok {
		return false, err
	}
	have, err := row.Set()
	if err != nil {
		return false, err
	}
	return have.Contains(after) && row.PendingDDL == "", nil
}

// applyIdempotent makes each row what the change leads to, whatever it was.
func applyIdempotent(ctx context.Context, tx dbtx, rc *txn.RowChange, p *plan) error {
	exec := func(q string, args []any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	switch rc.Kind {
	case txn.Insert:
		stmts, args := p.inserts(rc.Rows)
		for i, q := range stmts {
			if err := exec("REPLACE"+strings.TrimPrefix(q, "INSERT"), args[i]); err != nil {
				return err
			}
		}
	case txn.Update:
		for i := 0; i+1 < len(rc.Rows); i += 2 {
			before, after := rc.Rows[i], rc.Rows[i+1]
			if q, a := p.delete(before); !p.sameKey(before, after) {
				if err := exec(q, a); err != nil {
					return err
				}
			}
			q, a := p.insertOne(after)
			if err := exec("REPLACE"+strings.TrimPrefix(q, "INSERT"), a); err != nil {
				return err
			}
		}
	case txn.Delete:
		for _, before := range rc.Rows {
			q, a := p.delete(before)
			if err := exec(q, a); err != nil {
				return err
			}
		}
	}
	return nil
}
