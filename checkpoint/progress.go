package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Progress is the progress table on the target: one row per channel with
// the executed GTID set of everything applied so far. Every applied target
// transaction updates it before COMMIT.
//
// DDL cannot share a transaction with a row write, so it is bracketed:
// MarkDDL records the DDL's GTID as pending (committed), the DDL runs, then
// the position moves past it and the mark clears in one transaction. After a
// crash a set mark says the DDL may or may not have run, and re-applying it
// may report "already done" errors that are then safe to accept.
type Progress struct {
	Schema string // default _pitcrew
	Table  string // default progress
}

// InternalMarker starts the DDL pitcrew runs for itself: a stream that
// carries it (a chain, or the reverse direction) never applies it.
const InternalMarker = "/* pitcrew internal */ "

// ProgressRow is one channel's record on the target.
type ProgressRow struct {
	Flavor     string
	GTIDSet    string
	PendingDDL string // GTID of a DDL that may have run without being recorded
}

// Set is the row's applied set, parsed.
func (r ProgressRow) Set() (gtid.Set, error) { return gtid.Parse(r.Flavor, r.GTIDSet) }

func (p Progress) name() string { return conn.QuoteName(p.Schema) + "." + conn.QuoteName(p.Table) }

// Ensure creates the schema and table if missing.
func (p Progress) Ensure(ctx context.Context, db *sql.DB) error {
	stmts := []string{
		InternalMarker + "CREATE DATABASE IF NOT EXISTS " + conn.QuoteName(p.Schema),
		InternalMarker + "CREATE TABLE IF NOT EXISTS " + p.name() + ` (
  channel     VARBINARY(64) NOT NULL PRIMARY KEY,
  flavor      VARBINARY(16) NOT NULL,
  gtid_set    LONGBLOB NOT NULL COMMENT 'executed GTID set of everything applied',
  pending_ddl VARBINARY(255) NOT NULL DEFAULT '' COMMENT 'GTID of a DDL started but not yet recorded',
  updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB COMMENT='pitcrew: applied position per channel, written atomically with the data'`,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("creating progress table %s on the target: %w%s", p.name(), err, p.grantHint(err))
		}
	}
	return nil
}

// grantHint is the fix for a privilege error on pitcrew's own schema.
func (p Progress) grantHint(err error) string {
	if !conn.Privilege(err) {
		return ""
	}
	return ": GRANT ALL ON " + conn.QuoteName(p.Schema) + ".* TO the target user (pitcrew keeps its position there, written with the data)"
}

// Load reads the channel's row; ok is false when there is none (or no table).
func (p Progress) Load(ctx context.Context, db *sql.DB, channel string) (row ProgressRow, ok bool, err error) {
	err = db.QueryRowContext(ctx, "SELECT flavor, gtid_set, pending_ddl FROM "+p.name()+" WHERE channel = ?", channel).
		Scan(&row.Flavor, &row.GTIDSet, &row.PendingDDL)
	switch {
	case errors.Is(err, sql.ErrNoRows), conn.IsMissingTable(err):
		return ProgressRow{}, false, nil
	case err != nil:
		return ProgressRow{}, false, fmt.Errorf("reading progress of channel %q from the target: %w%s", channel, err, p.grantHint(err))
	}
	return row, true, nil
}

// Execer is a *sql.Tx or *sql.Conn.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Write records the channel's position inside the caller's transaction and
// clears any pending DDL mark.
func (p Progress) Write(ctx context.Context, ex Execer, channel, flavor, gtidSet string) error {
	q, args := p.WriteSQL(channel, flavor, gtidSet)
	_, err := ex.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("writing progress of channel %q: %w", channel, err)
	}
	return nil
}

// WriteSQL is the statement Write runs, for callers that send it with
// others in one round trip (inside their transaction).
func (p Progress) WriteSQL(channel, flavor, gtidSet string) (string, []any) {
	return "INSERT INTO " + p.name() + " (channel, flavor, gtid_set, pending_ddl) VALUES (?, ?, ?, '')" +
		" ON DUPLICATE KEY UPDATE flavor = VALUES(flavor), gtid_set = VALUES(gtid_set), pending_ddl = ''", []any{channel, flavor, gtidSet}
}

