// Package txn turns binlog events into source transactions, and queues
// them between the pipeline's stages (Queue).
//
// The Assembler is one pure state machine: no I/O. The reader feeds it
// every event in stream order; it hands back a Txn once the transaction's
// last event (XID, COMMIT, or the single statement of a DDL) has arrived,
// or, asked to (Assembler.Part), a part of one still arriving (Txn.Part),
// which the relay spools or the applier applies as it comes. A transaction
// cut short by a reconnect is dropped with Reset and received again from
// its GTID.
package txn

import (
	"errors"
	"fmt"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Kind is the row operation of a RowChange.
type Kind uint8

// Row operations.
const (
	Insert Kind = iota + 1
	Update
	Delete
)

func (k Kind) String() string {
	switch k {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Table is a table as the binlog's table map describes it.
//
// Columns and PK are filled from the table map's optional metadata when the
// source logs it (binlog_row_metadata=FULL); otherwise they are nil and the
// applier asks the schema tracker.
type Table struct {
	Schema  string
	Name    string
	Types   []byte   // binlog column types, one per column
	Columns []string // column names, nil when not logged
	PK      []int    // primary key column indexes, nil when not logged or no PK
	// Signedness is set when the table map said which integer columns are
	// unsigned (any binlog_row_metadata but NO_LOG). Without it, unsigned
	// values above the signed maximum arrive negative.
	Signedness bool
}

// QualifiedName is `schema.table` for messages.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// RowChange is one rows event: Rows holds full row images. For Update, Rows
// holds pairs: Rows[2i] is the before image, Rows[2i+1] the after image.
type RowChange struct {
	Table *Table
	Kind  Kind
	Rows  [][]any
	// Skipped lists, per image, the columns the image lacks (nil when every
	// image is full): binlog_row_image other than FULL, or hidden generated
	// columns the source does not log.
	Skipped [][]int
	// PartialJSON is set for MySQL partial JSON updates (a diff, not a value).
	PartialJSON bool
	// NoFKChecks: the source session ran the change with
	// foreign_key_checks=0 (the rows event's NO_FOREIGN_KEY_CHECKS flag), so
	// it cascaded nothing there either.
	NoFKChecks bool
}

// NoForeignKeyChecks is the rows event flag a session with
// foreign_key_checks=0 sets (NO_FOREIGN_KEY_CHECKS_F).
const NoForeignKeyChecks = 0x0002

// Partial reports whether some image is not a full row.
func (r *RowChange) Partial() bool { return r.Skipped != nil || r.PartialJSON }

// Query is a statement logged as text. Outside BEGIN..COMMIT it is DDL (or
// another statement that changes schema objects), applied in stream order;
// so is the CREATE that opens a CREATE TABLE ... SELECT transaction.
// Statement marks statement-format DML inside a transaction, which the
// engine refuses: replaying DML text does not reproduce the source's rows.
// (Savepoints inside a row transaction are consumed by the Assembler.)
type Query struct {
	Schema    string // default database of the source session
	Text      string
	Statement bool
	Session   Session // sql_mode, character sets, time zone of the source session
	// Expect is what the target's catalogue must show once the statement
	// ran, when its tables were named without the full parser (set by
	// routing); the applier checks it.
	Expect []Expect
}

// Expect is a table (a database when Table is "") that exists, or is gone,
// after a DDL ran.
type Expect struct {
	Schema, Table string
	Exists        bool
}

// Event is one step of a transaction: exactly one of Rows and Query is set.
type Event struct {
	Rows  *RowChange
	Query *Query
}

// Txn is one complete source transaction.
type Txn struct {
	GTID      string // d-s-n or uuid[:tag]:n; "" for a transaction without GTID
	Events    []Event
	Timestamp uint32 // source commit time, unix seconds
	Bytes     int    // size of the binlog events it came from

	// With Assembler.KeepRaw: the raw events and the format description
	// event needed to decode them again (binlog.DecodeRaw).
	Raw    [][]byte
	Format []byte
	// RelaySeq is the transaction's place in the local relay; 0 when it did
	// not come through the relay. RelayEnd is where its entry's record ends
	// in the relay's log (what releasing it frees up to).
	RelaySeq uint64
	RelayEnd int64
	// Echo marks a transaction emptied because it came back from the node
	// it was applied to (bidirectional mode).
	Echo bool
	// Lazy marks a transaction too big to hold decoded: Events is empty,
	// Raw and Format hold it, and the applier decodes it as it applies it
	// (binlog.Decoder.Each).
	Lazy bool
	// Head, for a lazy transaction spooled in parts, yields the raw events
	// that come before Raw, a part at a time (read from the relay again on
	// every call).
	Head func(fn func(raw []byte) error) error

	// Part marks a part of a transaction still being received: its GTID
	// and the raw events (relay) or decoded events (no relay) since the
	// previous part (Assembler.Part). The relay spools it, or the applier
	// applies it, so the whole never sits in memory. Parts counts the
	// parts sent before this one (0: the transaction's first), or, on the
	// complete Txn, before it. A transaction whose parts were sent and
	// that never completes (rolled back, or cut off by a crashed source's
	// next GTID) is followed by another's first part, or by a complete
	// Txn with Parts 0: its parts are then dropped.
	Part  bool
	Parts int
}

// RowCount is the number of row images changed (update pairs count once).
func (t *Txn) RowCount() int {
	n := 0
	for _, e := range t.Events {
		if e.Rows == nil {
			continue
		}
		if e.Rows.Kind == Update {
			n += len(e.Rows.Rows) / 2
		} else {
			n += len(e.Rows.Rows)
		}
	}
	return n
}

// IsDDL reports whether the transaction is a DDL: one standalone
// statement, or a CREATE TABLE ... SELECT (the CREATE, then the rows it
// selected, in one transaction).
func (t *Txn) IsDDL() bool {
	return len(t.Events) > 0 && t.Events[0].Query != nil && !t.Events[0].Query.Statement
}

// ErrNoGTID refuses a source transaction that has no GTID: positions are
// GTID sets.
var ErrNoGTID = errors.New("source transaction without GTID: turn GTIDs on at the source (MySQL gtid_mode=ON)")

// After is the position from with every transaction of ts added.
func After(from gtid.Set, ts []*Txn) (gtid.Set, error) {
	gtids := make([]string, len(ts))
	for i, t := range ts {
		if t.GTID == "" {
			return gtid.Set{}, ErrNoGTID
		}
		gtids[i] = t.GTID
	}
	return from.AddAll(gtids)
}
