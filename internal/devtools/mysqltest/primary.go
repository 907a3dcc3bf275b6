// Package mysqltest is a MySQL 8 primary for tests: it speaks the MySQL
// client and replica protocols (go-mysql's server package: handshake,
// mysql_native_password and caching_sha2_password, TLS) and serves real
// MySQL binlog files from ../shared/fixtures/mysql-binlogs to a replica
// over COM_BINLOG_DUMP_GTID, as MySQL's dump thread would: it skips the
// transactions the replica's GTID set holds, sends heartbeats when idle,
// and refuses a purged range with MySQL's own error 1236.
//
// Every query is answered from a version Profile (8.0, 8.4, optionally
// RDS); a query outside it fails the test. Tests only: nothing in the
// production binary imports it.
package mysqltest

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Options configure a Primary.
type Options struct {
	Profile Profile // default MySQL80
	// Auth is the account's plugin: mysql.AUTH_CACHING_SHA2_PASSWORD
	// (default, MySQL 8's) or mysql.AUTH_NATIVE_PASSWORD. The handshake
	// always offers caching_sha2_password first, as MySQL 8 does, so a
	// native account goes through an auth switch.
	Auth           string
	User, Password string // default "pitcrew", "secret-pw"
	// TLS: serve TLS with a certificate for 127.0.0.1/localhost from a
	// throwaway CA (Certs). Plaintext is still accepted, as on MySQL
	// without require_secure_transport.
	TLS      bool
	ServerID uint32 // default 1
	// ServerUUID is the primary's own server_uuid (a replica with more
	// of its GTIDs than it has is refused); default: the UUID of the
	// last served transaction.
	ServerUUID string
	Files      []File // the binlog, in order
}

// Primary is a running test primary on a loopback port.
type Primary struct {
	t     testing.TB
	o     Options
	srv   *server.Server
	auth  *authHandler
	l     net.Listener
	Certs *testenv.Certs // with Options.TLS

	mu       sync.Mutex
	files    []*binlogFile
	purged   int // files[:purged] are purged
	changed  chan struct{}
	sessions map[uint32]*session
	cut      string // GTID whose transaction the next dump cuts in the middle
	dumps    []Dump
	auths    []Auth
	outside  []string
	queries  map[string]int    // normalized text -> times asked
	regs     map[uint32]uint32 // session id -> replica server_id
	before   func(n int)
	closed   bool
	wg       sync.WaitGroup
	hbSent   int
}

// Dump is one COM_BINLOG_DUMP_GTID request as the primary received it.
type Dump struct {
	ServerID uint32
	Set      string // the replica's GTID set
	Err      string // the error it was refused with, if any
}

// Auth is one successful login.
type Auth struct {
	Plugin   string // the account's plugin
	FullAuth bool   // caching_sha2_password took the full path (not the cache)
	TLS      bool
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaErr  error
)

