package conflict

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Ledger is the conflicts table on a target node, in pitcrew's schema.
// Every conflict is written in the same target transaction that resolves
// it, so the ledger never misses or invents a resolution.
type Ledger struct {
	Schema string // default _pitcrew
}

// Entry is one conflict.
type Entry struct {
	ID       int64          `json:"id"`
	Channel  string         `json:"channel"`
	GTID     string         `json:"gtid"`
	Table    string         `json:"table"`
	Op       string         `json:"op"`
	Reason   string         `json:"reason"`
	Key      map[string]any `json:"key"`
	Source   map[string]any `json:"source_image"` // the incoming after image (before image for deletes)
	Target   map[string]any `json:"target_image"` // the target row at the time; nil when it had none
	Policy   string         `json:"policy"`
	Outcome  string         `json:"outcome"` // applied, kept-target, parked, resolved-source, resolved-target
	Created  time.Time      `json:"created"`
	Resolved *time.Time     `json:"resolved,omitempty"`
}

func (l Ledger) name() string { return conn.QuoteName(l.Schema) + ".`conflicts`" }

// Ensure creates the table when it is missing (CREATE ... IF NOT EXISTS
// would still write a binlog event at every start).
func (l Ledger) Ensure(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'conflicts'", l.Schema).Scan(&n); err == nil && n > 0 {
		return nil
	}
	for _, q := range []string{
		checkpoint.InternalMarker + "CREATE DATABASE IF NOT EXISTS " + conn.QuoteName(l.Schema),
		checkpoint.InternalMarker + "CREATE TABLE IF NOT EXISTS " + l.name() + ` (
  id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  channel      VARBINARY(64) NOT NULL,
  gtid         VARBINARY(128) NOT NULL,
  tbl          VARBINARY(200) NOT NULL,
  op           VARBINARY(8) NOT NULL,
  reason       VARBINARY(200) NOT NULL,
  row_key      LONGBLOB NOT NULL,
  source_image LONGBLOB NULL,
  target_image LONGBLOB NULL,
  policy       VARBINARY(16) NOT NULL,
  outcome      VARBINARY(20) NOT NULL,
  created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  resolved_at  TIMESTAMP(6) NULL,
  KEY (outcome)
) ENGINE=InnoDB COMMENT='pitcrew: every replication conflict and how it was resolved'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("creating the conflict ledger: %w", err)
		}
	}
	return nil
}

// Image turns aligned names and values into a JSON-friendly map: bytes
// that are not UTF-8 become "base64:...".
func Image(names []string, vals []any) map[string]any {
	if vals == nil {
		return nil
	}
	m := make(map[string]any, len(names))
	for i, n := range names {
		if i < len(vals) {
			m[n] = jsonValue(vals[i])
		}
	}
	return m
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return "base64:" + base64.StdEncoding.EncodeToString(x)
	case string:
		if utf8.ValidString(x) {
			return x
		}
		return "base64:" + base64.StdEncoding.EncodeToString([]byte(x))
	}
	return v
}

// Record writes e inside the caller's transaction.
func (l Ledger) Record(ctx context.Context, ex checkpoint.Execer, e Entry) error {
	key, _ := json.Marshal(e.Key)
	src, _ := json.Marshal(e.Source)
	tgt, _ := json.Marshal(e.Target)
	_, err := ex.ExecContext(ctx, "INSERT INTO "+l.name()+
		" (channel, gtid, tbl, op, reason, row_key, source_image, target_image, policy, outcome) VALUES (?,?,?,?,?,?,?,?,?,?)",
		e.Channel, e.GTID, e.Table, e.Op, e.Reason, key, src, tgt, e.Policy, e.Outcome)
	if err != nil {
		return fmt.Errorf("recording a conflict on %s in the ledger: %w", e.Table, err)
	}
	return nil
}

const columns = "id, channel, gtid, tbl, op, reason, row_key, source_image, target_image, policy, outcome, created_at, resolved_at"

// List returns the ledger's entries, oldest first; outcome "" lists all.
func (l Ledger) List(ctx context.Context, db *sql.DB, outcome string) ([]Entry, error) {
	q := "SELECT " + columns + " FROM " + l.name()
	var args []any
	if outcome != "" {
		q += " WHERE outcome = ?"
		args = append(args, outcome)
	}
	rows, err := db.QueryContext(ctx, q+" ORDER BY id", args...)
	if conn.IsMissingTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Recent returns the newest limit entries, newest first (the console's
// list; List reads the whole ledger).
func (l Ledger) Recent(ctx context.Context, db *sql.DB, limit int) ([]Entry, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+columns+" FROM "+l.name()+" ORDER BY id DESC LIMIT ?", limit)
	if conn.IsMissingTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Parked counts the entries that wait for a decision.
func (l Ledger) Parked(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+l.name()+" WHERE outcome = ?", Parked.String()).Scan(&n)
	if conn.IsMissingTable(err) {
		return 0, nil
	}
	return n, err
}

// ErrNoEntry: the ledger has no conflict with that id.
var ErrNoEntry = errors.New("no such conflict in the ledger")

// Get returns one entry.
func (l Ledger) Get(ctx context.Context, db *sql.DB, id int64) (Entry, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+columns+" FROM "+l.name()+" WHERE id = ?", id)
	if err != nil {
		return Entry{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		return Entry{}, fmt.Errorf("conflict %d: %w", id, ErrNoEntry)
	}
	return scan(rows)
}

// MarkResolved sets a parked entry's outcome.
func (l Ledger) MarkResolved(ctx context.Context, ex checkpoint.Execer, id int64, outcome string) error {
	_, err := ex.ExecContext(ctx, "UPDATE "+l.name()+" SET outcome = ?, resolved_at = CURRENT_TIMESTAMP(6) WHERE id = ?", outcome, id)
	return err
}

func scan(rows *sql.Rows) (Entry, error) {
	var e Entry
	var key, src, tgt []byte
	var created []byte
	var res []byte
	if err := rows.Scan(&e.ID, &e.Channel, &e.GTID, &e.Table, &e.Op, &e.Reason, &key, &src, &tgt, &e.Policy, &e.Outcome, &created, &res); err != nil {
		return e, err
	}
	// json.Number keeps BIGINTs exact (a float64 would round them).
	for _, j := range []struct {
		b []byte
		m *map[string]any
	}{{key, &e.Key}, {src, &e.Source}, {tgt, &e.Target}} {
		d := json.NewDecoder(bytes.NewReader(j.b))
		d.UseNumber()
		_ = d.Decode(j.m)
	}
	e.Created, _ = time.Parse("2006-01-02 15:04:05.999999", string(created))
	if len(res) > 0 {
		if t, err := time.Parse("2006-01-02 15:04:05.999999", string(res)); err == nil {
			e.Resolved = &t
		}
	}
	return e, nil
}

// Resolve settles a parked conflict. take "source" writes the source's
// image on this node (which replicates onwards like any write), "target"
// keeps the row; either way the entry is marked resolved. db must use the
// applier's session (binary strings, UTC).
func (l Ledger) Resolve(ctx context.Context, db *sql.DB, id int64, take string) error {
	e, err := l.Get(ctx, db, id)
	if err != nil {
		return err
	}
	if e.Outcome != Parked.String() {
		return fmt.Errorf("conflict %d was %s by policy %s: only parked conflicts wait for a decision", id, e.Outcome, e.Policy)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	switch take {
	case "target":
	case "source":
		if err := writeImage(ctx, tx, e); err != nil {
			return fmt.Errorf("conflict %d: writing the source's row: %w", id, err)
		}
	default:
		return fmt.Errorf("--take %q: use source or target", take)
	}
	if err := l.MarkResolved(ctx, tx, id, "resolved-"+take); err != nil {
		return err
	}
	return tx.Commit()
}

func writeImage(ctx context.Context, tx *sql.Tx, e Entry) error {
	schema, table, ok := strings.Cut(e.Table, ".")
	if !ok {
		return fmt.Errorf("table %q has no schema", e.Table)
	}
	name := conn.QuoteName(schema) + "." + conn.QuoteName(table)
	if e.Op == "delete" {
		var where []string
		var args []any
		for _, k := range sortedKeys(e.Key) {
			where = append(where, conn.QuoteName(k)+" = ?")
			args = append(args, sqlValue(e.Key[k]))
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM "+name+" WHERE "+strings.Join(where, " AND "), args...)
		return err
	}
	var cols, ph, upd []string
	var args []any
	for _, c := range sortedKeys(e.Source) {
		q := conn.QuoteName(c)
		cols, ph, upd = append(cols, q), append(ph, "?"), append(upd, q+" = VALUES("+q+")")
		args = append(args, sqlValue(e.Source[c]))
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO "+name+" ("+strings.Join(cols, ",")+") VALUES ("+strings.Join(ph, ",")+
		") ON DUPLICATE KEY UPDATE "+strings.Join(upd, ","), args...)
	return err
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sqlValue undoes Image's encoding.
func sqlValue(v any) any {
	switch x := v.(type) {
	case string:
		if b, ok := strings.CutPrefix(x, "base64:"); ok {
			if raw, err := base64.StdEncoding.DecodeString(b); err == nil {
				return raw
			}
		}
		return x
	case json.Number:
		return x.String()
	}
	return v
}
