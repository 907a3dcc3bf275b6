package ddl

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"CREATE USER 'app'@'%' IDENTIFIED BY 'secret1'", "CREATE USER 'app'@'%' IDENTIFIED BY '***'"},
		{"CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*7C67218EF7410F248763DC99AEDC705367393C4A'", "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '***'"},
		{"ALTER USER a IDENTIFIED VIA ed25519 USING PASSWORD('s3cr''et')", "ALTER USER a IDENTIFIED VIA ed25519 USING PASSWORD('***')"},
		{"CREATE USER a IDENTIFIED WITH mysql_native_password AS '*ABC', b IDENTIFIED BY 'two'", "CREATE USER a IDENTIFIED WITH mysql_native_password AS '***', b IDENTIFIED BY '***'"},
		{"SET PASSWORD FOR 'a'@'%' = PASSWORD('x\\'y')", "SET PASSWORD FOR 'a'@'%' = PASSWORD('***')"},
		{"SET PASSWORD FOR a = 'hash'", "SET PASSWORD FOR a = '***'"},
		{"GRANT SELECT ON shop.* TO 'app'@'%' IDENTIFIED BY 'pw'", "GRANT SELECT ON shop.* TO 'app'@'%' IDENTIFIED BY '***'"},
		{"CREATE TABLE t (password varchar(10) DEFAULT 'x')", "CREATE TABLE t (password varchar(10) DEFAULT 'x')"},
	} {
		got := Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		for _, secret := range []string{"secret1", "7C67218E", "s3cr", "two", "x\\'y", "hash", "'pw'"} {
			if strings.Contains(c.in, secret) && strings.Contains(got, secret) {
				t.Errorf("Redact(%q) keeps %q", c.in, secret)
			}
		}
	}
}
