package txn

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// Assembler is the event -> transaction state machine. Not safe for
// concurrent use; one per stream.
type Assembler struct {
	flavor  string
	keepRaw bool              // attach each transaction's raw events (for the relay)
	format  []byte            // raw format description event the stream started with
	tables  map[uint64]*Table // table id -> table, valid until the next rotate
	cur     *Txn              // transaction being received, nil between transactions
	inTrx   bool              // BEGIN seen for cur
	// savepoints: where in cur.Events each savepoint of the transaction
	// was set (by name, as logged); taken is set once events were handed
	// over early (TakeEvents, Part), which a rollback to a savepoint set
	// before them cannot undo.
	savepoints map[string]int
	taken      bool
	sealed     int // events before this index take no more rows (a savepoint follows them)
}

// NewAssembler returns an assembler for "mysql" or "mariadb" streams.
func NewAssembler(flavor string) *Assembler {
	return &Assembler{flavor: flavor, tables: map[uint64]*Table{}}
}

// KeepRaw makes every transaction carry its raw events and the stream's
// format description event, so it can be spooled and decoded again.
func (a *Assembler) KeepRaw() { a.keepRaw = true }

// Reset drops a partly received transaction; call it when the stream breaks.
func (a *Assembler) Reset() {
	a.cur, a.inTrx = nil, false
	clear(a.savepoints)
	a.taken, a.sealed = false, 0
}

// TakeEvents hands over the events of the transaction being received so
// far and forgets them (a transaction too big to hold is applied as it is
// decoded); its GTID stays known.
func (a *Assembler) TakeEvents() (gtid string, events []Event) {
	if a.cur == nil {
		return "", nil
	}
	events = a.cur.Events
	a.cur.Events = nil
	a.forget()
	return a.cur.GTID, events
}

// Pending reports whether a transaction is partly received.
func (a *Assembler) Pending() bool { return a.cur != nil }

// Feed consumes one event. It returns the transaction the event completes, or
// nil. Events outside a GTID transaction (rotate, format description, GTID
// lists, heartbeats) are consumed silently: they change nothing on a target.
func (a *Assembler) Feed(ev *replication.BinlogEvent) (*Txn, error) {
	if !a.keepRaw {
		return a.feed(ev)
	}
	if ev.Header.EventType == replication.FORMAT_DESCRIPTION_EVENT {
		a.format = ev.RawData
	}
	var t *Txn
	var err error
	if _, ok := ev.Event.(*replication.RowsEvent); ok && a.cur != nil {
		// Framed only (its row images were not decoded): the relay
		// decodes the raw event when it is replayed.
		a.cur.Bytes += int(ev.Header.EventSize)
	} else {
		t, err = a.feed(ev)
	}
	// The event belongs to the transaction it completed, or to the one in
	// progress (which it may just have begun).
	if owner := cmp.Or(t, a.cur); owner != nil && err == nil {
		owner.Raw = append(owner.Raw, ev.RawData)
		owner.Format = a.format
	}
	return t, err
}

// Part hands over what the transaction being received holds once its
// events since the last piece reach limit bytes (Bytes), as a Txn marked
// Part, and forgets it, so a transaction of any size passes a piece at a
// time: with KeepRaw its raw events (spooled), else its decoded events
// (applied as they come). The complete Txn then carries only what came
// after the last piece, and Parts says how many pieces came before it.
// Nil while under the limit.
func (a *Assembler) Part(limit int) *Txn {
	if limit <= 0 || a.cur == nil || a.cur.GTID == "" || a.cur.Bytes < limit {
		return nil
	}
	p := &Txn{GTID: a.cur.GTID, Bytes: a.cur.Bytes, Part: true, Parts: a.cur.Parts}
	if a.keepRaw {
		// The decoded events are framing only (the row images are
		// skipped): the relay decodes the raw ones when it replays them.
		p.Raw, p.Format = a.cur.Raw, a.format
	} else {
		p.Events = a.cur.Events
	}
	a.cur.Raw, a.cur.Events, a.cur.Bytes = nil, nil, 0
	a.cur.Parts++
	a.forget()
	return p
}

// forget notes that the events held so far were handed over: savepoints
// set among them now point before the events still held.
func (a *Assembler) forget() {
	a.sealed = 0
	if len(a.savepoints) > 0 {
		a.taken = true
		for name := range a.savepoints {
			a.savepoints[name] = -1
		}
	}
}

