package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Conflict is a row change that does not fit the target row: an UPDATE or
// DELETE whose before image no longer matches, or an INSERT whose key is
// taken. Images are aligned with Columns (the written columns); Current is
// nil when the target has no row with the key.
type Conflict struct {
	GTID                   string
	Schema, Table          string
	Kind                   txn.Kind
	Columns, Key           []string // target column names; Key: the identifying ones
	Before, After, Current []any
	Reason                 string
}

// Resolution is what a Resolver decided.
type Resolution int

// Resolutions.
const (
	TakeIncoming Resolution = iota + 1 // make the target row what the source says
	KeepTarget                         // leave the target row
	ParkIt                             // leave it, for a person to decide
)

// Resolver turns conflicts from errors into decisions (bidirectional
// mode). It records every conflict inside the target transaction that
// resolves it, so the ledger and the data commit together.
type Resolver interface {
	// Column is the column that alone detects conflicts on the table
	// (a version or timestamp), or "" to compare the whole before image.
	Column(schema, table string) string
	Resolve(c Conflict) (r Resolution, policy string)
	Record(ctx context.Context, ex checkpoint.Execer, c Conflict, r Resolution, policy string) error
}

// applyResolving applies one rows event with conflict detection.
func (e *Executor) applyResolving(ctx context.Context, tx dbtx, gtidStr string, rc *txn.RowChange, p *plan) error {
	detect := e.cfg.Resolver.Column(rc.Table.Schema, rc.Table.Name)
	base := Conflict{GTID: gtidStr, Schema: rc.Table.Schema, Table: rc.Table.Name, Kind: rc.Kind, Columns: p.targetNames, Key: p.keyTargetNames()}
	switch rc.Kind {
	case txn.Insert:
		stmts, args := p.inserts(rc.Rows)
		if len(stmts) == 1 {
			// A failed statement (duplicate key) is rolled back alone;
			// the transaction goes on.
			if _, err := tx.ExecContext(ctx, stmts[0], args[0]...); err == nil {
				return nil
			} else if conn.Code(err) != 1062 {
				return err
			}
		}
		// A key is taken (or the batch is large): row by row.
		for _, row := range rc.Rows {
			q, a := p.insertOne(row)
			_, err := tx.ExecContext(ctx, q, a...)
			if err == nil {
				continue
			}
			if conn.Code(err) != 1062 {
				return err
			}
			c := base
			c.After, c.Reason = p.image(row), "duplicate key"
			if err := e.conflict(ctx, tx, p, c, row, nil, row); err != nil {
				return err
			}
		}
	case txn.Update:
		for i := 0; i+1 < len(rc.Rows); i += 2 {
			before, after := rc.Rows[i], rc.Rows[i+1]
			q, a := p.updateMatching(before, after, detect)
			n, err := affected(ctx, tx, q, a)
			if err != nil {
				return err
			}
			if n == 1 {
				continue
			}
			c := base
			c.Before, c.After, c.Reason = p.image(before), p.image(after), "row differs or is missing"
			if err := e.conflict(ctx, tx, p, c, before, before, after); err != nil {
				return err
			}
		}
	case txn.Delete:
		for _, before := range rc.Rows {
			q, a := p.deleteMatching(before, detect)
			n, err := affected(ctx, tx, q, a)
			if err != nil {
				return err
			}
			if n == 1 {
				continue
			}
			c := base
			c.Before, c.Reason = p.image(before), "row differs or is missing"
			if err := e.conflict(ctx, tx, p, c, before, before, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// conflict reads the target's row by keyRow's key, asks the resolver, acts,
// and records the conflict.
func (e *Executor) conflict(ctx context.Context, tx dbtx, p *plan, c Conflict, keyRow, before, after []any) error {
	cur, err := p.current(ctx, tx, keyRow)
	if err != nil {
		return fmt.Errorf("GTID %s: reading the conflicting row of %s.%s: %w", c.GTID, c.Schema, c.Table, err)
	}
	c.Current = cur
	res, policy := e.cfg.Resolver.Resolve(c)
	if res == TakeIncoming {
		switch {
		case after == nil: // delete
			if cur != nil {
				q, a := p.deleteByKey(keyRow)
				if _, err := tx.ExecContext(ctx, q, a...); err != nil {
					return err
				}
			}
		case cur == nil:
			q, a := p.insertOne(after)
			if _, err := tx.ExecContext(ctx, q, a...); err != nil {
				return fmt.Errorf("GTID %s: %s.%s: re-inserting the source's row: %w", c.GTID, c.Schema, c.Table, err)
			}
		default:
			q, a := p.update(keyRow, after)
			if _, err := tx.ExecContext(ctx, q, a...); err != nil {
				return err
			}
		}
	}
	return e.cfg.Resolver.Record(ctx, tx, c, res, policy)
}

func affected(ctx context.Context, tx dbtx, q string, args []any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// image returns the written columns of a row, aligned with targetNames.
func (p *plan) image(row []any) []any {
	out := make([]any, len(p.cols))
	for j, i := range p.cols {
		out[j] = row[i]
	}
	return out
}

func (p *plan) keyTargetNames() []string {
	out := make([]string, len(p.keyNames))
	for i, n := range p.keyNames {
		out[i] = strings.ReplaceAll(strings.Trim(n, "`"), "``", "`")
	}
	return out
}

func (p *plan) insertOne(row []any) (string, []any) {
	stmts, args := p.inserts([][]any{row})
	return stmts[0], args[0]
}

// updateMatching updates only when the target row still matches the
// before image (all written columns, or just the detect column).
func (p *plan) updateMatching(before, after []any, detect string) (string, []any) {
	q, args := p.update(before, after)
	return p.match(q, args, before, detect)
}

func (p *plan) deleteMatching(before []any, detect string) (string, []any) {
	q, args := p.delete(before)
	return p.match(q, args, before, detect)
}

func (p *plan) match(q string, args []any, before []any, detect string) (string, []any) {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(q, " LIMIT 1"))
	for j, i := range p.cols {
		if detect != "" && !strings.EqualFold(p.targetNames[j], detect) {
			continue
		}
		b.WriteString(" AND " + p.names[j] + " <=> ?")
		args = append(args, before[i])
	}
	if p.nullSafe {
		b.WriteString(" LIMIT 1")
	}
	return b.String(), args
}

func (p *plan) deleteByKey(keyRow []any) (string, []any) { return p.delete(keyRow) }

// current reads the target row with keyRow's key, locked, or nil.
func (p *plan) current(ctx context.Context, tx dbtx, keyRow []any) ([]any, error) {
	var w sqlText
	w.str("SELECT " + strings.Join(p.names, ",") + " FROM " + p.table)
	p.where(&w, keyRow)
	w.str(" FOR UPDATE")
	rows, err := tx.QueryContext(ctx, string(w.b), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]any, len(p.cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	return vals, nil
}
