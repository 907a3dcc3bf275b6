package schema

import (
	"slices"
	"testing"
)

func TestBinaryLen(t *testing.T) {
	for typ, want := range map[string]int{"binary(16)": 16, "binary(1)": 1, "varbinary(16)": 0, "char(16)": 0, "blob": 0, "binary": 0} {
		if got := binaryLen(typ); got != want {
			t.Errorf("binaryLen(%q) = %d, want %d", typ, got, want)
		}
	}
}

// A unique NOT NULL key over a virtual column (MySQL allows it) never
// identifies rows: the next unique key of stored NOT NULL columns does,
// else none.
func TestIdentifyingKeyAvoidsVirtualColumns(t *testing.T) {
	cols := []Column{{Name: "a"}, {Name: "v", Generated: true, Virtual: true}, {Name: "b"}, {Name: "c", Nullable: true}, {Name: "p", Generated: true}}
	for _, c := range []struct {
		pk      []int
		uniques [][]int
		want    []int
	}{
		{[]int{0}, nil, []int{0}},
		{[]int{4}, nil, []int{4}}, // a stored generated column is a stored value
		{[]int{1}, [][]int{{1}, {3}, {2, 0}}, []int{2, 0}},
		{[]int{1, 0}, [][]int{{1, 0}, {-1}}, nil},
	} {
		def := &Table{Columns: cols, PK: c.pk}
		for _, u := range c.uniques {
			def.Uniques = append(def.Uniques, Unique{Cols: u})
		}
		if got := identifying(def); !slices.Equal(got, c.want) {
			t.Errorf("key %v, uniques %v: %v, want %v", c.pk, c.uniques, got, c.want)
		}
	}
}
