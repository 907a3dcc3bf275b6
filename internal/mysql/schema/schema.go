// Package schema knows table definitions: which columns a table has, which
// are generated (never written), and its primary key. The applier uses it to
// map binlog row images, whose columns are positional, onto target columns.
//
// This version reads definitions from the target's information_schema. DDL
// is applied in stream order, so when a row event is applied the target's
// definition is the one the source had when it logged the event. The tracker
// is a seam: definitions at a GTID kept in pebble (for sources that log no
// column names and targets that differ) replace it without changing callers.
package schema

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Column is one column of a table.
type Column struct {
	Name      string
	Generated bool // VIRTUAL or STORED generated: never written
	Unsigned  bool // an UNSIGNED integer column
	Integer   bool // TINYINT..BIGINT: its values compare as numbers, no collation
	// Collation of a character column ("" for numbers, dates and binary
	// strings): what decides which values its indexes take as equal.
	Collation string
	// Pad: the length of a BINARY(n) column, 0 for any other type. The
	// server pads a BINARY value with 0x00 to n bytes when it stores it,
	// and the binlog carries it without those trailing zeros (as it
	// stores CHAR without trailing spaces): compared with the stored
	// value, the logged one must be padded again.
	Pad int
	// AutoIncrement: the table's AUTO_INCREMENT column.
	AutoIncrement bool
	// Virtual: a VIRTUAL generated column (not stored): the value a
	// binlog image logs for it is the source's computation, never a
	// stored value to match on.
	Virtual  bool
	Nullable bool
}

// Unique is one unique index (the primary key included).
type Unique struct {
	Name string
	Cols []int // column indexes, in index order
	// Prefix: per column, the indexed prefix length in characters (bytes
	// for binary strings); 0 when the whole value is indexed.
	Prefix []int
	// Hash: a long unique key (MariaDB: UNIQUE on BLOB/TEXT, or USING
	// HASH outside MEMORY), which the server enforces through a hidden
	// column of its own (DB_ROW_HASH_n) that no SELECT or
	// information_schema shows but the binlog logs, after every real
	// column. Its columns are still the real ones.
	Hash bool
}

// Table is a table's definition.
type Table struct {
	Schema, Name string
	Columns      []Column
	PK           []int // identifying key column indexes (primary key, else a unique NOT NULL key); nil when none
	UniqueKeys   int   // unique indexes, the primary key included
	Uniques      []Unique
	// Hidden: the hidden columns of the long unique keys (one per Hash
	// index), logged in row images after the real columns.
	Hidden   int
	Triggers bool // the table has triggers on this server
	// Cascades: a foreign key with ON DELETE or ON UPDATE CASCADE, SET NULL
	// or SET DEFAULT references this table, so a change to it changes
	// other rows that no binlog carries (InnoDB does them inside the
	// statement): the applier runs it with foreign_key_checks=1, in order.
	Cascades bool
}

