// DDL: how a statement from the source runs on the target (in the source
// session's context, marked, checked against the catalogue, retried after a
// crash), and the refusals of what cannot be applied.

package apply

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	ddlsql "github.com/pitcrew/pitcrew/internal/mysql/ddl"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// ddlStep is the DDL a row transaction may open (CREATE TABLE ... SELECT
// in row format: the CREATE, then the rows it selected). It runs on a
// connection of its own under the pending mark, before the rows, which
// then commit with the record that clears the mark: a crash between the
// two leaves the mark, and the next attempt accepts "already exists"
// from the DDL and applies the rows, once.
type ddlStep struct {
	gtid      string
	before    gtid.Set
	mayBeDone bool // the DDL may have run already (a mark left by a crash, or an earlier attempt)
}

var mysqlOnlyAuth = regexp.MustCompile(`(?i)\b(caching_sha2_password|sha256_password)\b`)

// ddlHint names the likely cause of a DDL a target refused, where it is
// a MySQL statement a MariaDB target cannot hold.
func ddlHint(text string, err error) string {
	switch {
	case mysqlOnlyAuth.MatchString(text):
		return " (an account statement with MySQL 8's " + strings.ToLower(mysqlOnlyAuth.FindString(text)) + " plugin, which MariaDB does not have: create the account on the target by hand, IDENTIFIED VIA ed25519 or BY a password)"
	case conn.Code(err) == 4161:
		return " (a column type the target does not have, such as MySQL 9's VECTOR: create the table on the target with a type it has, or exclude the table)"
	}
	return ""
}

// runDDL marks the DDL pending, runs it and forgets the table
// definitions it may change. From the first attempt on, a retry accepts
// "already done".
func (e *Executor) runDDL(ctx context.Context, d *ddlStep, q *txn.Query) error {
	mayBeDone := d.mayBeDone
	d.mayBeDone = true
	defer e.schema.Invalidate()
	if err := e.cfg.Progress.MarkDDL(ctx, e.db, e.cfg.Channel, e.cfg.Flavor, d.before.String(), d.gtid); err != nil {
		return err
	}
	err := e.execDDL(ctx, q)
	if err != nil && mayBeDone && alreadyDone(err) {
		e.cfg.Logger.Warn("DDL was already applied before a restart; accepting", "gtid", d.gtid, "error", err)
		err = nil
	}
	if err != nil && conn.Privilege(err) {
		return fmt.Errorf("GTID %s: applying DDL %.200q: %w: the target user lacks a privilege the statement needs: grant it what the applier needs on each replicated database (GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON `db`.* TO the user, as preflight checks), or skip the statement explicitly (pitcrew skip --gtid %s)", d.gtid, q.Text, err, d.gtid)
	}
	if err != nil && !conn.Retryable(err) {
		return fmt.Errorf("GTID %s: applying DDL %.200q: %w%s; fix the target so the statement can run, or skip it (pitcrew skip --gtid %s, then do by hand what it should have done)", d.gtid, ddlsql.Redact(q.Text), err, ddlHint(q.Text, err), d.gtid)
	}
	if err == nil && len(q.Expect) > 0 {
		err = e.checkExpect(ctx, d.gtid, q)
	}
	if err == nil && e.cfg.AfterDDL != nil {
		if err = e.cfg.AfterDDL(ctx, q); err != nil && !conn.Retryable(err) {
			return fmt.Errorf("GTID %s: after DDL %.200q: %w", d.gtid, q.Text, err)
		}
	}
	return err
}

// checkExpect compares the target's catalogue with what a statement whose
// tables were named without the full parser should have left: a misread
// name would otherwise route or filter later changes wrongly, silently.
func (e *Executor) checkExpect(ctx context.Context, g string, q *txn.Query) error {
	for _, x := range q.Expect {
		var n int
		var err error
		what := "table " + x.Schema + "." + x.Table
		if x.Table == "" {
			what = "database " + x.Schema
			err = e.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", x.Schema).Scan(&n)
		} else {
			err = e.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", x.Schema, x.Table).Scan(&n)
		}
		if err != nil {
			return fmt.Errorf("GTID %s: checking the target after DDL %.200q: %w", g, ddlsql.Redact(q.Text), err)
		}
		if (n > 0) != x.Exists {
			state := "is missing"
			if !x.Exists {
				state = "is still there"
			}
			return fmt.Errorf("GTID %s: DDL %.200q ran on the target, but the %s %s (its names were read without the full parser, and read wrong): make the target match the source by hand, then pitcrew skip --gtid %s", g, ddlsql.Redact(q.Text), what, state, g)
		}
	}
	return nil
}

// ApplyDDL applies one DDL transaction and then records after. When
// mayBeDone is set (the progress row marked this DDL pending before a
// crash) errors that say the change is already there are accepted. A
// CREATE TABLE ... SELECT carries its rows after the DDL: they commit
// with the record (see ddlStep).
func (e *Executor) ApplyDDL(ctx context.Context, t *txn.Txn, before, after gtid.Set, mayBeDone bool) error {
	if err := refuse(t); err != nil {
		return err
	}
	d := &ddlStep{gtid: t.GTID, before: before, mayBeDone: mayBeDone}
	if len(t.Events) > 1 {
		return e.applyEvents(ctx, "GTID "+t.GTID, func(yield func(string, txn.Event) error) error {
			for _, ev := range t.Events {
				if err := yield(t.GTID, ev); err != nil {
					return err
				}
			}
			return nil
		}, e.progressRecord(after), d)
	}
	q := t.Events[0].Query
	landed := func(ctx context.Context) (bool, error) { return e.committed(ctx, after) }
	return e.retry(ctx, landed, func() error {
		if err := e.runDDL(ctx, d, q); err != nil {
			return err
		}
		return e.cfg.Progress.Write(ctx, e.db, e.cfg.Channel, e.cfg.Flavor, after.String())
	})
}

