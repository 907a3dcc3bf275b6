package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func appendParts(t *testing.T, r *Relay, g string, pieces int) {
	t.Helper()
	for i := range pieces {
		evs := [][]byte{[]byte(fmt.Sprintf("%s piece %d a", g, i)), []byte(fmt.Sprintf("%s piece %d b", g, i))}
		if err := r.AppendPart(context.Background(), g, []byte("fde"), evs, i, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func readParts(r *Relay, e RelayEntry) ([]string, error) {
	var got []string
	err := r.ReadParts(e.Seq, e.GTID, e.Parts, e.PartsAt, func(raw []byte) error { got = append(got, string(raw)); return nil })
	return got, err
}

// A transaction spooled in pieces reads back whole, in order, a piece at a
// time, across segments; releasing its entry lets its segments go; pieces
// whose entry never came are dropped (DropPending, and on reopen); a wrong
// count is refused.
func TestRelayParts(t *testing.T) {
	dir := t.TempDir()
	s, r := openRelay(t, dir, 0, 100) // a piece or two per segment
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
	if n := len(segmentFiles(t, r)); n < 3 {
		t.Fatalf("%d segments: the pieces should cross some", n)
	}
	e, err := r.Read(2)
	if err != nil || e.Parts != 3 || len(e.Events) != 1 || e.Size <= len("xid")+20 {
		t.Fatalf("read 2: parts %d events %d size %d, %v", e.Parts, len(e.Events), e.Size, err)
	}
	got, err := readParts(r, e)
	if err != nil || len(got) != 6 || got[0] != "0-1-2 piece 0 a" || got[5] != "0-1-2 piece 2 b" {
		t.Fatalf("pieces read back: %q %v", got, err)
	}
	if err := r.ReadParts(2, "0-1-9", e.Parts, e.PartsAt, func([]byte) error { return nil }); !errors.Is(err, ErrRelayCorrupt) {
		t.Fatalf("pieces of another GTID: %v", err)
	}
	if e3, err := r.Read(3); err != nil || e3.Parts != 0 || e3.GTID != "0-1-3" {
		t.Fatalf("read 3: %+v %v", e3, err)
	}

	// Reopened: the pieces read back the same.
	s.Close()
	s, r = openRelay(t, dir, 0, 100)
	if e, err = r.Read(2); err != nil {
		t.Fatal(err)
	}
	if got, err := readParts(r, e); err != nil || len(got) != 6 {
		t.Fatalf("pieces after reopen: %q %v", got, err)
	}
	e1, _ := r.Read(1)
	if err := r.Release(1, e1.End); err != nil {
		t.Fatal(err)
	}
	// Entry 2's pieces begin in entry 1's last segment: it stays.
	if got, err := readParts(r, e); err != nil || len(got) != 6 {
		t.Fatalf("pieces after releasing entry 1: %q %v", got, err)
	}
	e3, _ := r.Read(3)
	if err := r.Release(3, e3.End); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, r)); n != 1 || r.Size() > 100 {
		t.Fatalf("all released: %d segments, %d bytes", n, r.Size())
	}

	// Pieces of a transaction whose stream broke: dropped.
	appendParts(t, r, "0-1-4", 2)
	if n, err := r.DropPending(); err != nil || n != 2 {
		t.Fatalf("DropPending: %d, %v", n, err)
	}
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-4", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, nil); err == nil {
		t.Fatal("an entry completed dropped pieces")
	}
	// ... and on reopen, when the process stopped while they arrived.
	appendParts(t, r, "0-1-4", 2)
	s.Close()
	s, r = openRelay(t, dir, 0, 100)
	defer s.Close()
	if r.pending != 0 {
		t.Fatalf("%d pieces pending after reopen", r.pending)
	}
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-4", Format: []byte("fde"), Events: [][]byte{[]byte("gtid"), []byte("xid")}}}, Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, nil); err != nil {
		t.Fatal(err)
	}
	// A piece that rots is found when the pieces are read.
	appendParts(t, r, "0-1-5", 2)
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-5", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-5"}, nil); err != nil {
		t.Fatal(err)
	}
	e5, err := r.Read(5)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, r, e5.PartsAt+recHead+3)
	if _, err := readParts(r, e5); !errors.Is(err, ErrRelayCorrupt) {
		t.Fatalf("a rotten piece: %v", err)
	}
}

// A transaction's own pieces do not count against the quota: alone it may
// exceed it; beside other held entries it waits for them.
func TestRelayPartsQuota(t *testing.T) {
	s, r := openRelay(t, t.TempDir(), 1000, 0)
	defer s.Close()
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
	e, _ := r.Read(1)
	if err := r.Release(1, e.End); err != nil {
		t.Fatal(err)
	}
	if err := r.AppendPart(context.Background(), "0-1-2", []byte("fde"), [][]byte{make([]byte, 100)}, 0, nil); err != nil {
		t.Fatal(err)
	}
}

// A transaction whose pieces were spooled and that never completes (rolled
// back, or cut off by a crashed source's next GTID): the next transaction's
// first piece, or a whole transaction, drops its pieces, and they count
// for nothing.
func TestRelayPartsAbandoned(t *testing.T) {
	s, r := openRelay(t, t.TempDir(), 0, 0)
	defer s.Close()
	ctx := context.Background()
	appendParts(t, r, "0-1-1", 3) // never completes
	appendParts(t, r, "0-1-2", 2)
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-2", Format: []byte("fde"), Events: [][]byte{[]byte("xid")}, Parts: 2}}, Position{Flavor: "mariadb", GTIDSet: "0-1-2"}, nil); err != nil {
		t.Fatal(err)
	}
	e, err := r.Read(1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readParts(r, e); err != nil || len(got) != 4 || !strings.HasPrefix(got[0], "0-1-2") {
		t.Fatalf("pieces of 0-1-2: %q, %v", got, err)
	}
	appendParts(t, r, "0-1-3", 2) // never completes either
	if _, err := r.AppendMany(ctx, []RelayItem{{GTID: "0-1-4", Format: []byte("fde"), Events: [][]byte{[]byte("gtid"), []byte("xid")}}}, Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, nil); err != nil {
		t.Fatal(err)
	}
	e2, _ := r.Read(2)
	held := r.Size()
	if err := r.Release(1, e.End); err != nil {
		t.Fatal(err)
	}
	// What is left: entry 2 and its end record, not 0-1-3's pieces.
	if left := r.Size(); left >= held || left >= e2.End-e.End {
		t.Fatalf("after releasing entry 1: %d bytes held (entry 2 is %d)", left, e2.End-e.End)
	}
	if err := r.Release(2, e2.End); err != nil {
		t.Fatal(err)
	}
	if f, n := r.Bounds(); f != n || r.Size() > 64 {
		t.Fatalf("all released: bounds %d %d, %d bytes", f, n, r.Size())
	}
	// A piece out of order is a bug upstream: refused.
	if err := r.AppendPart(ctx, "0-1-5", []byte("fde"), [][]byte{[]byte("x")}, 1, nil); err == nil {
		t.Fatal("a second piece with no first was taken")
	}
}
