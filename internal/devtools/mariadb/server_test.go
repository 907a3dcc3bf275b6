package mariadb_test

import (
	"context"
	"os"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

func TestServerSettings(t *testing.T) {
	s := testenv.New(t, testenv.Options{ServerID: 7})
	db := testenv.MustDB(t, s)
	var format, strict, domain, sid string
	err := db.QueryRow("SELECT @@binlog_format, @@gtid_strict_mode, @@gtid_domain_id, @@server_id").Scan(&format, &strict, &domain, &sid)
	if err != nil {
		t.Fatal(err)
	}
	if format != "ROW" || strict != "1" || domain != "7" || sid != "7" {
		t.Fatalf("got format=%s strict=%s domain=%s server_id=%s", format, strict, domain, sid)
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestDetachedStop: a detached server (the sandbox's) is found again from
// its directory and port alone, stopped cleanly, and started again on the
// data dir it already has.
func TestDetachedStop(t *testing.T) {
	testenv.Require(t)
	dir, err := os.MkdirTemp("", "pitcrew-db-")
	if err != nil {
		t.Fatal(err)
	}
	o := mariadb.Options{Dir: dir, ServerID: 3, Detach: true}
	s, err := mariadb.Start(context.Background(), o)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Kill()
		os.RemoveAll(dir)
	})
	o.Port = s.Port
	again := &mariadb.Server{Options: o}
	if !again.Running() {
		t.Fatalf("detached server on port %d not seen running from its directory", s.Port)
	}
	if err := again.Stop(); err != nil {
		t.Fatal(err)
	}
	if again.Running() || s.Running() {
		t.Fatal("still running after Stop")
	}
	if s, err = mariadb.Start(context.Background(), o); err != nil {
		t.Fatalf("starting again on its data dir: %v", err)
	}
	if !s.Running() {
		t.Fatal("not running after the second Start")
	}
}
