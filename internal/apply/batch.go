package apply

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// dbtx is what a target transaction runs statements on: a connection
// inside BEGIN ... COMMIT.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// stmts sends many row statements in one round trip (multi-statement
// query) and still checks each one's affected rows: round trips, not the
// server, bound a serial applier on loopback.
type stmts struct {
	c      *sql.Conn
	sql    strings.Builder
	args   []any
	expect []expectation
}

// expectation is what one statement must do: rows < 0 means any count.
type expectation struct {
	rows int64
	what string // for the error: "update on db.t"
}

// maxBatchBytes bounds one multi-statement query (well under the default
// 16 MiB max_allowed_packet).
const maxBatchBytes = 1 << 20

func (s *stmts) add(ctx context.Context, q string, args []any, rows int64, what string) error {
	if s.sql.Len() > 0 {
		s.sql.WriteString(";\n")
	}
	s.sql.WriteString(q)
	s.args = append(s.args, args...)
	s.expect = append(s.expect, expectation{rows: rows, what: what})
	if s.sql.Len()+16*len(s.args) > maxBatchBytes {
		return s.flush(ctx)
	}
	return nil
}

func (s *stmts) flush(ctx context.Context) error {
	if len(s.expect) == 0 {
		return nil
	}
	affected, err := multiExec(ctx, s.c, s.sql.String(), s.args)
	expect := s.expect
	s.sql.Reset()
	s.args, s.expect = s.args[:0], nil
	if err != nil {
		return err
	}
	if len(affected) != len(expect) {
		return fmt.Errorf("the target ran %d of %d statements", len(affected), len(expect))
	}
	for i, e := range expect {
		if e.rows >= 0 && affected[i] != e.rows {
			return fmt.Errorf("%s: %w: the row to change is missing on the target (%d rows matched)", e.what, ErrDiverged, affected[i])
		}
	}
	return nil
}

// multiExec runs a multi-statement query and returns each statement's
// affected rows (go-sql-driver exposes them only on the driver result).
func multiExec(ctx context.Context, c *sql.Conn, q string, args []any) ([]int64, error) {
	var affected []int64
	err := c.Raw(func(dc any) error {
		nvs := make([]driver.NamedValue, len(args))
		checker, _ := dc.(driver.NamedValueChecker)
		for i, a := range args {
			nvs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			if checker != nil {
				if err := checker.CheckNamedValue(&nvs[i]); err != nil {
					return err
				}
			}
		}
		ex, ok := dc.(driver.ExecerContext)
		if !ok {
			return fmt.Errorf("driver connection cannot exec")
		}
		res, err := ex.ExecContext(ctx, q, nvs)
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
