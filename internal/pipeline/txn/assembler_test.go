package txn

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
)

// A table map repeated for the same table id within a file gives the same
// Table (the applier caches its plan by it); a changed definition (here a
// column type, as after an ALTER) gives a new one.
func TestTableMapReusedWhileUnchanged(t *testing.T) {
	a := NewAssembler("mariadb")
	tm := func(types []byte, names ...string) *replication.BinlogEvent {
		cn := make([][]byte, len(names))
		for i, n := range names {
			cn[i] = []byte(n)
		}
		return &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.TABLE_MAP_EVENT},
			Event: &replication.TableMapEvent{TableID: 7, Schema: []byte("app"), Table: []byte("t"), ColumnCount: uint64(len(types)), ColumnType: types, ColumnName: cn}}
	}
	for _, ev := range []*replication.BinlogEvent{tm([]byte{3, 15}, "id", "v")} {
		if _, err := a.Feed(ev); err != nil {
			t.Fatal(err)
		}
	}
	first := a.tables[7]
	if _, err := a.Feed(tm([]byte{3, 15}, "id", "v")); err != nil {
		t.Fatal(err)
	}
	if a.tables[7] != first {
		t.Error("an identical table map made a new Table")
	}
	if _, err := a.Feed(tm([]byte{8, 15}, "id", "v")); err != nil {
		t.Fatal(err)
	}
	if a.tables[7] == first || a.tables[7].Types[0] != 8 {
		t.Error("a changed table map kept the old Table")
	}
	if _, err := a.Feed(tm([]byte{8, 15}, "id", "w")); err != nil {
		t.Fatal(err)
	}
	if a.tables[7].Columns[1] != "w" {
		t.Error("a renamed column kept the old Table")
	}
}
