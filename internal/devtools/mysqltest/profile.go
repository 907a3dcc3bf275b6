package mysqltest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Profile is a MySQL version as pitcrew sees it: what the server reports
// and which statement forms it has. The rules below answer every query
// pitcrew (and the drivers under it) sends to a MySQL source; a query no
// rule answers fails the test that sent it, so the rules are the reviewed
// list of what pitcrew needs from MySQL.
type Profile struct {
	Name    string // "8.0", "8.4"
	Version string // what SELECT @@version and the handshake report
	// RDS: the server has RDS's mysql.rds_* procedures (binlog retention
	// through mysql.rds_show_configuration).
	RDS bool
	// RetentionHours is RDS's 'binlog retention hours' (nil: NULL, RDS's
	// default, binlogs purged as soon as possible).
	RetentionHours *int
}

// MySQL80 and MySQL84 are the two profiles.
var (
	MySQL80 = Profile{Name: "8.0", Version: "8.0.40"}
	MySQL84 = Profile{Name: "8.4", Version: "8.4.3"}
)

// at84 says whether the 8.4 forms apply.
func (p Profile) at84() bool { return p.Name == "8.4" }

// removed84 are statement forms MySQL 8.4 no longer parses (ER_PARSE_ERROR),
// replaced by SHOW BINARY LOG STATUS, SHOW REPLICAS, SHOW REPLICA STATUS,
// CHANGE REPLICATION SOURCE, START/STOP REPLICA, RESET BINARY LOGS AND GTIDS.
var removed84 = regexp.MustCompile(`(?i)^(SHOW MASTER STATUS|SHOW SLAVE HOSTS|SHOW SLAVE STATUS|CHANGE MASTER|START SLAVE|STOP SLAVE|RESET MASTER|PURGE MASTER LOGS)\b`)

// added are forms older servers do not parse: SHOW BINARY LOG STATUS is
// 8.2+, SHOW REPLICAS and SHOW REPLICA STATUS are 8.0.22+ (8.0.40 has them).
var added82 = regexp.MustCompile(`(?i)^SHOW BINARY LOG STATUS\b`)

// variables are the global variables a MySQL 8 primary reports, as the
// server's defaults or as a source set up for pitcrew (binlog_row_metadata
// FULL, GTIDs on). A name missing here is ER_UNKNOWN_SYSTEM_VARIABLE.
func (p Profile) variables() map[string]any {
	v := map[string]any{
		"binlog_checksum":            "CRC32",
		"binlog_format":              "ROW",
		"binlog_row_image":           "FULL",
		"binlog_row_metadata":        "FULL",
		"binlog_expire_logs_seconds": int64(2592000),
		"character_set_server":       "utf8mb4",
		"collation_server":           "utf8mb4_0900_ai_ci",
		"enforce_gtid_consistency":   "ON",
		"gtid_mode":                  "ON",
		"log_bin":                    int64(1),
		"max_allowed_packet":         int64(67108864),
		"sql_mode":                   "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
		"system_time_zone":           "UTC",
		"time_zone":                  "SYSTEM",
		"version":                    p.Version,
	}
	if !p.at84() {
		// Deprecated in 8.0, removed in 8.4.
		v["expire_logs_days"] = int64(0)
	}
	if p.RDS {
		v["basedir"] = "/rdsdbbin/mysql-" + p.Version + ".R1/"
	}
	return v
}

// rule answers the queries its pattern matches (case-insensitive, on the
// query with whitespace collapsed and a trailing ';' removed).
type rule struct {
	pattern *regexp.Regexp
	answer  func(s *session, m []string) (*mysql.Result, error)
}

func rx(s string) *regexp.Regexp { return regexp.MustCompile(`(?is)^` + s + `$`) }

