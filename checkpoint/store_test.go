package checkpoint

import (
	"strings"
	"testing"
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
