package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// partKeys counts the stored pieces of the relay.
func partKeys(t *testing.T, r *Relay) int {
	t.Helper()
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: r.partKey(0, 0), UpperBound: r.partKey(1<<63-1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

func appendParts(t *testing.T, r *Relay, g string, pieces int) {
	t.Helper()
	for i := range pieces {
		evs := [][]byte{[]byte(fmt.Sprintf("%s piece %d a", g, i)), []byte(fmt.Sprintf("%s piece %d b", g, i))}
		if err := r.AppendPart(context.Background(), g, []byte("fde"), evs, i, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A transaction spooled in pieces reads back whole, in order, a piece at a
// time; releasing its entry frees its pieces; pieces whose entry never came
// are dropped (DropPending, and on reopen); a wrong count is refused.
func TestRelayParts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Relay("c", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	appendN(t, r, 1, 1)
	appendParts(t, r, "0-1-2", 3)
	if f, n := r.Bounds(); f != 1 || n != 2 {
		t.Fatalf("pieces moved the bounds: %d %d", f, n)
	}
	if end, _ := r.End(); end.GTIDSet != "0-1-1" {
		t.Fatalf("pieces moved the end to %s", end.GTIDSet)
	}
	// A count that is not what was spooled is a bug upstream: refused.
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-2", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-2"}, nil); err == nil || !strings.Contains(err.Error(), "3 were") {
		t.Fatalf("a wrong piece count: %v", err)
	}
	if _, err := r.AppendMany(ctx, []RelayItem{
		{GTID: "0-1-2", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 3},
		{GTID: "0-1-3", Format: []byte("fde"), Events: [][]byte{[]byte("gtid 0-1-3")}},
	}, Position{Flavor: "mariadb", GTIDSet: "0-1-3"}, nil); err != nil {
		t.Fatal(err)
	}
	e, err := r.Read(2)
	if err != nil || e.Parts != 3 || len(e.Events) != 1 || e.Size <= len("xid")+20 {
		t.Fatalf("read 2: parts %d events %d size %d, %v", e.Parts, len(e.Events), e.Size, err)
	}
	var got []string
	if err := r.ReadParts(2, "0-1-2", e.Parts, func(raw []byte) error { got = append(got, string(raw)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[0] != "0-1-2 piece 0 a" || got[5] != "0-1-2 piece 2 b" {
		t.Fatalf("pieces read back: %q", got)
	}
	if err := r.ReadParts(2, "0-1-9", e.Parts, func([]byte) error { return nil }); !errors.Is(err, ErrRelayCorrupt) {
		t.Fatalf("pieces of another GTID: %v", err)
	}
	if e3, err := r.Read(3); err != nil || e3.Parts != 0 || e3.GTID != "0-1-3" {
		t.Fatalf("read 3: %+v %v", e3, err)
	}

	// Reopened: the pieces are counted again.
	size := r.Size()
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	if r, err = s.Relay("c", 0); err != nil {
		t.Fatal(err)
	}
	if r.Size() != size || partKeys(t, r) != 3 {
		t.Fatalf("after reopen: size %d (want %d), %d pieces", r.Size(), size, partKeys(t, r))
	}
	if err := r.Release(2); err != nil {
		t.Fatal(err)
	}
	// Only entry 3 is held.
	if n := partKeys(t, r); n != 0 || r.Size() > int64(EntrySize("0-1-3", [][]byte{[]byte("gtid 0-1-3")})) {
		t.Fatalf("after release: %d pieces, size %d", n, r.Size())
	}

	// Pieces of a transaction whose stream broke: dropped.
	appendParts(t, r, "0-1-4", 2)
	if n, err := r.DropPending(); err != nil || n != 2 {
		t.Fatalf("DropPending: %d, %v", n, err)
	}
	if n := partKeys(t, r); n != 0 {
		t.Fatalf("%d pieces after DropPending", n)
	}
	// ... and on reopen, when the process stopped while they arrived.
	appendParts(t, r, "0-1-4", 2)
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err = s.Relay("c", 0); err != nil {
		t.Fatal(err)
	}
	if n := partKeys(t, r); n != 0 {
		t.Fatalf("%d orphan pieces after reopen", n)
	}
	// A truncated entry takes its pieces with it.
	appendParts(t, r, "0-1-4", 2)
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-4", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Truncate(4, Position{Flavor: "mariadb", GTIDSet: "0-1-3"}); err != nil {
		t.Fatal(err)
	}
	if n := partKeys(t, r); n != 0 {
		t.Fatalf("%d pieces after truncating their entry", n)
	}
	// A missing piece is corruption, which the replay answers by reading
	// the transaction again.
	appendParts(t, r, "0-1-4", 2)
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-4", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.db.Delete(r.partKey(4, 1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadParts(4, "0-1-4", 2, func([]byte) error { return nil }); !errors.Is(err, ErrRelayCorrupt) {
		t.Fatalf("a missing piece: %v", err)
	}
}

// A transaction's own pieces do not count against the quota: alone it may
// exceed it; beside other held entries it waits for them.
func TestRelayPartsQuota(t *testing.T) {
	s, _ := Open(t.TempDir())
	defer s.Close()
	one := EntrySize("0-1-1", [][]byte{[]byte("gtid 0-1-1"), make([]byte, 100)})
	r, _ := s.Relay("c", int64(2*one))
	appendParts(t, r, "0-1-1", 40) // alone: far past the quota
	if _, err := r.AppendMany(context.Background(), []RelayItem{{GTID: "0-1-1", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 40}}, Position{Flavor: "mariadb", GTIDSet: "0-1-1"}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	paused := false
	err := r.AppendPart(ctx, "0-1-2", []byte("fde"), [][]byte{make([]byte, 100)}, 0, func() { paused = true })
	if !paused || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a piece beside a held entry over the quota: paused %v, %v", paused, err)
	}
	if err := r.Release(1); err != nil {
		t.Fatal(err)
	}
	if err := r.AppendPart(context.Background(), "0-1-2", []byte("fde"), [][]byte{make([]byte, 100)}, 0, nil); err != nil {
		t.Fatal(err)
	}
}

// A transaction whose pieces were spooled and that never completes (rolled
// back, or cut off by a crashed source's next GTID): the next transaction's
// first piece, or a whole transaction, drops its pieces.
func TestRelayPartsAbandoned(t *testing.T) {
	s, _ := Open(t.TempDir())
	defer s.Close()
	r, _ := s.Relay("c", 0)
	ctx := context.Background()
	appendParts(t, r, "0-1-1", 3) // never completes
	appendParts(t, r, "0-1-2", 2)
	if n := partKeys(t, r); n != 2 {
		t.Fatalf("%d pieces held, want the 2 of the second transaction", n)
	}
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-2", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-2"}, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := r.ReadParts(1, "0-1-2", 2, func(raw []byte) error { got = append(got, string(raw)); return nil }); err != nil || len(got) != 4 {
		t.Fatalf("pieces of 0-1-2: %q, %v", got, err)
	}
	appendParts(t, r, "0-1-3", 2) // never completes either
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-4", Format: []byte("fde"), Events: [][]byte{[]byte("gtid"), []byte("xid")}}}, Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, nil); err != nil {
		t.Fatal(err)
	}
	if n := partKeys(t, r); n != 2 {
		t.Fatalf("%d pieces held, want 0-1-2's 2", n)
	}
	if err := r.Release(2); err != nil {
		t.Fatal(err)
	}
	if n := partKeys(t, r); n != 0 || r.Size() != 0 {
		t.Fatalf("all released: %d pieces, %d bytes", n, r.Size())
	}
	// A piece out of order is a bug upstream: refused.
	if err := r.AppendPart(ctx, "0-1-5", []byte("fde"), [][]byte{[]byte("x")}, 1, nil); err == nil {
		t.Fatal("a second piece with no first was taken")
	}
}