// rules: the profile's answers. Each names who sends it.
var rules = []rule{
	// go-mysql's replica (replication.BinlogSyncer.registerSlave).
	{rx(`SHOW GLOBAL VARIABLES LIKE 'BINLOG_CHECKSUM'`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"Variable_name", "Value"}, []any{"binlog_checksum", "CRC32"})
	}},
	{rx(`SET @master_binlog_checksum\s*=\s*'(\w+)'\s*,\s*@source_binlog_checksum\s*=\s*'\w+'`), func(s *session, m []string) (*mysql.Result, error) {
		s.vars["master_binlog_checksum"] = m[1]
		return ok()
	}},
	{rx(`SET @master_heartbeat_period\s*=\s*(\d+)\s*,\s*@source_heartbeat_period\s*=\s*\d+`), func(s *session, m []string) (*mysql.Result, error) {
		// Nanoseconds, as MySQL reads it.
		n, _ := strconv.ParseInt(m[1], 10, 64)
		s.heartbeat = time.Duration(n)
		return ok()
	}},
	{rx(`SET @slave_uuid\s*=\s*'([-0-9a-f]+)'\s*,\s*@replica_uuid\s*=\s*'[-0-9a-f]+'`), func(s *session, m []string) (*mysql.Result, error) {
		s.vars["replica_uuid"] = m[1]
		return ok()
	}},
	{rx(`SET NAMES (\w+)`), func(s *session, _ []string) (*mysql.Result, error) { return ok() }},
	// go-mysql's BinlogSyncer.Close ends its dump session this way.
	{rx(`KILL (\d+)`), func(s *session, m []string) (*mysql.Result, error) {
		id, _ := strconv.ParseUint(m[1], 10, 32)
		if !s.p.kill(uint32(id)) {
			return nil, mysql.NewDefaultError(mysql.ER_NO_SUCH_THREAD, id)
		}
		return ok()
	}},
	// go-sql-driver/mysql reads the packet limit when it connects.
	{rx(`SELECT @@max_allowed_packet`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"@@max_allowed_packet"}, []any{int64(67108864)})
	}},
	// binlog.Inspect.
	{rx(`SELECT @@version, @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"@@version", "@@server_id", "@@log_bin", "@@binlog_format", "@@binlog_row_image"},
			[]any{s.p.o.Profile.Version, int64(s.p.o.ServerID), int64(1), "ROW", "FULL"})
	}},
	// binlog.Retention, before it asks for expire_logs_days.
	{rx(`SELECT @@version`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"@@version"}, []any{s.p.o.Profile.Version})
	}},
	// binlog.Executed, Purged; the start checks; catchup's target.
	{rx(`SELECT @@GLOBAL\.gtid_executed`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"@@GLOBAL.gtid_executed"}, []any{mysqlSetText(s.p.Executed())})
	}},
	{rx(`SELECT @@GLOBAL\.gtid_purged`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"@@GLOBAL.gtid_purged"}, []any{mysqlSetText(s.p.Purged())})
	}},
	// binlog.Retention: RDS is found by its procedure.
	{rx(`SELECT COUNT\(\*\) FROM information_schema\.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = 'rds_show_configuration'`), func(s *session, _ []string) (*mysql.Result, error) {
		n := int64(0)
		if s.p.o.Profile.RDS {
			n = 1
		}
		return rows([]string{"COUNT(*)"}, []any{n})
	}},
	{rx(`CALL mysql\.rds_show_configuration`), func(s *session, _ []string) (*mysql.Result, error) {
		if !s.p.o.Profile.RDS {
			return nil, mysql.NewError(1305, "PROCEDURE mysql.rds_show_configuration does not exist")
		}
		var hours any
		if h := s.p.o.Profile.RetentionHours; h != nil {
			hours = strconv.Itoa(*h)
		}
		return rows([]string{"name", "value", "description"},
			[]any{"binlog retention hours", hours, "binlog retention hours specifies the duration in hours before binary logs are automatically deleted."},
			[]any{"source delay", "0", "source delay specifies how many seconds of replication delay the replica should introduce after the source."},
			[]any{"target delay", "0", "target delay specifies how many seconds of replication delay the replica should introduce before applying."})
	}},
	// Single global variables: binlog.Retention, preflight's settings.
	{rx(`SELECT @@GLOBAL\.(\w+)`), func(s *session, m []string) (*mysql.Result, error) {
		v, ok := s.p.o.Profile.variables()[strings.ToLower(m[1])]
		if !ok {
			// The server's answer, but pitcrew must not ask: it is a
			// MariaDB variable, or one this version removed.
			return nil, outsideErr{mysql.NewError(1193, fmt.Sprintf("Unknown system variable '%s'", m[1]))}
		}
		return rows([]string{"@@GLOBAL." + m[1]}, []any{v})
	}},
	// preflight: TLS of this session, as the server sees it.
	{rx(`SHOW SESSION STATUS WHERE Variable_name IN \('Ssl_version', 'Ssl_cipher'\)`), func(s *session, _ []string) (*mysql.Result, error) {
		version, cipher := s.tls()
		return rows([]string{"Variable_name", "Value"}, []any{"Ssl_cipher", cipher}, []any{"Ssl_version", version})
	}},
	// preflight: replicas registered now (COM_REGISTER_SLAVE).
	{rx(`SHOW REPLICAS`), func(s *session, _ []string) (*mysql.Result, error) {
		names := []string{"Server_Id", "Host", "Port", "Source_Id", "Replica_UUID"}
		var out [][]any
		for _, r := range s.p.replicas() {
			out = append(out, []any{int64(r), "", int64(0), int64(s.p.o.ServerID), ""})
		}
		return rows(names, out...)
	}},
	{rx(`SHOW GRANTS`), func(s *session, _ []string) (*mysql.Result, error) {
		user := "`" + s.user + "`@`%`"
		return rows([]string{"Grants for " + s.user + "@%"},
			[]any{"GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO " + user})
	}},
	// preflight's table checks: the primary keeps no catalogue, so it
	// has no user tables to report (a real answer for an empty server).
	{rx(`SELECT CONCAT\(t\.TABLE_SCHEMA, '\.', t\.TABLE_NAME.* FROM information_schema\.TABLES t .*`), empty("table")},
	{rx(`SELECT CONCAT\(TABLE_SCHEMA, '\.', TABLE_NAME\) FROM information_schema\.TABLES WHERE TABLE_TYPE = 'SYSTEM VERSIONED' ORDER BY 1`), empty("table")},
	{rx(`SELECT MAX\(t\.AVG_ROW_LENGTH\) FROM information_schema\.TABLES t .*`), func(s *session, _ []string) (*mysql.Result, error) {
		return rows([]string{"MAX(t.AVG_ROW_LENGTH)"}, []any{nil})
	}},
	// preflight's clock check.
	{rx(`SELECT UNIX_TIMESTAMP\(NOW\(6\)\)`), func(s *session, _ []string) (*mysql.Result, error) {
		now := time.Now()
		return rows([]string{"UNIX_TIMESTAMP(NOW(6))"}, []any{fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)})
	}},
}

// answer finds the rule for a query. found is false for a query outside
// the profile, and for a form the profile's version removed or does not
// have yet (answered with the server's parse error all the same).
func (p Profile) answer(s *session, query string) (r *mysql.Result, err error, found bool) {
	q := normalize(query)
	if p.at84() && removed84.MatchString(q) {
		return nil, parseError(q), false
	}
	if !p.at84() && added82.MatchString(q) {
		return nil, parseError(q), false
	}
	for _, r := range rules {
		if m := r.pattern.FindStringSubmatch(q); m != nil {
			res, err := r.answer(s, m)
			if o, ok := err.(outsideErr); ok {
				return nil, o.MyError, false
			}
			return res, err, true
		}
	}
	return nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "query outside the test primary's MySQL "+p.Name+" profile: "+q), false
}

// outsideErr is a server error for a query pitcrew should not send.
type outsideErr struct{ *mysql.MyError }

func normalize(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	return strings.TrimSuffix(q, ";")
}

func parseError(q string) error {
	word := q
	if i := strings.IndexByte(q, ' '); i > 0 {
		word = q[i+1:]
	}
	return mysql.NewError(mysql.ER_PARSE_ERROR, fmt.Sprintf("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '%.80s' at line 1", word))
}

func ok() (*mysql.Result, error) { return nil, nil }

func empty(col string) func(*session, []string) (*mysql.Result, error) {
	return func(*session, []string) (*mysql.Result, error) { return rows([]string{col}) }
}

func rows(names []string, values ...[]any) (*mysql.Result, error) {
	for _, row := range values {
		for i, v := range row {
			// go-mysql writes an empty string as NULL; as bytes it is ''.
			if s, ok := v.(string); ok {
				row[i] = append([]byte{}, s...)
			}
		}
	}
	rs, err := mysql.BuildSimpleTextResultset(names, values)
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}
