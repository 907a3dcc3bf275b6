package apply

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestStmtErrorSaysCauseAndFix(t *testing.T) {
	ref := stmtRef{gtid: "0-1-5", what: "insert", db: "`d?`", table: "`d?`.`t`"}
	for _, tc := range []struct {
		e    *stmtError
		want []string
	}{
		{&stmtError{ref: ref, size: 3 << 20, packet: 1 << 20}, []string{"GTID 0-1-5: insert on `d?`.`t`", "3145728 bytes", "(1048576 bytes)", "SET GLOBAL max_allowed_packet = 4194304"}},
		{&stmtError{ref: ref, size: 1<<20 - 2, packet: 1 << 19}, []string{"SET GLOBAL max_allowed_packet = 1048576"}},
		{&stmtError{ref: ref, size: 1 << 30, packet: 1 << 30}, []string{"cannot be written as SQL", "route: exclude"}},
		{&stmtError{size: 5 << 20, packet: 1 << 20}, []string{"the statement that writes this row is 5242880 bytes"}},
		{&stmtError{ref: ref, err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry '1' for key 'PRIMARY'"}}, []string{"insert on `d?`.`t`", "already holds a row", "pitcrew skip --gtid 0-1-5"}},
		{&stmtError{ref: ref, user: "'u'@'%'", err: &mysql.MySQLError{Number: 1142, Message: "INSERT command denied"}}, []string{"'u'@'%' lacks a privilege", "GRANT SELECT, INSERT, UPDATE, DELETE ON `d?`.* TO 'u'@'%'"}},
		{&stmtError{ref: ref, err: &mysql.MySQLError{Number: 1143, Message: "SELECT command denied"}}, []string{"the target user lacks", "ON `d?`.* TO the target user"}},
	} {
		got := tc.e.Error()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q does not say %q", got, w)
			}
		}
		if strings.HasPrefix(got, ":") || strings.Contains(got, "\n") {
			t.Errorf("not one clean line: %q", got)
		}
	}
}

// Set statements are cut by the bytes of their values too: 20000
// placeholders of 1 KiB strings would make a 20 MiB statement.
func TestChunksBoundBytes(t *testing.T) {
	var rows [][]any
	for range 100 {
		rows = append(rows, []any{int64(1), strings.Repeat("x", 100<<10)})
	}
	n, total := 0, 0
	for c := range chunks(rows, 10000) {
		size := 0
		for _, r := range c {
			size += valueSize(r[0]) + valueSize(r[1])
		}
		if len(c) > 1 && size > maxStmtBytes {
			t.Errorf("chunk of %d rows, %d bytes", len(c), size)
		}
		n, total = n+1, total+len(c)
	}
	if total != len(rows) || n < 20 {
		t.Errorf("%d chunks of %d rows in all", n, total)
	}
	n = 0
	for c := range chunks(rows[:7], 3) {
		n += len(c)
		if len(c) > 3 {
			t.Errorf("chunk of %d rows, at most 3", len(c))
		}
	}
	if n != 7 {
		t.Errorf("%d rows, want 7", n)
	}
}
