package conn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
)

// Errors are classified by number and by type; text decides only for the
// causes go-mysql formats into a message (textOnly).
func TestRetryable(t *testing.T) {
	num := func(n uint16) error { return &mysql.MySQLError{Number: n, Message: "m"} }
	wrap := func(err error) error { return fmt.Errorf("applying batch: %w", err) }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		// Transient server states, by number.
		{"lock wait timeout", num(1205), true},
		{"deadlock", num(1213), true},
		{"too many connections", num(1040), true},
		{"shutdown in progress", num(1053), true},
		{"normal shutdown", num(1077), true},
		{"aborted connection", num(1152), true},
		{"net read error", num(1158), true},
		{"net read timeout", num(1159), true},
		{"net write error", num(1160), true},
		{"net write timeout", num(1161), true},
		{"connection killed (MariaDB)", num(1927), true},
		{"server has gone away", num(2006), true},
		{"lost connection", num(2013), true},
		{"disconnected for inactivity", num(4031), true},
		{"deadlock, wrapped", wrap(num(1213)), true},
		{"deadlock from go-mysql", &gomysql.MyError{Code: 1213, Message: "Deadlock found"}, true},
		// Server errors the operator must act on, and unknown ones.
		{"access denied", num(1045), false},
		{"database access denied", num(1044), false},
		{"unknown database", num(1049), false},
		{"missing table", num(1146), false},
		{"duplicate key", num(1062), false},
		{"syntax", num(1064), false},
		{"binlog purged", wrap(&gomysql.MyError{Code: 1236, Message: "Could not find first log file"}), false},
		{"needs a privilege", num(1227), false},
		{"unknown number", num(1105), false},
		// The drivers' connection errors.
		{"io.EOF", io.EOF, true},
		{"io.ErrUnexpectedEOF", wrap(io.ErrUnexpectedEOF), true},
		{"driver.ErrBadConn", driver.ErrBadConn, true},
		{"go-sql-driver invalid connection", wrap(mysql.ErrInvalidConn), true},
		{"sql.ErrConnDone", sql.ErrConnDone, true},
		{"go-mysql bad connection", wrap(gomysql.ErrBadConn), true},
		// Network errors.
		{"refused dial", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"reset read, wrapped", wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true},
		{"DNS", &net.DNSError{Err: "no such host", Name: "db.example"}, true},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"canceled, wrapped", wrap(context.Canceled), false},
		// Text only: the causes go-mysql formats into its message.
		{"session setting on a bad connection", errors.New("failed to set @slave_connect_state='0-1-5': io.ReadFull(header) failed. err EOF: connection was bad"), true},
		{"refused, as text", errors.New("dial tcp 127.0.0.1:3306: connect: connection refused"), true},
		{"reset, as text", errors.New("read tcp 127.0.0.1:40000->127.0.0.1:3306: read: connection reset by peer"), true},
		{"broken pipe, as text", errors.New("write tcp: write: broken pipe"), true},
		{"i/o timeout, as text", errors.New("read tcp: i/o timeout"), true},
		// Anything else is fatal: a bare "EOF" in a message is not a
		// connection failure.
		{"EOF in a message", errors.New("decoding the dump file: unexpected EOF in a string literal"), false},
		{"plain error", errors.New("the target diverged"), false},
	} {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("%s: Retryable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestIsMissingTable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&mysql.MySQLError{Number: 1146}, true},
		{fmt.Errorf("reading: %w", &mysql.MySQLError{Number: 1049}), true},
		{&gomysql.MyError{Code: 1146}, true},
		{&mysql.MySQLError{Number: 1142}, false},
		{sql.ErrNoRows, false},
	} {
		if got := IsMissingTable(c.err); got != c.want {
			t.Errorf("IsMissingTable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
