// Package conn opens SQL connections to a source or target server and
// classifies MySQL errors, once, by error number (never by message text).
package conn

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
)

// Endpoint is where a server listens and who we are there.
type Endpoint struct {
	Host     string `yaml:"host"`                 // default 127.0.0.1
	Port     int    `yaml:"port"`                 // default 3306
	User     string `yaml:"user"`                 // default root
	Password string `yaml:"password"`             // also from the environment, see cmd/pitcrew
	TLS      TLS    `yaml:"tls" json:",omitzero"` // default mode preferred; see tls.go
	// Socket is a unix socket path: connections use it instead of
	// host:port (host still names the server for TLS and in messages).
	Socket string `yaml:"socket" json:",omitempty"`
	// DSN, DefaultsFile and DefaultsGroup are other ways to write the
	// fields above (see defaults.go and Resolve); the fields win.
	DSN           string `yaml:"dsn" json:"-"`
	DefaultsFile  string `yaml:"defaults_file" json:",omitempty"`
	DefaultsGroup string `yaml:"defaults_group" json:",omitempty"`
}

// Default fills the documented defaults.
func (e *Endpoint) Default() {
	if e.Host == "" {
		e.Host = "127.0.0.1"
	}
	if e.Port == 0 {
		e.Port = 3306
	}
	if e.User == "" {
		e.User = "root"
	}
}

// Validate checks the fields that can be checked without connecting.
func (e Endpoint) Validate(role string) error {
	if e.Port <= 0 || e.Port > 65535 {
		return fmt.Errorf("%s.port %d is out of range: use 1-65535", role, e.Port)
	}
	if e.Host == "" {
		return fmt.Errorf("%s.host is empty: set the server's host name or address", role)
	}
	return e.TLS.Validate(role)
}

// TLSConfig is the tls.Config for connections to e (nil: plaintext); see
// TLS.Config. Both the SQL driver (Open) and the binlog stream use it.
func (e Endpoint) TLSConfig(role string) (*tls.Config, error) {
	return e.TLS.Config(role, e.Host)
}

// ConnectTimeout bounds a whole connect: dial, TLS and authentication
// handshakes and the session's setup statements. A path to the server that
// swallows packets (a dead route) costs at most this long per attempt.
const ConnectTimeout = 10 * time.Second