// Start starts a primary; it is closed when the test ends, and the test
// fails if pitcrew sent it a query outside its profile.
func Start(t testing.TB, o Options) *Primary {
	t.Helper()
	if o.Profile.Name == "" {
		o.Profile = MySQL80
	}
	if o.Auth == "" {
		o.Auth = mysql.AUTH_CACHING_SHA2_PASSWORD
	}
	if o.User == "" {
		o.User, o.Password = "pitcrew", "secret-pw"
	}
	if o.ServerID == 0 {
		o.ServerID = 1
	}
	p := &Primary{t: t, o: o, changed: make(chan struct{}), sessions: map[uint32]*session{}, regs: map[uint32]uint32{}, queries: map[string]int{}}
	for i, f := range o.Files {
		bf, err := readFile(f, i+1)
		if err != nil {
			t.Fatalf("test primary: %v", err)
		}
		p.files = append(p.files, bf)
	}
	// The RSA key pair of caching_sha2_password's full authentication
	// without TLS (the server's public key, sent on request).
	rsaOnce.Do(func() { rsaKey, rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	var tlsCfg *tls.Config
	if o.TLS {
		certs, err := testenv.NewCerts(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		p.Certs = certs
		read := func(f string) []byte {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		tlsCfg = server.NewServerTLSConfig(read(certs.CA), read(certs.ServerCert), read(certs.ServerKey), tls.VerifyClientCertIfGiven)
	}
	p.srv = server.NewServer(o.Profile.Version, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_CACHING_SHA2_PASSWORD, rsaKey, tlsCfg)
	p.auth = &authHandler{p: p, InMemoryAuthenticationHandler: server.NewInMemoryAuthenticationHandler()}
	if err := p.auth.AddUser(o.User, o.Password, o.Auth); err != nil {
		t.Fatal(err)
	}
	if p.o.ServerUUID == "" {
		for _, f := range p.files {
			for _, g := range f.groups {
				p.o.ServerUUID = g.gtid[:36]
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.l = l
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Endpoint reaches the primary as its account; with TLS, verify-identity
// against its CA.
func (p *Primary) Endpoint() conn.Endpoint {
	e := conn.Endpoint{Host: "127.0.0.1", Port: p.l.Addr().(*net.TCPAddr).Port, User: p.o.User, Password: p.o.Password}
	if p.Certs != nil {
		e.TLS = conn.TLS{Mode: conn.ModeVerifyIdentity, CA: p.Certs.CA}
	} else {
		e.TLS = conn.TLS{Mode: conn.ModeDisabled}
	}
	return e
}

// Close stops the primary and ends every session; then it fails the test
// if a query fell outside the profile.
func (p *Primary) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, s := range p.sessions {
		s.end()
	}
	outside := p.outside
	p.mu.Unlock()
	p.l.Close()
	p.wg.Wait()
	for _, q := range outside {
		p.t.Errorf("test primary (MySQL %s): pitcrew sent a query outside the profile: %s", p.o.Profile.Name, q)
	}
}

func (p *Primary) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *Primary) serve(nc net.Conn) {
	s := &session{p: p, nc: nc, vars: map[string]string{}, done: make(chan struct{})}
	c, err := p.srv.NewCustomizedConn(nc, p.auth, s)
	if err != nil {
		nc.Close()
		return
	}
	s.c, s.user = c, c.GetUser()
	if tc, ok := c.Conn.Conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		// As MySQL's Ssl_version says it: TLSv1.3.
		s.tlsVersion = strings.Replace(tls.VersionName(st.Version), "TLS 1", "TLSv1", 1)
		s.tlsCipher = tls.CipherSuiteName(st.CipherSuite)
	}
	// MySQL buffers a response and sends it at once (net_flush); go-mysql
	// writes each packet on its own, which over TLS is a TLS record per
	// packet. go-sql-driver v1.9.3 misreads that (the value of SELECT
	// @@max_allowed_packet is overwritten by the next packet it reads), so
	// the session writes through a buffer flushed as MySQL flushes: after
	// each response, and after each event of a dump.
	w := &flushConn{Conn: c.Conn.Conn}
	w.w = bufio.NewWriterSize(w.Conn, 16384)
	c.Conn.Conn = w
	s.w = w
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.sessions[c.ConnectionID()] = s
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.sessions, c.ConnectionID())
		delete(p.regs, c.ConnectionID())
		p.mu.Unlock()
	}()
	for !c.Closed() {
		err := c.HandleCommand()
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return
		}
	}
}

// kill ends a session, as KILL does; false when there is none.
func (p *Primary) kill(id uint32) bool {
	p.mu.Lock()
	s := p.sessions[id]
	p.mu.Unlock()
	if s == nil {
		return false
	}
	s.end()
	return true
}

// Executed is the primary's gtid_executed: every served transaction.
func (p *Primary) Executed() gtid.Set {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.setOf(p.files)
}

// Purged is gtid_purged: the transactions of the purged files.
func (p *Primary) Purged() gtid.Set {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.setOf(p.files[:p.purged])
}

func (p *Primary) setOf(files []*binlogFile) gtid.Set {
	s := gtid.Empty(gtid.MySQL)
	for _, f := range files {
		for _, g := range f.groups {
			s, _ = s.Add(g.gtid)
		}
	}
	return s
}

// Purge purges the first n files (PURGE BINARY LOGS TO the n+1-th).
func (p *Primary) Purge(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > len(p.files)-1 {
		p.t.Fatalf("test primary: cannot purge %d of %d files (the active one stays)", n, len(p.files))
	}
	p.purged = n
}

// Append adds a file to the end of the log: the dumps that wait at the end
// rotate to it and send its transactions.
func (p *Primary) Append(f File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bf, err := readFile(f, len(p.files)+1)
	if err != nil {
		p.t.Fatalf("test primary: %v", err)
	}
	p.files = append(p.files, bf)
	close(p.changed)
	p.changed = make(chan struct{})
}

// CutInside makes the next dump that sends the transaction g drop its
// connection in the middle of it (after its GTID event and the next one).
func (p *Primary) CutInside(g string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = g
}

// BeforeDump calls f with the number of each dump request (1, 2, ...)
// before the primary answers it: to purge, append or cut in between.
func (p *Primary) BeforeDump(f func(n int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = f
}

// Dumps are the dump requests received so far.
func (p *Primary) Dumps() []Dump {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Dump(nil), p.dumps...)
}

// Auths are the logins so far.
func (p *Primary) Auths() []Auth {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Auth(nil), p.auths...)
}

// Asked is how many times a query (as sent, whitespace collapsed) was asked.
func (p *Primary) Asked(q string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queries[normalize(q)]
}

// Heartbeats is how many heartbeat events the dumps sent.
func (p *Primary) Heartbeats() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hbSent
}

