package txn

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// feeder hands an Assembler events as a MariaDB server logs them. Rows
// are stood in for by statement-format queries (go-mysql builds rows
// events only from the wire); the real-server tests cover real rows.
type feeder struct {
	t *testing.T
	a *Assembler
}

func (f feeder) gtid(seq uint64) {
	f.feed(&replication.MariadbGTIDEvent{GTID: mysql.MariadbGTID{ServerID: 1, SequenceNumber: seq}}, replication.MARIADB_GTID_EVENT)
}

func (f feeder) query(q string) *Txn {
	f.t.Helper()
	t, err := f.try(q)
	if err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return t
}

func (f feeder) try(q string) (*Txn, error) {
	return f.a.Feed(&replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.QUERY_EVENT},
		Event: &replication.QueryEvent{Schema: []byte("app"), Query: []byte(q)}})
}

func (f feeder) commit() *Txn { return f.feed(&replication.XIDEvent{}, replication.XID_EVENT) }

func (f feeder) feed(e replication.Event, et replication.EventType) *Txn {
	f.t.Helper()
	t, err := f.a.Feed(&replication.BinlogEvent{Header: &replication.EventHeader{EventType: et}, Event: e})
	if err != nil {
		f.t.Fatalf("feeding %T: %v", e, err)
	}
	return t
}

func texts(t *Txn) []string {
	var out []string
	for _, e := range t.Events {
		out = append(out, e.Query.Text)
	}
	return out
}

// Savepoints inside a row transaction (ORMs set them): SAVEPOINT and
// RELEASE change nothing; ROLLBACK TO, which the server logs only when the
// transaction also changed a non-transactional table, drops what was
// logged since the savepoint, as a native replica's rollback does.
func TestSavepointsInRowTransaction(t *testing.T) {
	f := feeder{t, NewAssembler("mariadb")}
	f.gtid(7)
	f.query("r1")
	f.query("SAVEPOINT `s 1`")
	f.query("r2")
	if got := f.commit(); !slices.Equal(texts(got), []string{"r1", "r2"}) {
		t.Fatalf("savepoint without rollback: %q", texts(got))
	}
	f.gtid(8)
	f.query("r1")
	f.query("SAVEPOINT `s2`")
	f.query("r2")
	f.query("SAVEPOINT inner")
	f.query("r3")
	f.query("ROLLBACK TO `S2`") // savepoint names are case-insensitive
	f.query("r4")
	f.query("ROLLBACK WORK TO SAVEPOINT `s2`")
	f.query("r5")
	f.query("RELEASE SAVEPOINT s2")
	if _, err := f.try("ROLLBACK TO inner"); err == nil { // gone with the rollback to s2
		t.Error("a rollback to a savepoint set after the one rolled back to was accepted")
	}
	f.a.Reset()
	f.gtid(8)
	f.query("r1")
	f.query("SAVEPOINT `s2`")
	f.query("r2")
	f.query("ROLLBACK TO `s2`")
	f.query("r6")
	if got := f.commit(); !slices.Equal(texts(got), []string{"r1", "r6"}) {
		t.Fatalf("rollbacks to savepoints: %q", texts(got))
	}
	// A rollback to a savepoint whose events were already handed over (a
	// transaction too big to hold) is refused, naming the fix.
	f.gtid(9)
	f.query("SAVEPOINT a")
	f.query("r1")
	f.a.TakeEvents()
	f.query("r2")
	if _, err := f.try("ROLLBACK TO `a`"); err == nil || !strings.Contains(err.Error(), "pitcrew skip --gtid 0-1-9") {
		t.Fatalf("rollback over handed-over events: %v", err)
	}
}

// CREATE TABLE ... SELECT in row format is the CREATE and its rows in one
// transaction: a DDL, not statement-format DML.
func TestCreateSelectIsDDL(t *testing.T) {
	f := feeder{t, NewAssembler("mariadb")}
	f.gtid(4)
	f.query("CREATE TABLE `t2` (\n  `id` int(11) NOT NULL\n)")
	f.query("r1")
	got := f.commit()
	if !got.IsDDL() || got.Events[0].Query.Statement || !got.Events[1].Query.Statement {
		t.Fatalf("CREATE ... SELECT: %+v", got.Events)
	}
	// A CREATE later in a transaction is not one.
	f.gtid(5)
	f.query("r1")
	f.query("CREATE TABLE x (a INT)")
	if got = f.commit(); got.IsDDL() || !got.Events[1].Query.Statement {
		t.Fatalf("CREATE after DML: %+v", got.Events)
	}
	// MySQL 8's atomic CREATE ... SELECT opens the transaction itself.
	m := feeder{t, NewAssembler("mysql")}
	m.a.begin("3e11fa47-71ca-11e1-9e33-c80aa9429562:5", &replication.BinlogEvent{Header: &replication.EventHeader{}})
	if done := m.query("CREATE TABLE `t2` (\n  `id` int NOT NULL\n) START TRANSACTION"); done != nil {
		t.Fatal("the CREATE ended its transaction")
	}
	got = m.commit()
	if got == nil || !got.IsDDL() || got.Events[0].Query.Text != "CREATE TABLE `t2` (\n  `id` int NOT NULL\n)" {
		t.Fatalf("MySQL CREATE ... SELECT: %+v", got)
	}
}
