package dumpfile

import (
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(name, ".gz") {
		zw := gzip.NewWriter(f)
		zw.Write([]byte(body))
		zw.Close()
		return p
	}
	f.WriteString(body)
	return p
}

func TestPosition(t *testing.T) {
	u := "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	long := "INSERT INTO `t` VALUES (1,'" + strings.Repeat("x", 200000) + "');\n"
	cases := []struct{ name, body, flavor, want string }{
		{"mariadb.sql", "-- MariaDB dump\n" + long + "-- Preferably use GTID to start replication from GTID position:\n-- SET GLOBAL gtid_slave_pos='5-5-3';\n", "mariadb", "5-5-3"},
		{"mariadb1.sql", "SET GLOBAL gtid_slave_pos='0-1-7,5-5-3';\n" + long, "mariadb", "0-1-7,5-5-3"},
		{"mysql.sql", "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '" + u + ":1-5';\n" + long, "mysql", u + ":1-5"},
		{"mysql-multi.sql.gz", "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '" + u + ":1-5,\n" + strings.Replace(u, "3e", "4e", 1) + ":1-2';\n", "mysql", u + ":1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2"},
	}
	for _, c := range cases {
		flavor, set, err := Position(write(t, c.name, c.body))
		if err != nil || flavor != c.flavor || set.String() != c.want {
			t.Errorf("%s: %s %q %v; want %s %q", c.name, flavor, set, err, c.flavor, c.want)
		}
	}
	_, _, err := Position(write(t, "none.sql", "-- no position\n"+long))
	if !errors.Is(err, ErrNoPosition) {
		t.Errorf("a dump without a position: %v", err)
	}
}