// MarkDDL records, before a DDL runs, that it may be about to run.
func (p Progress) MarkDDL(ctx context.Context, ex Execer, channel, flavor, gtidSet, ddlGTID string) error {
	_, err := ex.ExecContext(ctx, "INSERT INTO "+p.name()+" (channel, flavor, gtid_set, pending_ddl) VALUES (?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE pending_ddl = VALUES(pending_ddl)",
		channel, flavor, gtidSet, ddlGTID)
	if err != nil {
		return fmt.Errorf("marking DDL %s pending for channel %q: %w", ddlGTID, channel, err)
	}
	return nil
}

// Delete removes the channel's row (an explicit reset).
func (p Progress) Delete(ctx context.Context, db *sql.DB, channel string) error {
	_, err := db.ExecContext(ctx, "DELETE FROM "+p.name()+" WHERE channel = ?", channel)
	if conn.IsMissingTable(err) {
		return nil
	}
	return err
}

// Lanes are the rows parallel apply lanes write instead of the channel's
// progress row (one lane per row, so lanes never wait on each other's
// row). A lane's row holds the watermark it saw at its last commit (every
// source transaction up to it was committed) and every batch the lane
// committed beyond that watermark, as (before, after) positions. The
// channel's applied set is the union: the highest watermark, extended by
// the batches that continue it, plus the batches still beyond it.
func (p Progress) lanesName() string {
	return conn.QuoteName(p.Schema) + "." + conn.QuoteName(LanesTable(p.Table))
}

// LanesTable is the name of the lanes table beside a progress table.
func LanesTable(progressTable string) string { return progressTable + "_lanes" }

// LaneRange is one committed batch: the position before it and after it.
type LaneRange struct{ Before, After string }

// LaneRow is one lane's record.
type LaneRow struct {
	Lane      int
	Flavor    string
	Watermark string
	Done      []LaneRange
}

// EnsureLanes creates the lanes table if missing.
func (p Progress) EnsureLanes(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, InternalMarker+"CREATE TABLE IF NOT EXISTS "+p.lanesName()+` (
  channel   VARBINARY(64) NOT NULL,
  lane      INT NOT NULL,
  flavor    VARBINARY(16) NOT NULL,
  watermark LONGBLOB NOT NULL COMMENT 'every source transaction up to here is applied',
  done      LONGBLOB NOT NULL COMMENT 'batches this lane applied beyond the watermark: before>after per line',
  PRIMARY KEY (channel, lane)
) ENGINE=InnoDB COMMENT='pitcrew: parallel apply lanes, written atomically with the data'`)
	if err != nil {
		return fmt.Errorf("creating lanes table %s on the target: %w", p.lanesName(), err)
	}
	return nil
}

// LaneSQL is the statement a lane runs inside its batch's transaction.
func (p Progress) LaneSQL(channel string, lane int, flavor, watermark string, done []LaneRange) (string, []any) {
	return "INSERT INTO " + p.lanesName() + " (channel, lane, flavor, watermark, done) VALUES (?, ?, ?, ?, ?)" +
			" ON DUPLICATE KEY UPDATE flavor = VALUES(flavor), watermark = VALUES(watermark), done = VALUES(done)",
		[]any{channel, lane, flavor, watermark, encodeRanges(done)}
}

// LoadLanes reads the channel's lane rows (none when there is no table).
func (p Progress) LoadLanes(ctx context.Context, db *sql.DB, channel string) ([]LaneRow, error) {
	rows, err := db.QueryContext(ctx, "SELECT lane, flavor, watermark, done FROM "+p.lanesName()+" WHERE channel = ? ORDER BY lane", channel)
	if conn.IsMissingTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the lanes of channel %q from the target: %w", channel, err)
	}
	defer rows.Close()
	var out []LaneRow
	for rows.Next() {
		var r LaneRow
		var done string
		if err := rows.Scan(&r.Lane, &r.Flavor, &r.Watermark, &done); err != nil {
			return nil, err
		}
		r.Done = decodeRanges(done)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteLanes removes the channel's lane rows (an explicit reset).
func (p Progress) DeleteLanes(ctx context.Context, db *sql.DB, channel string) error {
	_, err := db.ExecContext(ctx, "DELETE FROM "+p.lanesName()+" WHERE channel = ?", channel)
	if conn.IsMissingTable(err) {
		return nil
	}
	return err
}

func encodeRanges(rs []LaneRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(r.Before + ">" + r.After)
	}
	return b.String()
}

func decodeRanges(s string) []LaneRange {
	var out []LaneRange
	for _, line := range strings.Split(s, "\n") {
		if before, after, ok := strings.Cut(line, ">"); ok {
			out = append(out, LaneRange{Before: before, After: after})
		}
	}
	return out
}