// execDDL runs q on a connection of its own with the source session's
// default database, then discards the connection.
func (e *Executor) execDDL(ctx context.Context, q *txn.Query) error {
	c, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// The session's default database and charset changed: never reuse it.
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		c.Close()
	}()
	// The source session's context, as mysqlbinlog replays it: the text's
	// character set, its sql_mode (ANSI_QUOTES, zero dates...), its zone.
	mapped := sessionOf(q.Session, true)
	for i, s := range sessionOf(q.Session, false) {
		_, err := c.ExecContext(ctx, s)
		if (conn.Code(err) == 1115 || conn.Code(err) == 1273) && mapped[i] != s {
			// A MySQL 8 collation the target (MariaDB) lacks.
			s = mapped[i]
			_, err = c.ExecContext(ctx, s)
		}
		if err != nil {
			return fmt.Errorf("source session context %q: %w", s, err)
		}
	}
	if q.Schema != "" {
		if _, err := c.ExecContext(ctx, "USE "+conn.QuoteName(q.Schema)); err != nil && conn.Code(err) != 1049 {
			return err
		}
	}
	text := q.Text
	if e.cfg.MarkDefinitions {
		text = stored.MarkDefinition(text, e.cfg.DDLPrefix)
	}
	_, err = c.ExecContext(ctx, e.cfg.DDLPrefix+text)
	return err
}

// alreadyDone reports errors that re-running an applied DDL produces.
func alreadyDone(err error) bool {
	switch conn.Code(err) {
	case 1007, // database exists
		1008, // database doesn't exist (DROP)
		1050, // table exists
		1051, // unknown table (DROP)
		1060, // duplicate column
		1061, // duplicate key name
		1091, // can't drop: doesn't exist
		1146, // table doesn't exist (RENAME, TRUNCATE after DROP)
		1360, // trigger doesn't exist
		1359, // trigger exists
		1304, // routine exists
		1305: // routine doesn't exist
		return true
	}
	return false
}

// errNoGTID refuses a transaction the engine cannot position.
var errNoGTID = errors.New("source transaction without GTID: turn GTIDs on at the source (MySQL gtid_mode=ON)")

// refuse rejects what cannot be applied exactly, naming the fix.
func refuse(t *txn.Txn) error {
	for _, ev := range t.Events {
		if err := refuseEvent(t.GTID, ev); err != nil {
			return err
		}
	}
	if t.GTID == "" {
		return errNoGTID
	}
	return nil
}

func refuseEvent(gtid string, ev txn.Event) error {
	if gtid == "" {
		return errNoGTID
	}
	if q := ev.Query; q != nil && q.Statement {
		return fmt.Errorf("GTID %s: statement-format event %.120q: set binlog_format=ROW on the source (globally and in every session)", gtid, ddlsql.Redact(q.Text))
	}
	if r := ev.Rows; r != nil && r.PartialJSON {
		return fmt.Errorf("GTID %s: partial JSON update on %s: set binlog_row_value_options='' on the source so full images are logged", gtid, r.Table.QualifiedName())
	}
	return nil
}

// sessionOf is the source session's context as statements; mapped: with
// the collations the target lacks replaced (collation).
func sessionOf(s txn.Session, mapped bool) []string {
	var out []string
	if s.HasCharset {
		c := s.Charset
		if mapped {
			c = [3]uint16{charset(c[0]), collation(c[1]), collation(c[2])}
		}
		out = append(out, fmt.Sprintf("SET @@session.character_set_client = %d, @@session.collation_connection = %d, @@session.collation_server = %d", c[0], c[1], c[2]))
	} else {
		out = append(out, "SET NAMES utf8mb4")
	}
	if s.HasSQLMode {
		out = append(out, fmt.Sprintf("SET @@session.sql_mode = %d", s.SQLMode))
	}
	if s.TimeZone != "" {
		out = append(out, "SET @@session.time_zone = '"+strings.ReplaceAll(s.TimeZone, "'", "''")+"'")
	}
	if s.Timestamp != 0 {
		// As a native replica does: a CREATE EVENT without STARTS starts
		// when it ran on the source, not when it is applied.
		out = append(out, fmt.Sprintf("SET @@session.timestamp = %d", s.Timestamp))
	}
	return out
}

// collation maps a collation number the source logged to one the target
// knows. MySQL 8 numbers its utf8mb4_0900_* collations 255-309 (255 is
// utf8mb4_0900_ai_ci, its default, in every session of a MySQL 8 client),
// which MariaDB does not have: replayed as they are, MySQL 8's DDL fails
// on MariaDB with "Unknown character set: '255'". They become
// utf8mb4_unicode_520_ci (246), the Unicode collation both servers have
// (0900 is UCA 9.0, 520 UCA 5.2), on a target that refuses the number
// (a MySQL 8 target takes it as logged).
func collation(id uint16) uint16 {
	if id >= 255 && id <= 309 {
		return 246
	}
	return id
}

// charset is collation for character_set_client, which MariaDB takes as
// the number of a character set's default collation only: utf8mb4's is
// utf8mb4_general_ci (45).
func charset(id uint16) uint16 {
	if collation(id) != id {
		return 45
	}
	return id
}
