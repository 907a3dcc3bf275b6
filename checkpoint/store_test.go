package checkpoint

import (
	"strings"
	"testing"
	"time"
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
	if err := s.SetPosition("a", Position{Flavor: "mariadb", GTIDSet: "0-1-5"}); err != nil {
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
