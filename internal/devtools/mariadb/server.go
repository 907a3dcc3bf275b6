// Package mariadb launches throwaway MariaDB servers from the installed
// binaries, for the sandbox, the benchmarks and (through testenv) the tests:
// Start initialises a data dir of its own and starts a server on a loopback
// port, Stop/Kill/Restart end or cycle it, Options.Detach lets it outlive the
// process (the sandbox), NewCerts writes throwaway TLS certificates and
// StartReplica points one server at another with the server's own
// replication. Every server listens on a free loopback port, logs a binlog in
// ROW format with GTID strict mode, and has its own server_id and
// gtid_domain_id.
//
// It does not import testing: it is linked into the pitcrew binary (the
// sandbox, bench), and testenv builds its testing.TB helpers on top of it.
package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// ErrNotInstalled means mariadbd or mariadb-install-db is not on this machine.
var ErrNotInstalled = errors.New("MariaDB server is not installed (mariadbd not found): install it with `apt-get install mariadb-server`")

// Options describe one server. Zero values take the defaults shown.
type Options struct {
	Dir          string   // data dir root; required
	ServerID     uint32   // default 1
	DomainID     uint32   // gtid_domain_id, default = ServerID
	Port         int      // default: a free loopback port
	BinlogFormat string   // default ROW; "OFF" turns the binlog off
	RowMetadata  string   // binlog_row_metadata, default FULL
	Extra        []string // more mariadbd options, e.g. "--max-allowed-packet=64M"
	Detach       bool     // own session: the server outlives this process (sandbox)
	// TLS, when set, serves TLS with these certificates and refuses
	// plaintext TCP connections (require_secure_transport=ON); Endpoint
	// then reaches the server under verify-identity with the client
	// certificate.
	TLS *Certs
	// PlaintextToo, with TLS: plaintext connections are accepted as well
	// (require_secure_transport off), for comparing the two on one server.
	PlaintextToo bool
}

// Server is a running (or stopped) throwaway server.
type Server struct {
	Options
	cmd *exec.Cmd
}

// Binaries returns the paths of mariadbd and mariadb-install-db.
func Binaries() (server, install string, err error) {
	server, err = lookPath("mariadbd", "/usr/sbin/mariadbd", "/usr/libexec/mariadbd")
	if err != nil {
		return "", "", ErrNotInstalled
	}
	install, err = lookPath("mariadb-install-db", "/usr/bin/mariadb-install-db")
	if err != nil {
		return "", "", ErrNotInstalled
	}
	return server, install, nil
}

