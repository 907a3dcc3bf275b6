package bench

import (
	"context"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// A small run keeps the harness working; the numbers come from
// `pitcrew bench load`.
func TestLoadSmoke(t *testing.T) {
	testenv.Require(t)
	res, err := Load(context.Background(), LoadConfig{Rows: 4000, Tables: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if r.Tool == "mydumper+myloader" && !r.Equal {
			t.Logf("%s: %s", r.Tool, r.Note) // optional tool
			continue
		}
		if !r.Equal || r.RowsPerSec <= 0 {
			t.Errorf("%+v", r)
		}
	}
}

func TestCatchupSmoke(t *testing.T) {
	testenv.Require(t)
	res, err := Catchup(context.Background(), CatchupConfig{Txns: 200, Tables: 2, Rows: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if !r.Equal || r.TxnsPerS <= 0 {
			t.Errorf("%+v", r)
		}
	}
}