func (a *Assembler) feed(ev *replication.BinlogEvent) (*Txn, error) {
	if a.cur != nil {
		a.cur.Bytes += int(ev.Header.EventSize)
	}
	switch e := ev.Event.(type) {
	case *replication.MariadbGTIDEvent:
		a.begin(e.GTID.String(), ev)
		// A MariaDB GTID without FL_STANDALONE opens a BEGIN...COMMIT group
		// whose BEGIN is implied by the event itself.
		a.inTrx = !e.IsStandalone()
	case *replication.GtidTaggedLogEvent:
		return nil, a.beginMySQL(&e.GTIDEvent, ev)
	case *replication.GTIDEvent:
		if ev.Header.EventType == replication.ANONYMOUS_GTID_EVENT {
			a.begin("", ev) // gtid_mode=OFF: a transaction without a GTID
			return nil, nil
		}
		return nil, a.beginMySQL(e, ev)
	case *replication.TransactionPayloadEvent:
		var done *Txn
		for _, inner := range e.Events {
			t, err := a.feed(inner)
			if err != nil {
				return nil, err
			}
			if t != nil {
				done = t
			}
		}
		return done, nil
	case *replication.TableMapEvent:
		// The same table id maps the same table within a binlog file while
		// its definition stands (a DDL gives it a new id): reuse the Table,
		// so later stages can cache what they derive from it.
		if old := a.tables[e.TableID]; old == nil || !sameMap(old, e) {
			a.tables[e.TableID] = tableOf(e)
		}
	case *replication.RowsEvent:
		return nil, a.rows(ev.Header.EventType, e)
	case *replication.QueryEvent:
		return a.query(e, ev.Header.Timestamp)
	case *replication.XIDEvent:
		return a.commit()
	case *replication.RotateEvent:
		// Table ids are only valid within one binlog file.
		clear(a.tables)
	}
	return nil, nil
}

func (a *Assembler) beginMySQL(e *replication.GTIDEvent, ev *replication.BinlogEvent) error {
	set, err := e.GTIDNext()
	if err != nil {
		return fmt.Errorf("decoding GTID event at %d: %w", ev.Header.LogPos, err)
	}
	a.begin(set.String(), ev)
	return nil
}

func (a *Assembler) begin(gtid string, ev *replication.BinlogEvent) {
	// A GTID event while another transaction is open means the previous one
	// was never committed in the log (a crashed source): drop it, as the
	// server's own applier does.
	a.cur = &Txn{GTID: gtid, Timestamp: ev.Header.Timestamp, Bytes: int(ev.Header.EventSize)}
	if a.keepRaw {
		a.cur.Raw = make([][]byte, 0, 8) // a small transaction's events, grown once at most
	}
	a.inTrx = false
	clear(a.savepoints)
	a.taken, a.sealed = false, 0
}

func (a *Assembler) rows(et replication.EventType, e *replication.RowsEvent) error {
	if a.cur == nil {
		return fmt.Errorf("rows event for table id %d outside a transaction: the log is corrupt or was read from the middle of a transaction", e.TableID)
	}
	t := a.tables[e.TableID]
	if t == nil {
		t = tableOf(e.Table)
	}
	var kind Kind
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		kind = Insert
	case replication.EnumRowsEventTypeUpdate:
		kind = Update
	case replication.EnumRowsEventTypeUnknown:
		if et == replication.PARTIAL_UPDATE_ROWS_EVENT {
			kind = Update
		}
	case replication.EnumRowsEventTypeDelete:
		kind = Delete
	}
	if kind == 0 {
		return fmt.Errorf("GTID %s: unsupported rows event type %s on %s", a.cur.GTID, et, t.QualifiedName())
	}
	rc := &RowChange{Table: t, Kind: kind, Rows: e.Rows, PartialJSON: et == replication.PARTIAL_UPDATE_ROWS_EVENT,
		NoFKChecks: e.Flags&NoForeignKeyChecks != 0}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			rc.Skipped = e.SkippedColumns
			break
		}
	}
	// Consecutive rows events of one kind on one table form one change
	// (not across a savepoint: a rollback to it cuts between them).
	if n := len(a.cur.Events); n > a.sealed {
		if last := a.cur.Events[n-1].Rows; last != nil && last.Kind == kind && last.Table == t && last.NoFKChecks == rc.NoFKChecks && !rc.Partial() && !last.Partial() {
			last.Rows = append(last.Rows, e.Rows...)
			return nil
		}
	}
	a.cur.Events = append(a.cur.Events, Event{Rows: rc})
	return nil
}

func (a *Assembler) query(e *replication.QueryEvent, when uint32) (*Txn, error) {
	q := strings.TrimSpace(string(e.Query))
	word := strings.ToUpper(firstWord(q))
	switch word {
	case "BEGIN":
		if a.cur == nil {
			// Logs from servers without GTIDs (MySQL before 5.6) have no
			// GTID event: the transaction is anonymous.
			a.cur = &Txn{}
		}
		a.inTrx = true
		return nil, nil
	case "COMMIT":
		return a.commit()
	case "ROLLBACK":
		if strings.EqualFold(q, "ROLLBACK") {
			// The transaction's changes did not survive on the source.
			a.Reset()
			return nil, nil
		}
	}
	if a.cur != nil && a.inTrx {
		if done, err := a.savepoint(q); done || err != nil {
			return nil, err
		}
	}
	standalone := a.cur == nil || !a.inTrx
	if a.cur == nil {
		a.cur = &Txn{} // an anonymous statement (no GTID event before it)
	}
	query := &Query{Schema: string(e.Schema), Text: q, Statement: !standalone, Session: parseStatusVars(e.StatusVars)}
	query.Session.Timestamp = when
	switch {
	case standalone && createTable.MatchString(q) && createSelect.MatchString(q):
		// MySQL 8 logs CREATE TABLE ... SELECT as one atomic transaction
		// that this statement opens; its rows follow, then the XID.
		query.Text = strings.TrimSpace(createSelect.ReplaceAllString(q, ""))
		a.cur.Events = append(a.cur.Events, Event{Query: query})
		a.inTrx = true
		return nil, nil
	case !standalone && len(a.cur.Events) == 0 && !a.taken && a.cur.Parts == 0 && createTable.MatchString(q):
		// CREATE TABLE ... SELECT in row format: the CREATE (rewritten by
		// the server with the columns it made) opens the transaction and
		// the rows it selected follow. A DDL, applied before its rows.
		query.Statement = false
	}
	a.cur.Events = append(a.cur.Events, Event{Query: query})
	if standalone {
		return a.commit()
	}
	return nil, nil
}

