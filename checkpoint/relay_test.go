package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func appendN(t *testing.T, r *Relay, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		g := fmt.Sprintf("0-1-%d", i)
		if _, err := r.Append(context.Background(), g, []byte("fde"), [][]byte{[]byte("gtid " + g), make([]byte, 100)}, Position{Flavor: "mariadb", GTIDSet: g}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRelayAppendReadReleaseReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Relay("c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.End(); ok {
		t.Fatal("a new relay has an end")
	}
	appendN(t, r, 1, 10)
	e, err := r.Read(3)
	if err != nil || e.GTID != "0-1-3" || string(e.Events[0]) != "gtid 0-1-3" || string(e.Format) != "fde" {
		t.Fatalf("read 3: %+v %v", e, err)
	}
	if err := r.Release(4); err != nil {
		t.Fatal(err)
	}
	first, next := r.Bounds()
	size := r.Size()
	if first != 5 || next != 11 {
		t.Fatalf("bounds %d %d", first, next)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err = s.Relay("c", 0)
	if err != nil {
		t.Fatal(err)
	}
	end, ok := r.End()
	if f, n := r.Bounds(); !ok || end.GTIDSet != "0-1-10" || f != 5 || n != 11 || r.Size() != size {
		t.Fatalf("after reopen: end %+v bounds %d %d size %d (want %d)", end, f, n, r.Size(), size)
	}
	if _, err := r.Read(4); err == nil {
		t.Fatal("a released entry is still readable")
	}
	// Emptied and reopened: numbering continues after the end.
	if err := r.Release(10); err != nil {
		t.Fatal(err)
	}
	r2, _ := s.Relay("c", 0)
	if f, n := r2.Bounds(); f != 11 || n != 11 {
		t.Fatalf("empty relay bounds %d %d", f, n)
	}
}

func TestRelayQuotaPausesAppend(t *testing.T) {
	s, _ := Open(t.TempDir())
	defer s.Close()
	one := EntrySize("0-1-1", [][]byte{[]byte("gtid 0-1-1"), make([]byte, 100)})
	r, _ := s.Relay("c", int64(3*one))
	appendN(t, r, 1, 3)
	paused := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := r.Append(context.Background(), "0-1-4", []byte("fde"), [][]byte{[]byte("gtid 0-1-4"), make([]byte, 100)},
			Position{Flavor: "mariadb", GTIDSet: "0-1-4"}, func() { paused <- struct{}{} })
		done <- err
	}()
	select {
	case <-paused:
	case err := <-done:
		t.Fatalf("append past the quota did not wait (err %v)", err)
	case <-time.After(5 * time.Second):
		t.Fatal("append neither paused nor finished")
	}
	if err := r.Release(1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("append did not resume after space was freed")
	}
}

func TestRelayDetectsCorruptionAndTruncates(t *testing.T) {
	s, _ := Open(t.TempDir())
	defer s.Close()
	r, _ := s.Relay("c", 0)
	appendN(t, r, 1, 5)
	// Flip one byte of entry 3 behind the relay's back.
	v, closer, err := s.db.Get(r.entryKey(3))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), v...)
	closer.Close()
	bad[len(bad)-1] ^= 0xff
	if err := s.db.Set(r.entryKey(3), bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(3); !errors.Is(err, ErrRelayCorrupt) {
		t.Fatalf("want ErrRelayCorrupt, got %v", err)
	}
	gtids, err := r.GTIDs(1, 3)
	if err != nil || len(gtids) != 2 || gtids[1] != "0-1-2" {
		t.Fatalf("GTIDs before the bad entry: %v %v", gtids, err)
	}
	if err := r.Truncate(3, Position{Flavor: "mariadb", GTIDSet: "0-1-2"}); err != nil {
		t.Fatal(err)
	}
	end, _ := r.End()
	if f, n := r.Bounds(); end.GTIDSet != "0-1-2" || f != 1 || n != 3 {
		t.Fatalf("after truncate: end %q bounds %d %d", end.GTIDSet, f, n)
	}
	appendN(t, r, 3, 1)
	if e, err := r.Read(3); err != nil || e.GTID != "0-1-3" {
		t.Fatalf("re-fetched entry: %+v %v", e, err)
	}
}

// Releases free exactly what they cover, whether by point deletes (a few
// entries) or by one range (many); a big entry spooled and flushed at once
// reads back whole.
func TestRelayReleaseSmallAndLarge(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Relay("c", 0)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, r, 1, 600)
	prev := r.Size()
	for _, c := range []struct {
		upTo uint64
		left int64
	}{{5, 595}, {300, 300}, {600, 0}} { // 5 and 295 entries: points, then a range
		if err := r.Release(c.upTo); err != nil {
			t.Fatal(err)
		}
		if size := r.Size(); (c.left == 0) != (size == 0) || size >= prev {
			t.Errorf("after releasing up to %d: size %d (was %d)", c.upTo, size, prev)
		}
		prev = r.Size()
		if first, _ := r.Bounds(); first != c.upTo+1 {
			t.Errorf("after releasing up to %d: first %d", c.upTo, first)
		}
		if c.left > 0 {
			if _, err := r.Read(c.upTo); err == nil {
				t.Errorf("entry %d still readable after its release", c.upTo)
			}
			if e, err := r.Read(c.upTo + 1); err != nil || e.GTID != fmt.Sprintf("0-1-%d", c.upTo+1) {
				t.Errorf("entry %d after the release: %+v %v", c.upTo+1, e, err)
			}
		}
	}
	big := make([][]byte, 2000)
	for i := range big {
		big[i] = make([]byte, 8<<10)
		big[i][0] = byte(i)
	}
	if _, err := r.Append(context.Background(), "0-1-601", []byte("fde"), big, Position{Flavor: "mariadb", GTIDSet: "0-1-601"}, nil); err != nil {
		t.Fatal(err)
	}
	e, err := r.Read(601)
	if err != nil || len(e.Events) != 2000 || e.Events[1999][0] != byte(1999%256) {
		t.Fatalf("big entry: %d events, %v", len(e.Events), err)
	}
}