func lookPath(name string, fallbacks ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range fallbacks {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Start initialises the data dir if it is new, starts the server and waits
// until it accepts connections.
func Start(ctx context.Context, o Options) (*Server, error) {
	server, install, err := Binaries()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("mariadb: Options.Dir is required")
	}
	if o.ServerID == 0 {
		o.ServerID = 1
	}
	if o.DomainID == 0 {
		o.DomainID = o.ServerID
	}
	if o.BinlogFormat == "" {
		o.BinlogFormat = "ROW"
	}
	if o.RowMetadata == "" {
		o.RowMetadata = "FULL"
	}
	if o.Port == 0 {
		if o.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{Options: o}
	if _, err := os.Stat(s.dataDir()); os.IsNotExist(err) {
		if err := s.initialise(ctx, install); err != nil {
			return nil, err
		}
	}
	if err := s.start(ctx, server); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

func (s *Server) tmpDir() string { return filepath.Join(s.Dir, "tmp") }

// Socket is the server's unix socket path.
func (s *Server) Socket() string { return filepath.Join(s.Dir, "mysqld.sock") }

// PIDFile is where the server writes its pid.
func (s *Server) PIDFile() string { return filepath.Join(s.Dir, "mysqld.pid") }

// ErrorLog is the server's error log.
func (s *Server) ErrorLog() string { return filepath.Join(s.Dir, "error.log") }

func (s *Server) initialise(ctx context.Context, install string) error {
	if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return err
	}
	// A tmpdir of its own: bootstraps running at once in a shared /tmp
	// collide on their temporary table names.
	cmd := exec.CommandContext(ctx, install, "--no-defaults", "--datadir="+s.dataDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--user="+currentUser(),
		"--tmpdir="+s.tmpDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadb-install-db in %s: %w\n%s", s.dataDir(), err, out)
	}
	return nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid())
}

func (s *Server) args() []string {
	args := []string{
		"--no-defaults",
		"--datadir=" + s.dataDir(),
		"--tmpdir=" + s.tmpDir(),
		"--user=" + currentUser(),
		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1",
		"--socket=" + s.Socket(),
		"--pid-file=" + s.PIDFile(),
		"--log-error=" + s.ErrorLog(),
		"--server-id=" + strconv.FormatUint(uint64(s.ServerID), 10),
		"--gtid-domain-id=" + strconv.FormatUint(uint64(s.DomainID), 10),
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=64M",
		"--innodb-flush-log-at-trx-commit=2",
		"--max-connections=200",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--max-allowed-packet=64M",
	}
	if s.BinlogFormat != "OFF" {
		args = append(args,
			"--log-bin="+filepath.Join(s.dataDir(), "binlog"),
			"--binlog-format="+s.BinlogFormat,
			"--binlog-row-image=FULL",
			"--binlog-row-metadata="+s.RowMetadata,
			"--gtid-strict-mode=1",
			"--sync-binlog=0",
		)
	}
	if s.TLS != nil {
		args = append(args, s.TLS.serverArgs(!s.PlaintextToo)...)
	}
	return append(args, s.Extra...)
}

func (s *Server) start(ctx context.Context, server string) error {
	if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return err
	}
	cmd := exec.Command(server, s.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !s.Detach, Setsid: s.Detach}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting mariadbd: %w", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.ping(ctx); err == nil {
			if s.Detach {
				_ = cmd.Process.Release()
			}
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("mariadbd exited during start-up (%v); its log %s ends:\n%s", err, s.ErrorLog(), tail(s.ErrorLog(), 15))
		case <-ctx.Done():
			s.Kill()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("mariadbd on port %d not ready after 60s; its log %s ends:\n%s", s.Port, s.ErrorLog(), tail(s.ErrorLog(), 15))
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second)
	if err != nil {
		return err
	}
	c.Close()
	db, err := conn.Open(s.Endpoint())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Endpoint is how to reach the server as root.
func (s *Server) Endpoint() conn.Endpoint {
	e := conn.Endpoint{Host: "127.0.0.1", Port: s.Port, User: "root"}
	if s.TLS != nil {
		e.TLS = s.TLS.ClientTLS()
	}
	return e
}

// DSN is a go-sql-driver DSN for the server, for people and tools.
func (s *Server) DSN() string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/", s.Port)
}

// DB opens a pool to the server.
func (s *Server) DB() (*sql.DB, error) { return conn.Open(s.Endpoint()) }

func (s *Server) pid() int {
	if s.cmd != nil && s.cmd.Process != nil && !s.Detach {
		return s.cmd.Process.Pid
	}
	b, err := os.ReadFile(s.PIDFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	pid := s.pid()
	return pid > 0 && syscall.Kill(pid, 0) == nil && s.ping(context.Background()) == nil
}

// Stop shuts the server down cleanly (SIGTERM), killing it after 30s.
func (s *Server) Stop() error {
	pid := s.pid()
	if pid <= 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			s.cmd = nil
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("mariadbd pid %d ignored SIGTERM for 30s and was killed", pid)
}

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if pid := s.pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 200 && alive(pid); i++ {
			time.Sleep(25 * time.Millisecond)
		}
	}
	s.cmd = nil
}

// Restart stops the server cleanly and starts it again on the same port.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	server, _, err := Binaries()
	if err != nil {
		return err
	}
	return s.start(ctx, server)
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie child still answers signal 0; look at its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) < 3 || f[2] != "Z"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CPU is the server process's CPU time so far (user + system), from
// /proc; zero when it cannot be read.
func (s *Server) CPU() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid()))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field, stime the 15th, in clock ticks (100 per second here).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
