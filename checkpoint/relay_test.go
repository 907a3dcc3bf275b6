package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// openRelay opens the store in dir and its relay "c", rolling segments
// past segBytes (0: the default).
func openRelay(t *testing.T, dir string, quota, segBytes int64) (*Store, *Relay) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Relay("c", quota)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	if segBytes > 0 {
		r.segBytes = segBytes
	}
	return s, r
}

func event(g string) [][]byte { return [][]byte{[]byte("gtid " + g), make([]byte, 100)} }

func appendN(t *testing.T, r *Relay, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		g := fmt.Sprintf("0-1-%d", i)
		if _, err := r.Append(context.Background(), g, []byte("fde"), event(g), Position{Flavor: "mariadb", GTIDSet: g}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func segmentFiles(t *testing.T, r *Relay) []uint64 {
	t.Helper()
	nums, err := listSegments(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	return nums
}

// Entries read back in order and out of order, across segments; a release
// deletes the segments all of whose entries it covers; a reopened relay
// holds what was not deleted and numbers on after its end.
func TestRelayAppendReadReleaseReopen(t *testing.T) {
	dir := t.TempDir()
	s, r := openRelay(t, dir, 0, 1) // a segment per append
	if _, ok := r.End(); ok {
		t.Fatal("a new relay has an end")
	}
	appendN(t, r, 1, 10)
	if n := len(segmentFiles(t, r)); n != 10 {
		t.Fatalf("%d segments for 10 appends rolled at every one", n)
	}
	e, err := r.Read(3)
	if err != nil || e.GTID != "0-1-3" || string(e.Events[0]) != "gtid 0-1-3" || string(e.Format) != "fde" {
		t.Fatalf("read 3: %+v %v", e, err)
	}
	if e4, err := r.Read(4); err != nil || e4.GTID != "0-1-4" {
		t.Fatalf("read 4 after 3: %+v %v", e4, err)
	}
	if e1, err := r.Read(1); err != nil || e1.GTID != "0-1-1" {
		t.Fatalf("read 1 after 4: %+v %v", e1, err)
	}
	e4, _ := r.Read(4)
	size := r.Size()
	if err := r.Release(4, e4.End); err != nil {
		t.Fatal(err)
	}
	if first, next := r.Bounds(); first != 5 || next != 11 || r.Size() >= size {
		t.Fatalf("after release: bounds %d %d, size %d (was %d)", first, next, r.Size(), size)
	}
	// Segments 1-3 are all released; 4 holds entry 4's end record still.
	if nums := segmentFiles(t, r); len(nums) != 7 || nums[0] != 4 {
		t.Fatalf("segments after releasing 4: %v", nums)
	}
	if _, err := r.Read(2); err == nil {
		t.Fatal("an entry in a deleted segment is still readable")
	}
	// What the relay let go: the end before the oldest segment left.
	if start, ok := r.Start(); !ok || start.GTIDSet != "0-1-3" {
		t.Fatalf("start after releasing 4: %+v %v", start, ok)
	}
	s.Close()

	s, r = openRelay(t, dir, 0, 1)
	end, ok := r.End()
	if f, n := r.Bounds(); !ok || end.GTIDSet != "0-1-10" || end.NextSeq != 11 || f != 4 || n != 11 {
		t.Fatalf("after reopen: end %+v bounds %d %d", end, f, n)
	}
	if synced, _ := r.Synced(); synced != end {
		t.Errorf("a reopened relay's end is synced: %+v, end %+v", synced, end)
	}
	if e, err := r.Read(7); err != nil || e.GTID != "0-1-7" {
		t.Fatalf("read 7 after reopen: %+v %v", e, err)
	}
	appendN(t, r, 11, 1)
	if e, err := r.Read(11); err != nil || e.GTID != "0-1-11" {
		t.Fatalf("read 11: %+v %v", e, err)
	}
	last, _ := r.Read(11)
	if err := r.Release(11, last.End); err != nil {
		t.Fatal(err)
	}
	if f, n := r.Bounds(); f != 12 || n != 12 || len(segmentFiles(t, r)) != 1 {
		t.Fatalf("all released: bounds %d %d, segments %v", f, n, segmentFiles(t, r))
	}
	s.Close()
}

// Reading pauses at the quota until the applier releases.
func TestRelayQuotaPausesAppend(t *testing.T) {
	s, r := openRelay(t, t.TempDir(), 0, 0)
	defer s.Close()
	appendN(t, r, 1, 3)
	r.quota = r.Size() + 10 // three entries fill it
	paused := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := r.Append(context.Background(), "0-1-4", []byte("fde"), event("0-1-4"),
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
	e, _ := r.Read(1)
	if err := r.Release(1, e.End); err != nil {
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
	// A relay holding no entry takes one bigger than the quota.
	e4, _ := r.Read(4)
	if err := r.Release(4, e4.End); err != nil {
		t.Fatal(err)
	}
	big := [][]byte{make([]byte, 4*r.quota)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.Append(ctx, "0-1-5", []byte("fde"), big, Position{Flavor: "mariadb", GTIDSet: "0-1-5"}, nil); err != nil {
		t.Fatalf("an entry over the quota into an empty relay: %v", err)
	}
}

// flipByte changes one byte of the segment file holding global offset off
// (and drops what the reader read ahead).
func flipByte(t *testing.T, r *Relay, off int64) {
	t.Helper()
	r.StopReading()
	seg, _, err := r.locate(off)
	if err != nil {
		t.Fatal(err)
	}
	path := segmentPath(r.dir, seg.num)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off-seg.base] ^= 0x55
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// A record that rots is found by its checksum; the relay is truncated at
// the entry and takes it again (from the source, in the pipeline).
func TestRelayDetectsCorruptionAndTruncates(t *testing.T) {
	for _, segBytes := range []int64{0, 1} {
		t.Run(fmt.Sprintf("segments of %d", segBytes), func(t *testing.T) {
			dir := t.TempDir()
			s, r := openRelay(t, dir, 0, segBytes)
			defer func() { s.Close() }()
			appendN(t, r, 1, 5)
			e2, _ := r.Read(2)
			e3, _ := r.Read(3)
			flipByte(t, r, e3.End-3) // inside entry 3's record
			if _, err := r.Read(3); !errors.Is(err, ErrRelayCorrupt) {
				t.Fatalf("want ErrRelayCorrupt, got %v", err)
			}
			at := r.ReadAt()
			if at < e2.End || at >= e3.End {
				t.Errorf("the cut for entry 3 is at %d, want between the end of entry 2 (%d) and entry 3's record", at, e2.End)
			}
			gtids, err := r.GTIDs(1, 3)
			if err != nil || len(gtids) != 2 || gtids[1] != "0-1-2" {
				t.Fatalf("GTIDs before the bad entry: %v %v", gtids, err)
			}
			if err := r.Truncate(3, at, Position{Flavor: "mariadb", GTIDSet: "0-1-2"}); err != nil {
				t.Fatal(err)
			}
			end, _ := r.End()
			if f, n := r.Bounds(); end.GTIDSet != "0-1-2" || f != 1 || n != 3 {
				t.Fatalf("after truncate: end %q bounds %d %d", end.GTIDSet, f, n)
			}
			appendN(t, r, 3, 2)
			for seq := uint64(1); seq <= 4; seq++ {
				if e, err := r.Read(seq); err != nil || e.GTID != fmt.Sprintf("0-1-%d", seq) {
					t.Fatalf("entry %d after the re-fetch: %+v %v", seq, e, err)
				}
			}
			s.Close()
			s, r = openRelay(t, dir, 0, segBytes)
			if end, _ := r.End(); end.GTIDSet != "0-1-4" || end.NextSeq != 5 {
				t.Fatalf("reopened after truncation: end %+v", end)
			}
			if e, err := r.Read(3); err != nil || e.GTID != "0-1-3" {
				t.Fatalf("entry 3 after reopen: %+v %v", e, err)
			}
		})
	}
}

// A group torn by a crash (entries written without their end record, or
// half a record) counts for nothing: the tail is cut on open and the end
// is the last whole group's.
func TestRelayOpenCutsATornTail(t *testing.T) {
	dir := t.TempDir()
	s, r := openRelay(t, dir, 0, 0)
	appendN(t, r, 1, 3)
	seg := r.segs[len(r.segs)-1]
	s.Close()
	path := segmentPath(r.dir, seg.num)
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	torn := appendEntry(nil, 4, 1, "0-1-4", event("0-1-4"), 0, 0)                      // no end record after it
	torn = append(torn, appendEntry(nil, 5, 1, "0-1-5", event("0-1-5"), 0, 0)[:20]...) // half a record
	if err := os.WriteFile(path, append(bytes.Clone(whole), torn...), 0o640); err != nil {
		t.Fatal(err)
	}
	s, r = openRelay(t, dir, 0, 0)
	end, _ := r.End()
	if _, n := r.Bounds(); n != 4 || end.GTIDSet != "0-1-3" {
		t.Fatalf("after a torn tail: next %d, end %q", n, end.GTIDSet)
	}
	if st, _ := os.Stat(path); st.Size() != int64(len(whole)) || r.Cut() != int64(len(torn)) {
		t.Errorf("the torn tail was not cut: %d bytes, want %d; cut %d, want %d", st.Size(), len(whole), r.Cut(), len(torn))
	}
	appendN(t, r, 4, 1)
	if e, err := r.Read(4); err != nil || e.GTID != "0-1-4" {
		t.Fatalf("entry 4 appended after the cut: %+v %v", e, err)
	}
	s.Close()

	// A segment whose header never made it (the process died creating
	// it) is removed; the one before holds the end.
	if err := os.WriteFile(segmentPath(r.dir, seg.num+1), []byte{7, 0, 0}, 0o640); err != nil {
		t.Fatal(err)
	}
	s, r = openRelay(t, dir, 0, 0)
	defer s.Close()
	if end, _ := r.End(); end.GTIDSet != "0-1-4" {
		t.Fatalf("after a torn segment header: end %q", end.GTIDSet)
	}
	if nums := segmentFiles(t, r); len(nums) != 1 {
		t.Errorf("segments after a torn header: %v", nums)
	}
}

// Synced trails End until Sync; a roll syncs what came before it.
func TestRelaySync(t *testing.T) {
	s, r := openRelay(t, t.TempDir(), 0, 0)
	defer s.Close()
	appendN(t, r, 1, 2)
	end, _ := r.End()
	if synced, _ := r.Synced(); synced.GTIDSet == end.GTIDSet {
		t.Fatalf("synced %q before any sync", synced.GTIDSet)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if synced, _ := r.Synced(); synced != end {
		t.Fatalf("after Sync: synced %+v, end %+v", synced, end)
	}
	appendN(t, r, 3, 1)
	r.segBytes = 1
	appendN(t, r, 4, 1) // rolls: entries 1-3 synced with their segment
	if synced, _ := r.Synced(); synced.GTIDSet != "0-1-3" {
		t.Fatalf("after a roll: synced %q", synced.GTIDSet)
	}
}

// Passed moves the reader past an entry taken from memory: the next Read
// continues after it, in the same segment or the next.
func TestRelayPassed(t *testing.T) {
	s, r := openRelay(t, t.TempDir(), 0, 300)
	defer s.Close()
	var items []RelayItem
	for i := 1; i <= 20; i++ {
		g := fmt.Sprintf("0-1-%d", i)
		items = append(items, RelayItem{GTID: g, Format: []byte("fde"), Events: event(g)})
	}
	for i := 0; i < 20; i += 4 {
		group := items[i : i+4]
		if _, err := r.AppendMany(context.Background(), group, Position{Flavor: "mariadb", GTIDSet: group[3].GTID}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(segmentFiles(t, r)) < 3 {
		t.Fatalf("segments %v: the test wants several", segmentFiles(t, r))
	}
	for seq := uint64(1); seq <= 20; seq++ {
		if seq%3 == 0 {
			r.Passed(seq, items[seq-1].End)
			continue
		}
		e, err := r.Read(seq)
		if err != nil || e.GTID != items[seq-1].GTID || e.End != items[seq-1].End {
			t.Fatalf("entry %d: %+v %v (want end %d)", seq, e, err, items[seq-1].End)
		}
	}
}

// A process killed at any moment keeps everything the relay said it held:
// a child process appends and reports each end it reached; the parent
// kills it with SIGKILL and finds at least the last reported end.
func TestRelayEndSurvivesKill9(t *testing.T) {
	if dir := os.Getenv("PITCREW_RELAY_CHILD"); dir != "" {
		relayChild(dir)
		return
	}
	for round := range 5 {
		dir := t.TempDir()
		reported := killedChild(t, dir, time.Duration(100+round*70)*time.Millisecond)
		if reported == 0 {
			t.Fatal("the child reported nothing before it was killed")
		}
		s, r := openRelay(t, dir, 0, 0)
		end, _ := r.End()
		_, next := r.Bounds()
		var got int
		fmt.Sscanf(end.GTIDSet, "0-1-%d", &got)
		if got < reported || next != uint64(got)+1 {
			t.Errorf("round %d: the child reported 0-1-%d; after SIGKILL the relay ends at %q (next entry %d)", round, reported, end.GTIDSet, next)
		}
		for seq := uint64(1); seq < next; seq += max(1, next/50) {
			if e, err := r.Read(seq); err != nil || e.GTID != fmt.Sprintf("0-1-%d", seq) {
				t.Fatalf("round %d: entry %d: %+v %v", round, seq, e, err)
			}
		}
		s.Close()
		t.Logf("round %d: reported %d, relay holds %d", round, reported, got)
	}
}

// killedChild runs the test binary as a relay appender in dir, kills it
// d after its first append, and returns the last entry it reported.
func killedChild(t *testing.T, dir string, d time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRelayEndSurvivesKill9$")
	cmd.Env = append(os.Environ(), "PITCREW_RELAY_CHILD="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	defer func() {
		if t.Failed() {
			t.Logf("child's stderr: %s", stderr.String())
		}
	}()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan int, 1<<16)
	go func() {
		defer close(lines)
		var n int
		for {
			if _, err := fmt.Fscanln(out, &n); err != nil {
				return
			}
			lines <- n
		}
	}()
	last := 0
	select { // started: kill it d into its appends
	case last = <-lines:
	case <-time.After(time.Minute):
	}
	time.Sleep(d)
	cmd.Process.Kill()
	for n := range lines {
		last = n
	}
	cmd.Wait()
	return last
}

// relayChild appends until killed, reporting each end after its append
// returned.
func relayChild(dir string) {
	s, err := Open(dir)
	if err != nil {
		panic(err)
	}
	r, err := s.Relay("c", 0)
	if err != nil {
		panic(err)
	}
	r.segBytes = 64 << 10 // rolls too
	for i := 1; ; i++ {
		g := fmt.Sprintf("0-1-%d", i)
		if _, err := r.Append(context.Background(), g, []byte("fde"), event(g), Position{Flavor: "mariadb", GTIDSet: g}, nil); err != nil {
			panic(err)
		}
		fmt.Println(i)
	}
}

// The relay's directory sits inside pebble's: pebble leaves it alone.
func TestRelayDirBesidePebble(t *testing.T) {
	dir := t.TempDir()
	s, r := openRelay(t, dir, 0, 0)
	appendN(t, r, 1, 3)
	if err := s.ResetPosition("c", Position{Flavor: "mariadb", GTIDSet: "0-1-3"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, r = openRelay(t, dir, 0, 0)
	defer s.Close()
	if e, err := r.Read(2); err != nil || e.GTID != "0-1-2" {
		t.Fatalf("after reopening the store: %+v %v", e, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "relay", "c", segmentName(1))); err != nil {
		t.Fatal(err)
	}
}
