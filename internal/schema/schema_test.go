package schema

import "testing"

func TestBinaryLen(t *testing.T) {
	for typ, want := range map[string]int{"binary(16)": 16, "binary(1)": 1, "varbinary(16)": 0, "char(16)": 0, "blob": 0, "binary": 0} {
		if got := binaryLen(typ); got != want {
			t.Errorf("binaryLen(%q) = %d, want %d", typ, got, want)
		}
	}
}
