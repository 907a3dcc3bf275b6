package checkpoint

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

func TestStorePosition(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Position("a"); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	if err := s.ResetPosition("a", Position{Flavor: "mariadb", GTIDSet: "0-1-5"}); err != nil {
		t.Fatal(err)
	}
	// One process per data dir.
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "another pitcrew") {
		t.Errorf("second open of a locked dir: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, ok, err := s.Position("a")
	if !ok || err != nil || p.GTIDSet != "0-1-5" || p.Flavor != "mariadb" || p.Updated.IsZero() {
		t.Fatalf("after reopen: %+v ok=%v err=%v", p, ok, err)
	}
	if _, ok, _ := s.Position("b"); ok {
		t.Error("channels are separate")
	}
}

// A reader holding the data dir for a moment (status without a service)
// does not make a starting service fail; a holder that stays does.
func TestOpenWaitsForAMomentaryHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		first.Close()
	}()
	second, err := Open(dir)
	if err != nil {
		t.Fatalf("open while another holder let go after 300ms: %v", err)
	}
	start := time.Now()
	if _, err := Open(dir); err == nil || time.Since(start) < lockWait {
		t.Fatalf("a second open of a held dir: err %v after %s; want a refusal after %s", err, time.Since(start), lockWait)
	}
	second.Close()
}

// A position only moves forward: a write that does not contain the stored
// one is refused and leaves it as it was, also after a reopen (the check
// reads the stored position, not only what this process wrote); the
// explicit moves go through ResetPosition.
func TestPositionRefusesToMoveBackwards(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := func(set string) Position { return Position{Flavor: "mariadb", GTIDSet: set} }
	stored := func(s *Store) string {
		t.Helper()
		p, ok, err := s.Position("a")
		if !ok || err != nil {
			t.Fatalf("position: ok=%v err=%v", ok, err)
		}
		return p.GTIDSet
	}
	// The first write has nothing to contain.
	if err := s.RecordPosition("a", at("0-1-5")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	for _, ok := range []string{"0-1-5", "0-1-7", "0-1-7,1-2-3"} {
		if err := s.RecordPosition("a", at(ok)); err != nil {
			t.Fatalf("forward to %s: %v", ok, err)
		}
	}
	if err := s.RecordPosition("a", at("0-1-8,1-2-3")); err != nil {
		t.Fatalf("forward in two domains: %v", err)
	}
	for _, back := range []string{"0-1-7,1-2-3", "0-1-9", ""} {
		err := s.RecordPosition("a", at(back))
		if !errors.Is(err, ErrBackwards) {
			t.Fatalf("record %q over 0-1-8,1-2-3: %v; want ErrBackwards", back, err)
		}
		if got := stored(s); got != "0-1-8,1-2-3" {
			t.Fatalf("a refused write changed the position to %q", got)
		}
	}
	err = s.RecordPosition("a", at("0-1-4"))
	want := `checkpoint of channel "a": refusing to record position "0-1-4" (mariadb), which does not contain the stored "0-1-8,1-2-3" (mariadb): a checkpoint only moves forward`
	if err == nil || err.Error() != want {
		t.Fatalf("a write backwards:\n got %v\nwant %s", err, want)
	}
	// Another flavour never contains the stored set.
	if err := s.RecordPosition("a", Position{Flavor: "mysql", GTIDSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}); !errors.Is(err, ErrBackwards) {
		t.Fatalf("a position of the other flavour: %v", err)
	}
	// After a reopen the stored position still bounds the writes.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RecordPosition("a", at("0-1-6")); !errors.Is(err, ErrBackwards) {
		t.Fatalf("after a reopen: %v", err)
	}
	// The explicit move (the target's row wins at the start) goes back,
	// and the writes after it are bounded by where it went.
	if err := s.ResetPosition("a", at("0-1-6")); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if got := stored(s); got != "0-1-6" {
		t.Fatalf("after the reset: %q", got)
	}
	if err := s.RecordPosition("a", at("0-1-6,1-2-1")); err != nil {
		t.Fatalf("forward after the reset: %v", err)
	}
	if err := s.RecordPosition("a", at("0-1-6")); !errors.Is(err, ErrBackwards) {
		t.Fatalf("back after the reset: %v", err)
	}
	// Deleting the position (an explicit reset) makes the next write a first one.
	if err := s.DeletePosition("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPosition("a", at("0-1-1")); err != nil {
		t.Fatalf("first write after a delete: %v", err)
	}
	// Channels are separate.
	if err := s.RecordPosition("b", at("0-1-1")); err != nil {
		t.Fatalf("another channel: %v", err)
	}
}

// At writes a set as the position's text and reads back the same set; the
// zero Set leaves Written unsaid.
func TestPositionAt(t *testing.T) {
	applied := gtid.MustParse("mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
	written := gtid.MustParse("mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3")
	p := At(applied, written)
	if p.Flavor != "mysql" || p.GTIDSet != applied.String() || p.Written != written.String() {
		t.Fatalf("At = %+v", p)
	}
	back, err := p.Set()
	if err != nil || !back.Equal(applied) {
		t.Fatalf("Set() = %v, %v; want %v", back, err, applied)
	}
	if q := At(applied, gtid.Set{}); q.Written != "" {
		t.Fatalf("At with a zero written = %+v, want Written unsaid", q)
	}
}