// Index returns the position of the named column (case-insensitive, as
// MySQL column names are), or -1.
func (t *Table) Index(name string) int {
	for i, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// Tracker caches table definitions read from a server.
type Tracker struct {
	db    *sql.DB
	mu    sync.Mutex
	cache map[string]*Table
}

// NewTracker reads definitions through db.
func NewTracker(db *sql.DB) *Tracker {
	return &Tracker{db: db, cache: map[string]*Table{}}
}

// Invalidate forgets every definition; call it after any DDL.
func (t *Tracker) Invalidate() {
	t.mu.Lock()
	clear(t.cache)
	t.mu.Unlock()
}

// Forget drops one table's definition.
func (t *Tracker) Forget(db, name string) {
	t.mu.Lock()
	delete(t.cache, db+"\x00"+name)
	t.mu.Unlock()
}

// ErrNoTable is returned when the table does not exist on the server.
type ErrNoTable struct{ Schema, Name string }

func (e ErrNoTable) Error() string {
	return fmt.Sprintf("table %s.%s does not exist on the target: create it there (or start the target from a snapshot that has it)", e.Schema, e.Name)
}

// Table returns the definition of db.name.
func (t *Tracker) Table(ctx context.Context, db, name string) (*Table, error) {
	key := db + "\x00" + name
	t.mu.Lock()
	def := t.cache[key]
	t.mu.Unlock()
	if def != nil {
		return def, nil
	}
	def, err := t.load(ctx, db, name)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.cache[key] = def
	t.mu.Unlock()
	return def, nil
}

func (t *Tracker) load(ctx context.Context, db, name string) (*Table, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT COLUMN_NAME, IS_GENERATED, COLUMN_TYPE, COALESCE(COLLATION_NAME, ''), EXTRA LIKE '%auto_increment%',
  EXTRA LIKE '%VIRTUAL%', IS_NULLABLE = 'YES'
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, fmt.Errorf("reading definition of %s.%s: %w", db, name, err)
	}
	defer rows.Close()
	def := &Table{Schema: db, Name: name}
	for rows.Next() {
		var col, generated, typ, collation string
		var autoInc, virtual, nullable bool
		if err := rows.Scan(&col, &generated, &typ, &collation, &autoInc, &virtual, &nullable); err != nil {
			return nil, err
		}
		lt := strings.ToLower(typ)
		def.Columns = append(def.Columns, Column{Name: col, Generated: generated != "NEVER",
			Unsigned: strings.Contains(lt, "unsigned"), Integer: isInteger(lt), Collation: collation, Pad: binaryLen(lt), AutoIncrement: autoInc, Virtual: virtual, Nullable: nullable})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(def.Columns) == 0 {
		return nil, ErrNoTable{Schema: db, Name: name}
	}
	key, err := KeyColumns(ctx, t.db, db, name)
	if err != nil {
		return nil, fmt.Errorf("reading the keys of %s.%s: %w", db, name, err)
	}
	for _, k := range key {
		if i := def.Index(k); i >= 0 {
			def.PK = append(def.PK, i)
		}
	}
	if def.Uniques, err = t.uniques(ctx, def); err != nil {
		return nil, fmt.Errorf("reading the unique indexes of %s.%s: %w", db, name, err)
	}
	def.PK = identifying(def)
	def.UniqueKeys = len(def.Uniques)
	for _, u := range def.Uniques {
		if u.Hash {
			def.Hidden++
		}
	}
	var triggers int
	err = t.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?`, db, name).Scan(&triggers)
	if err != nil {
		return nil, fmt.Errorf("reading the triggers of %s.%s: %w", db, name, err)
	}
	def.Triggers = triggers > 0
	var cascades int
	err = t.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?
  AND (DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))`, db, name).Scan(&cascades)
	if err != nil {
		return nil, fmt.Errorf("reading the foreign keys that reference %s.%s: %w", db, name, err)
	}
	def.Cascades = cascades > 0
	return def, nil
}

func (t *Tracker) uniques(ctx context.Context, def *Table) ([]Unique, error) {
	// A MEMORY table's HASH index is the engine's own: no hidden column.
	rows, err := t.db.QueryContext(ctx, `SELECT s.INDEX_NAME, s.COLUMN_NAME, COALESCE(s.SUB_PART, 0),
  s.INDEX_TYPE = 'HASH' AND COALESCE(t.ENGINE, '') NOT IN ('MEMORY', 'HEAP')
FROM information_schema.STATISTICS s LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.TABLE_SCHEMA AND t.TABLE_NAME = s.TABLE_NAME
WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0
ORDER BY s.INDEX_NAME <> 'PRIMARY', s.INDEX_NAME, s.SEQ_IN_INDEX`, def.Schema, def.Name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Unique
	for rows.Next() {
		var index, col string
		var prefix int
		var hash bool
		if err := rows.Scan(&index, &col, &prefix, &hash); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != index {
			out = append(out, Unique{Name: index, Hash: hash})
		}
		u := &out[len(out)-1]
		u.Cols = append(u.Cols, def.Index(col)) // -1: an expression, never equal to a column
		u.Prefix = append(u.Prefix, prefix)
	}
	return out, rows.Err()
}

// identifying keeps def.PK unless it has a VIRTUAL column (MySQL allows
// a NOT NULL one in a unique key; a table without a primary key then
// identifies rows by it): the before image's value of a virtual column is
// computed by the source, and a WHERE on it may match nothing where the
// stored columns still match. It then takes the first unique key of
// stored NOT NULL columns, else none (the written columns are matched).
func identifying(def *Table) []int {
	virtual := func(cols []int) bool {
		return slices.ContainsFunc(cols, func(i int) bool { return i < 0 || def.Columns[i].Virtual })
	}
	if !virtual(def.PK) {
		return def.PK
	}
	for _, u := range def.Uniques {
		if !virtual(u.Cols) && !slices.ContainsFunc(u.Cols, func(i int) bool { return def.Columns[i].Nullable }) {
			return u.Cols
		}
	}
	return nil
}

// binaryLen is n of a "binary(n)" column type, else 0.
func binaryLen(columnType string) int {
	rest, ok := strings.CutPrefix(columnType, "binary(")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, ")"))
	if err != nil {
		return 0
	}
	return n
}

func isInteger(columnType string) bool {
	for _, p := range []string{"tinyint", "smallint", "mediumint", "int", "bigint"} {
		if columnType == p || strings.HasPrefix(columnType, p+"(") || strings.HasPrefix(columnType, p+" ") {
			return true
		}
	}
	return false
}
