// Package preflight checks a source and a target before a migration and
// says, for every problem, how to fix it. It only reads.
package preflight

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

// Levels of a Result.
const (
	Pass = "PASS"
	Warn = "WARN"
	Fail = "FAIL"
)

// Result is one line of the report.
type Result struct {
	Side   string `json:"side"` // source, target or both
	Check  string `json:"check"`
	Level  string `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Config says what to check.
type Config struct {
	Source, Target conn.Endpoint
	ServerID       uint32           // the replica server_id pitcrew will use
	Channel        string           // the channel's name: its own running replica connection is no clash
	MaxClockSkew   time.Duration    // default 5s
	Now            func() time.Time // default time.Now
	// Route: the channel's routing, so that tables it filters out are
	// not reported (zero: every table is replicated).
	Route route.Rules
}

// Failed reports whether any result is a FAIL.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Level == Fail {
			return true
		}
	}
	return false
}

// server is one side's connection and settings.
type server struct {
	side string
	db   *sql.DB
	info binlog.ServerInfo
	vars map[string]string
}

type report struct{ rs []Result }

func (r *report) add(side, check, level, detail, fix string) {
	if level == Pass {
		fix = ""
	}
	r.rs = append(r.rs, Result{Side: side, Check: check, Level: level, Detail: detail, Fix: fix})
}

// Run checks both sides. A side that cannot be reached is a FAIL line, and
// the checks that need it are left out.
func Run(ctx context.Context, cfg Config) []Result {
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &report{}
	src := open(ctx, r, "source", cfg.Source)
	tgt := open(ctx, r, "target", cfg.Target)
	if src != nil {
		defer src.db.Close()
		checkBinlog(r, src)
		checkRetention(ctx, r, src)
		checkServerID(ctx, r, src, cfg.ServerID, cfg.Channel)
		checkSourceGrants(ctx, r, src)
		checkTables(ctx, r, src)
		checkVersioned(ctx, r, src, route.New(cfg.Route))
	}
	if tgt != nil {
		defer tgt.db.Close()
		checkTargetGrants(ctx, r, tgt)
		checkStored(ctx, r, src, tgt, route.New(cfg.Route))
	}
	for _, s := range []*server{src, tgt} {
		if s != nil {
			checkClock(ctx, r, s, cfg)
		}
	}
	if src != nil && tgt != nil {
		checkParity(r, src, tgt)
		checkPacket(ctx, r, src, tgt)
	}
	return r.rs
}

// settings are the global variables read from a server: those of its
// flavour and version only (MySQL has no gtid_strict_mode, MariaDB no
// gtid_mode, MySQL 8.4 no expire_logs_days).
func settings(info binlog.ServerInfo) []string {
	vs := []string{
		"time_zone", "system_time_zone", "sql_mode", "character_set_server", "collation_server",
		"max_allowed_packet", "binlog_row_metadata", "binlog_expire_logs_seconds",
	}
	switch {
	case info.Flavor == "mariadb":
		vs = append(vs, "gtid_strict_mode", "expire_logs_days")
	case info.MySQLAtLeast(8, 4):
		vs = append(vs, "gtid_mode", "enforce_gtid_consistency")
	default:
		vs = append(vs, "gtid_mode", "enforce_gtid_consistency", "expire_logs_days")
	}
	return vs
}

func open(ctx context.Context, r *report, side string, e conn.Endpoint) *server {
	db, err := conn.Open(e)
	if err == nil {
		err = conn.Ping(ctx, db, side, e)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		if conn.ExplainTLS(err, side, e) != nil {
			r.add(side, "tls", Fail, err.Error(), tlsFix(side, err))
			return nil
		}
		r.add(side, "connect", Fail, err.Error(), "make the server reachable with the configured user and password")
		return nil
	}
	s := &server{side: side, db: db, vars: map[string]string{}}
	if s.info, err = binlog.Inspect(ctx, db); err != nil {
		r.add(side, "connect", Fail, err.Error(), "")
		db.Close()
		return nil
	}
	r.add(side, "connect", Pass, fmt.Sprintf("%s (%s)", e, s.info.Version), "")
	checkTLS(ctx, r, side, e, db)
	for _, v := range settings(s.info) {
		var val sql.NullString
		// Unknown variables differ between flavours and versions.
		if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL."+v).Scan(&val); err == nil {
			s.vars[v] = val.String
		}
	}
	return s
}

func (s *server) mariadb() bool { return s.info.Flavor == "mariadb" }

func checkBinlog(r *report, s *server) {
	if !s.info.LogBin {
		r.add(s.side, "log_bin", Fail, "binary logging is off", "turn it on (log-bin=... in the server config, then restart; on RDS: enable automated backups)")
		return
	}
	r.add(s.side, "log_bin", Pass, "on", "")
	if strings.EqualFold(s.info.BinlogFormat, "ROW") {
		r.add(s.side, "binlog_format", Pass, "ROW", "")
	} else {
		r.add(s.side, "binlog_format", Fail, s.info.BinlogFormat, "SET GLOBAL binlog_format='ROW' and set it in the server config (RDS: parameter group)")
	}
	if strings.EqualFold(s.info.RowImage, "FULL") {
		r.add(s.side, "binlog_row_image", Pass, "FULL", "")
	} else {
		r.add(s.side, "binlog_row_image", Fail, s.info.RowImage, "SET GLOBAL binlog_row_image='FULL' and set it in the server config")
	}
	switch meta := s.vars["binlog_row_metadata"]; {
	case strings.EqualFold(meta, "FULL"):
		r.add(s.side, "binlog_row_metadata", Pass, "FULL", "")
	case meta == "":
		r.add(s.side, "binlog_row_metadata", Warn, "not supported by this server: column names come from the target's definitions", "upgrade to MySQL 8.0.1+/MariaDB 10.5+ for column names in the log")
	default:
		r.add(s.side, "binlog_row_metadata", Warn, meta+": row events carry no column names; pitcrew maps columns by position", "SET GLOBAL binlog_row_metadata='FULL' (recommended)")
	}
	if s.mariadb() {
		if s.vars["gtid_strict_mode"] == "1" {
			r.add(s.side, "gtid_strict_mode", Pass, "on", "")
		} else {
			r.add(s.side, "gtid_strict_mode", Warn, "off: out-of-order GTIDs in a domain are possible", "SET GLOBAL gtid_strict_mode=1 and set it in the server config")
		}
		return
	}
	if strings.EqualFold(s.vars["gtid_mode"], "ON") && strings.EqualFold(s.vars["enforce_gtid_consistency"], "ON") {
		r.add(s.side, "gtid_mode", Pass, "ON, enforce_gtid_consistency=ON", "")
	} else {
		r.add(s.side, "gtid_mode", Fail, fmt.Sprintf("gtid_mode=%s enforce_gtid_consistency=%s", s.vars["gtid_mode"], s.vars["enforce_gtid_consistency"]),
			"set enforce_gtid_consistency=ON, then step gtid_mode OFF -> OFF_PERMISSIVE -> ON_PERMISSIVE -> ON (RDS: parameter group gtid-mode); before any snapshot")
	}
}

// checkTLS reports how the side's connections are encrypted, as the
// server sees its session (Ssl_version, Ssl_cipher). The source's binlog
// stream uses the same TLS settings as its SQL connections.
func checkTLS(ctx context.Context, r *report, side string, e conn.Endpoint, db *sql.DB) {
	st, err := conn.SessionTLS(ctx, db)
	if err != nil {
		r.add(side, "tls", Warn, "cannot read the session's TLS status: "+err.Error(), "check it by hand: SHOW SESSION STATUS LIKE 'Ssl_cipher'")
		return
	}
	mode := e.TLS.Effective()
	conns := "SQL connections"
	if side == "source" {
		conns = "SQL connections and binlog stream"
	}
	switch {
	case st.Encrypted() && e.TLS.Verifies():
		r.add(side, "tls", Pass, fmt.Sprintf("%s encrypted: %s, mode %s", conns, st, mode), "")
	case st.Encrypted():
		r.add(side, "tls", Pass, fmt.Sprintf("%s encrypted: %s, mode %s: the server's certificate is not verified (verify-identity with %s.tls.ca is recommended)", conns, st, mode, side), "")
	case conn.Loopback(e.Host):
		r.add(side, "tls", Pass, fmt.Sprintf("%s unencrypted (mode %s), to %s on this host", conns, mode, e.Host), "")
	default:
		fix := fmt.Sprintf("set %s.tls.mode: verify-identity with %s.tls.ca (the server's CA bundle)", side, side)
		if mode != conn.ModeDisabled {
			fix = "the server offers no TLS: enable it (ssl_cert, ssl_key in the server's config), then " + fix
		}
		r.add(side, "tls", Warn, fmt.Sprintf("%s unencrypted (mode %s) across the network to %s: passwords and rows travel in clear text", conns, mode, e.Host), fix)
	}
}

// tlsFix is the fix line for a connect that failed on TLS.
func tlsFix(side string, err error) string {
	if conn.NoTLS(err) {
		return fmt.Sprintf("enable TLS on the server (ssl_cert, ssl_key; RDS always offers it), or on a trusted network set %s.tls.mode: preferred", side)
	}
	return fmt.Sprintf("set %s.tls.ca to the CA bundle that signed the server's certificate, and connect by a name the certificate holds (or set %s.tls.server_name)", side, side)
}
