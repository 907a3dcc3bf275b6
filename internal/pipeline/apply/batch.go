package apply

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// dbtx is what a target transaction runs statements on: a connection
// inside BEGIN ... COMMIT.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// stmts sends many row statements in one round trip (multi-statement
// query) and still checks each one's affected rows: round trips, not the
// server, bound a serial applier on loopback. Statements are interpolated
// here (conn.Interpolate), so the driver gets text without arguments: it
// would count the ? in a name such as `c?` as placeholders.
type stmts struct {
	c      *sql.Conn
	buf    []byte
	expect []expectation
	// packet is the target's max_allowed_packet as last read (shared by
	// the executor's connections); a query is at most packet-2 bytes.
	packet *atomic.Int64
	// single sends each statement alone: a failure then names it.
	single bool
}

// expectation is what one statement must do: rows < 0 means any count.
type expectation struct {
	rows int64
	ref  stmtRef
}

// stmtRef says what a target statement writes, for its errors.
type stmtRef struct {
	gtid  string // the source transaction; "" for net changes of several, and bookkeeping
	what  string // "insert", "net update", "writing the progress row"
	db    string // quoted target database
	table string // quoted target `db`.`table`; "" for bookkeeping
}

func (r stmtRef) String() string {
	s := r.what
	if r.table != "" {
		s += " on " + r.table
	}
	if r.gtid != "" {
		s = "GTID " + r.gtid + ": " + s
	}
	return s
}

// maxBatchBytes bounds one multi-statement query (well under the default
// 16 MiB max_allowed_packet).
const maxBatchBytes = 1 << 20

func (s *stmts) add(ctx context.Context, q string, args []any, rows int64, ref stmtRef) error {
	return s.addWith(ctx, func(buf []byte) ([]byte, error) { return conn.Interpolate(buf, q, args) }, rows, ref)
}

// addSQL adds the statement write writes, its values written as literals
// (the text add would make of the statement and its arguments).
func (s *stmts) addSQL(ctx context.Context, write func(w *sqlText), rows int64, ref stmtRef) error {
	return s.addWith(ctx, func(buf []byte) ([]byte, error) {
		w := sqlText{b: buf, lit: true}
		write(&w)
		return w.b, w.err
	}, rows, ref)
}

// addWith adds the statement text appends to the buffer.
func (s *stmts) addWith(ctx context.Context, text func(buf []byte) ([]byte, error), rows int64, ref stmtRef) error {
	start := len(s.buf)
	if start > 0 {
		s.buf = append(s.buf, ";\n"...)
	}
	var err error
	if s.buf, err = text(s.buf); err != nil {
		s.buf = s.buf[:start]
		return fmt.Errorf("%s: %w", ref, err)
	}
	if limit := s.limit(); len(s.buf) > limit && start > 0 {
		// What came before goes alone; this one starts the next query.
		next := s.buf[start+2:]
		s.buf = s.buf[:start]
		if err := s.flush(ctx); err != nil {
			return err
		}
		s.buf = append(s.buf[:0], next...)
	}
	if len(s.buf) > s.limit() {
		if err := s.tooLarge(ctx, ref); err != nil {
			return err
		}
	}
	s.expect = append(s.expect, expectation{rows: rows, ref: ref})
	if s.single || len(s.buf) > maxBatchBytes {
		return s.flush(ctx)
	}
	return nil
}

func (s *stmts) limit() int { return int(s.packet.Load()) - 2 }

// tooLarge is the statement alone in the buffer, over the limit last read:
// it reads the connection's max_allowed_packet again (an operator may have
// raised it) and refuses the statement if it is still too large.
func (s *stmts) tooLarge(ctx context.Context, ref stmtRef) error {
	n := len(s.buf)
	var packet int64
	if err := s.c.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		return fmt.Errorf("%s: reading the target's max_allowed_packet: %w", ref, err)
	}
	s.packet.Store(packet)
	if n <= s.limit() {
		return nil
	}
	s.buf = s.buf[:0]
	return &stmtError{ref: ref, placed: ref.gtid != "" || s.single, size: n, packet: int(packet)}
}

func (s *stmts) flush(ctx context.Context) error {
	if len(s.expect) == 0 {
		return nil
	}
	affected, err := multiExec(ctx, s.c, string(s.buf))
	expect := s.expect
	s.buf, s.expect = s.buf[:0], s.expect[:0]
	if err != nil {
		se := &stmtError{ref: expect[0].ref, err: err, placed: len(expect) == 1 && (expect[0].ref.gtid != "" || s.single)}
		if len(expect) > 1 {
			se.ref = stmtRef{what: fmt.Sprintf("one of %d statements (%s ... %s)", len(expect), expect[0].ref, expect[len(expect)-1].ref)}
		}
		if conn.Privilege(err) {
			se.user = currentUser(ctx, s.c)
		}
		return se
	}
	if len(affected) != len(expect) {
		return fmt.Errorf("the target ran %d of %d statements", len(affected), len(expect))
	}
	for i, e := range expect {
		if e.rows >= 0 && affected[i] != e.rows {
			// Net changes of several transactions: the replay names the one.
			return &stmtError{ref: e.ref, placed: e.ref.gtid != "" || s.single,
				err: fmt.Errorf("%w: the row to change is missing on the target (%d rows matched)", ErrDiverged, affected[i])}
		}
	}
	return nil
}

// textTx runs statements one at a time (the idempotent and resolving
// paths), interpolated by pitcrew as stmts does and checked against the
// target's max_allowed_packet the same way.
type textTx struct {
	dbtx
	packet *atomic.Int64
}

func (t textTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	text, err := t.text(ctx, q, args)
	if err != nil {
		return nil, err
	}
	return t.dbtx.ExecContext(ctx, text)
}

func (t textTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	text, err := t.text(ctx, q, args)
	if err != nil {
		return nil, err
	}
	return t.dbtx.QueryContext(ctx, text)
}

func (t textTx) text(ctx context.Context, q string, args []any) (string, error) {
	b, err := conn.Interpolate(nil, q, args)
	if err != nil || len(b) <= int(t.packet.Load())-2 {
		return string(b), err
	}
	var packet int
	rows, err := t.dbtx.QueryContext(ctx, "SELECT @@max_allowed_packet")
	if err == nil {
		if rows.Next() {
			err = rows.Scan(&packet)
		}
		rows.Close()
	}
	if err != nil {
		return "", fmt.Errorf("reading the target's max_allowed_packet: %w", err)
	}
	t.packet.Store(int64(packet))
	if len(b) <= packet-2 {
		return string(b), nil
	}
	return "", &stmtError{placed: true, size: len(b), packet: packet}
}

// multiExec runs a multi-statement query and returns each statement's
// affected rows (go-sql-driver exposes them only on the driver result).
func multiExec(ctx context.Context, c *sql.Conn, q string) ([]int64, error) {
	var affected []int64
	err := c.Raw(func(dc any) error {
		ex, ok := dc.(driver.ExecerContext)
		if !ok {
			return fmt.Errorf("driver connection cannot exec")
		}
		res, err := ex.ExecContext(ctx, q, nil)
		if err != nil {
			return err
		}
		r, ok := res.(mysql.Result)
		if !ok {
			return fmt.Errorf("driver result has no per-statement counts")
		}
		affected = r.AllRowsAffected()
		return nil
	})
	return affected, err
}
