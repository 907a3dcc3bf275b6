package testenv

import (
	"context"
	"testing"
)

func TestServerSettings(t *testing.T) {
	s := New(t, Options{ServerID: 7})
	db := MustDB(t, s)
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