var (
	// createTable: a CREATE TABLE (not a view or anything else).
	createTable = regexp.MustCompile(`(?is)^(?:/\*.*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\b`)
	// createSelect: MySQL's atomic CREATE TABLE ... SELECT, which ends
	// with the START TRANSACTION that opens the transaction of its rows.
	createSelect = regexp.MustCompile(`(?is)\s+START\s+TRANSACTION\s*$`)
	// savepointRe: the savepoint statements a transaction may log (names
	// as the server quotes them, or bare).
	savepointRe = regexp.MustCompile("(?is)^(?:/\\*.*?\\*/\\s*)*(SAVEPOINT|ROLLBACK\\s+(?:WORK\\s+)?TO\\s+(?:SAVEPOINT\\s+)?|RELEASE\\s+SAVEPOINT)\\s*(`(?:[^`]|``)*`|\\S+)\\s*$")
)

// savepoint handles a savepoint statement inside a row transaction (ORMs
// set them; the rows logged are already the transaction's net effect):
// SAVEPOINT and RELEASE change nothing; ROLLBACK TO, which the server
// logs only when the transaction also changed a non-transactional table
// (its rows went to the log on their own), drops the rows logged since
// the savepoint, as a replica's rollback to it does. done is false for
// any other statement.
func (a *Assembler) savepoint(q string) (done bool, err error) {
	m := savepointRe.FindStringSubmatch(q)
	if m == nil {
		return false, nil
	}
	name := m[2]
	if strings.HasPrefix(name, "`") {
		name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
	}
	name = strings.ToLower(name) // savepoint names are case-insensitive
	switch strings.ToUpper(m[1][:3]) {
	case "SAV":
		if a.savepoints == nil {
			a.savepoints = map[string]int{}
		}
		a.savepoints[name] = len(a.cur.Events)
		a.sealed = len(a.cur.Events)
	case "REL":
		delete(a.savepoints, name)
	default:
		at, ok := a.savepoints[name]
		switch {
		case !ok:
			return true, fmt.Errorf("GTID %s: %q rolls back to a savepoint the transaction never set: the log was read from the middle of a transaction", a.cur.GTID, q)
		case at < 0:
			return true, fmt.Errorf("GTID %s: %q undoes rows of a transaction so large that they were already handed to the applier; apply this transaction by hand on the target and skip it (pitcrew skip --gtid %s)", a.cur.GTID, q, a.cur.GTID)
		}
		a.cur.Events = a.cur.Events[:at]
		a.sealed = at
		for n, i := range a.savepoints {
			if i > at {
				delete(a.savepoints, n) // set after it: gone with the rollback
			}
		}
	}
	return true, nil
}

func (a *Assembler) commit() (*Txn, error) {
	t := a.cur
	a.Reset()
	return t, nil
}

func firstWord(q string) string {
	// Skip leading comments such as /* pitcrew origin=... */.
	for strings.HasPrefix(q, "/*") {
		end := strings.Index(q, "*/")
		if end < 0 {
			return ""
		}
		q = strings.TrimSpace(q[end+2:])
	}
	if i := strings.IndexAny(q, " \t\r\n;("); i >= 0 {
		return q[:i]
	}
	return q
}

// sameMap tells whether a table map event describes t exactly.
func sameMap(t *Table, e *replication.TableMapEvent) bool {
	if t.Schema != string(e.Schema) || t.Name != string(e.Table) || !bytes.Equal(t.Types, e.ColumnType) ||
		t.Signedness != (e.SignednessBitmap != nil) || len(t.PK) != len(e.PrimaryKey) {
		return false
	}
	if len(e.ColumnName) != len(t.Columns) {
		return len(t.Columns) == 0 && len(e.ColumnName) != int(e.ColumnCount)
	}
	for i, n := range e.ColumnName {
		if string(n) != t.Columns[i] {
			return false
		}
	}
	return true
}

func tableOf(e *replication.TableMapEvent) *Table {
	t := &Table{Schema: string(e.Schema), Name: string(e.Table), Types: e.ColumnType, Signedness: e.SignednessBitmap != nil}
	if names := e.ColumnNameString(); len(names) == int(e.ColumnCount) {
		t.Columns = names
		for _, i := range e.PrimaryKey {
			t.PK = append(t.PK, int(i))
		}
	}
	return t
}