// Addr is host:port, or the socket's path.
func (e Endpoint) Addr() string {
	if e.Socket != "" {
		return e.Socket
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// Network is the driver's network for Addr: tcp or unix.
func (e Endpoint) Network() string {
	if e.Socket != "" {
		return "unix"
	}
	return "tcp"
}

// String is safe to log: it never contains the password.
func (e Endpoint) String() string { return e.User + "@" + e.Addr() }

// Options tune a pool for its use.
type Options struct {
	Init        []string // statements every new connection runs first (session variables)
	FoundRows   bool     // UPDATE reports matched rows, not changed rows
	Interpolate bool     // build statements client-side: one round trip per statement
	Multi       bool     // allow several statements in one query
}

// Open returns a pool; the pool is not pinged.
func Open(e Endpoint, opts ...Options) (*sql.DB, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	var err error
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = e.User, e.Password
	cfg.Net, cfg.Addr = e.Network(), e.Addr()
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 60 * time.Second
	cfg.WriteTimeout = 60 * time.Second
	cfg.AllowNativePasswords = true
	cfg.MaxAllowedPacket = 0 // ask the server
	cfg.ClientFoundRows = o.FoundRows
	cfg.InterpolateParams = o.Interpolate
	cfg.MultiStatements = o.Multi
	if cfg.TLS, err = e.TLSConfig(e.String()); err != nil {
		return nil, err
	}
	// preferred: go-sql-driver's fallback is exactly the mysql client's
	// (plaintext only when the server offers no TLS at all).
	cfg.AllowFallbackToPlaintext = e.TLS.Fallback()
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(&initConnector{Connector: connector, cfg: cfg, init: o.Init})
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

// Ping connects and explains failure in one line with the fix.
func Ping(ctx context.Context, db *sql.DB, role string, e Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return Explain(err, role, e)
	}
	return nil
}

// Explain turns a connection error into "cause: fix" for the operator.
func Explain(err error, role string, e Endpoint) error {
	if te := ExplainTLS(err, role, e); te != nil {
		return te
	}
	switch Code(err) {
	case 1045:
		switch {
		case e.TLS.mode() == ModeDisabled:
			// MariaDB answers a plaintext connection that
			// require_secure_transport refuses with this same 1045.
			return fmt.Errorf("%s %s: access denied to a plaintext connection (%s.tls.mode is disabled): the server refuses unencrypted connections (require_secure_transport=ON) or the account requires TLS (REQUIRE SSL/X509), or the user or password is wrong: set %s.tls.mode: verify-identity (recommended) or required, and check %s.user and the password (%s.password or the environment variable): %w", role, e, role, role, role, role, err)
		case e.TLS.Cert == "":
			// The server says only "access denied" to an account
			// created REQUIRE X509 (or SUBJECT, ISSUER) that came
			// without a client certificate.
			return fmt.Errorf("%s %s: access denied: a wrong user or password, or an account that requires a client certificate (REQUIRE X509/SUBJECT/ISSUER: set %s.tls.cert and %s.tls.key): check %s.user and the password (%s.password or the environment variable): %w", role, e, role, role, role, role, err)
		}
		return fmt.Errorf("%s %s: access denied (wrong user or password, or a client certificate the account does not accept): check %s.user, the password (%s.password or the environment variable) and %s.tls.cert: %w", role, e, role, role, role, err)
	case errSecureTransport:
		return fmt.Errorf("%s %s refuses unencrypted connections (require_secure_transport=ON), and this one was plaintext: set %s.tls.mode: verify-identity (recommended; with %s.tls.ca) or required: %w", role, e, role, role, err)
	case 1044, 1142, 1227:
		return fmt.Errorf("%s %s: missing privilege: grant the user what the error names: %w", role, e, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s is unreachable: check %s.host/%s.port and that the server is running: %w", role, e, role, role, err)
	}
	return fmt.Errorf("%s %s: %w", role, e, err)
}

// Code returns the MySQL error number carried by err, or 0.
func Code(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	var ge *gomysql.MyError
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// IsMissingTable reports whether err says the table, or the database it
// is in, does not exist (1146, 1049): for pitcrew's own tables, read before
// anything created them.
func IsMissingTable(err error) bool {
	switch Code(err) {
	case 1146, // table doesn't exist
		1049: // unknown database
		return true
	}
	return false
}

// fatal error numbers: retrying cannot help, the operator must act.
var fatal = map[uint16]bool{
	1044:               true, // access denied to database
	1045:               true, // access denied for user
	errSecureTransport: true, // plaintext refused by require_secure_transport (MySQL)
	1049:               true, // unknown database
	1142:               true, // command denied
	1143:               true, // command denied on a column
	1227:               true, // needs a privilege
	1236:               true, // source cannot serve the binlog (purged, unknown GTID)
	1064:               true, // syntax error
	1146:               true, // table doesn't exist
	1054:               true, // unknown column
	1062:               true, // duplicate key: the target diverged
	1136:               true, // column count mismatch
	1366:               true, // incorrect value
	1406:               true, // data too long
	1452:               true, // foreign key
}

// Privilege reports errors that say the user lacks a privilege: on a
// database, a table, a column, or a global one.
func Privilege(err error) bool {
	switch Code(err) {
	case 1044, // access denied to database
		1142, // command denied on a table
		1143, // command denied on a column
		1227: // needs a global privilege
		return true
	}
	return false
}

// retryable error numbers: transient server states.
var retryable = map[uint16]bool{
	1205: true,                                     // lock wait timeout
	1213: true,                                     // deadlock
	1040: true,                                     // too many connections
	1053: true,                                     // server shutdown in progress
	1077: true,                                     // normal shutdown
	1152: true,                                     // aborted connection
	1158: true, 1159: true, 1160: true, 1161: true, // network read/write errors
	1927: true, // connection killed (MariaDB)
	2006: true, // server has gone away
	2013: true, // lost connection
	4031: true, // disconnected by server for inactivity
}

// Retryable reports whether err is worth retrying after a reconnect: network
// failures and transient server states. Unknown server errors are fatal.
//
// The classification is by type: the error number (Code), then the
// drivers' connection errors and net.Error anywhere in the chain (go-mysql's
// pingcap/errors wrappers unwrap). What is left is text: go-mysql formats
// the cause of a failed session setting on the binlog connection into its
// message with %v ("failed to set @slave_connect_state='...': io.ReadFull
// (header) failed. err EOF: connection was bad"), which drops its type; for
// those, textOnly names the few causes a broken connection shows.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if c := Code(err); c != 0 {
		return retryable[c] && !fatal[c]
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, gomysql.ErrBadConn) {
		return true
	}
	var ne net.Error // also context.DeadlineExceeded and a syscall.Errno
	if errors.As(err, &ne) {
		return true
	}
	s := err.Error()
	for _, w := range textOnly {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// textOnly are the texts of connection failures whose type go-mysql drops
// (see Retryable): its ErrBadConn, which every failed packet read or write
// wraps, and the syscall errors of a connection the peer broke.
var textOnly = []string{
	gomysql.ErrBadConn.Error(), // "connection was bad"
	"connection refused",
	"connection reset",
	"broken pipe",
	"i/o timeout",
}

// QuoteName quotes an identifier with backticks.
func QuoteName(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

type initConnector struct {
	driver.Connector // the pool's Driver
	// cfg is what each connection is made from, through a connector of
	// its own: the driver's connections share their connector's config,
	// and a fallback to plaintext (TLS preferred, none offered) clears
	// its TLS, which raced with connections being made at the same time
	// and left the pool plaintext for good, even once the server offers
	// TLS.
	cfg  *mysql.Config
	init []string
}

// Connect bounds the connect with ConnectTimeout: the driver's own dial
// timeout covers the TCP connect only, and its read timeout each packet,
// so a route that swallows the handshake would otherwise hold the caller
// for a minute or more per packet. The driver watches ctx only until
// Connect returns.
func (c *initConnector) Connect(ctx context.Context) (driverConn, error) {
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	one, err := mysql.NewConnector(c.cfg) // a clone of cfg
	if err != nil {
		return nil, err
	}
	dc, err := one.Connect(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range c.init {
		if err := execOn(ctx, dc, q); err != nil {
			dc.Close()
			return nil, fmt.Errorf("session setup %q: %w", q, err)
		}
	}
	return dc, nil
}

// Strings runs a query that returns one string column and collects it.
func Strings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