// ForgetPasswords empties caching_sha2_password's cache (as a server
// restart or FLUSH PRIVILEGES does): the next login takes the full path.
func (p *Primary) ForgetPasswords() {
	p.srv.InvalidateCache(p.o.User, p.l.Addr().String())
}

func (p *Primary) replicas() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []uint32
	for _, id := range p.regs {
		out = append(out, id)
	}
	return out
}

// authHandler records each login: the plugin, whether caching_sha2_password
// needed the full path, TLS. go-mysql keeps the full-path flag unexported;
// it is read by reflection, and a go-mysql without it fails the test.
type authHandler struct {
	p *Primary
	*server.InMemoryAuthenticationHandler
}

func (h *authHandler) OnAuthSuccess(c *server.Conn) error {
	v := reflect.ValueOf(c).Elem().FieldByName("cachingSha2FullAuth")
	if !v.IsValid() {
		return errors.New("test primary: go-mysql's server.Conn has no cachingSha2FullAuth field any more")
	}
	cred, _, _ := h.GetCredential(c.GetUser())
	_, isTLS := c.Conn.Conn.(*tls.Conn)
	h.p.mu.Lock()
	h.p.auths = append(h.p.auths, Auth{Plugin: cred.AuthPluginName, FullAuth: v.Bool(), TLS: isTLS})
	h.p.mu.Unlock()
	return nil
}

func (h *authHandler) OnAuthFailure(*server.Conn, error) {}

// session is one client connection.
type session struct {
	p                     *Primary
	c                     *server.Conn
	nc                    net.Conn
	user                  string
	vars                  map[string]string
	heartbeat             time.Duration
	w                     *flushConn
	tlsVersion, tlsCipher string
	done                  chan struct{}
	closeOnce             sync.Once
}

// end closes the session's connection and wakes its dump.
func (s *session) end() {
	s.closeOnce.Do(func() {
		close(s.done)
		// The network connection only: go-mysql's Conn.Close writes
		// the Conn's own fields, which its goroutine may be using.
		s.nc.Close()
	})
}

func (s *session) tls() (version, cipher string) { return s.tlsVersion, s.tlsCipher }

// flushConn buffers a session's writes until Flush.
type flushConn struct {
	net.Conn
	w *bufio.Writer
}

func (f *flushConn) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f *flushConn) Flush() error                { return f.w.Flush() }

func (s *session) UseDB(string) error { return nil }

func (s *session) HandleQuery(q string) (*mysql.Result, error) {
	r, err, found := s.p.o.Profile.answer(s, q)
	s.p.mu.Lock()
	s.p.queries[normalize(q)]++
	if !found {
		s.p.outside = append(s.p.outside, normalize(q))
	}
	s.p.mu.Unlock()
	return r, err
}

func (s *session) outside(what string) error {
	s.p.mu.Lock()
	s.p.outside = append(s.p.outside, what)
	s.p.mu.Unlock()
	return mysql.NewError(mysql.ER_UNKNOWN_ERROR, "outside the test primary's profile: "+what)
}

func (s *session) HandleFieldList(table, _ string) ([]*mysql.Field, error) {
	return nil, s.outside("COM_FIELD_LIST " + table)
}

func (s *session) HandleStmtPrepare(q string) (int, int, any, error) {
	return 0, 0, nil, s.outside("COM_STMT_PREPARE " + normalize(q))
}

func (s *session) HandleStmtExecute(_ any, q string, _ []any) (*mysql.Result, error) {
	return nil, s.outside("COM_STMT_EXECUTE " + normalize(q))
}

func (s *session) HandleStmtClose(any) error { return nil }

func (s *session) HandleOtherCommand(cmd byte, _ []byte) error {
	return s.outside(fmt.Sprintf("command %d", cmd))
}

func (s *session) HandleRegisterSlave(data []byte) error {
	if len(data) < 4 {
		return mysql.ErrMalformPacket
	}
	id := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
	s.p.mu.Lock()
	s.p.regs[s.c.ConnectionID()] = id
	s.p.mu.Unlock()
	return nil
}

func (s *session) HandleBinlogDump(pos mysql.Position) (*replication.BinlogStreamer, error) {
	return nil, s.outside("COM_BINLOG_DUMP by file and position " + pos.String() + " (pitcrew must auto-position by GTID)")
}
