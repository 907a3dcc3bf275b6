package preflight

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// rdsFix is the exact call that keeps binlogs on RDS for a week.
const rdsFix = "CALL mysql.rds_set_configuration('binlog retention hours', 168);"

func checkRetention(ctx context.Context, r *report, s *server) {
	hours, rds, err := binlog.Retention(ctx, s.db)
	switch {
	case err != nil:
		r.add(s.side, "binlog retention", Warn, "cannot read it: "+err.Error(), "check it by hand")
	case rds && hours < 0:
		r.add(s.side, "binlog retention", Fail, "RDS 'binlog retention hours' is NULL: binlogs are purged as soon as possible, before a replica built from a snapshot can catch up (error 1236)", rdsFix)
	case hours == 0:
		r.add(s.side, "binlog retention", Pass, "binlogs are not purged by age", "")
	case hours < 24:
		fix := "raise expire_logs_days / binlog_expire_logs_seconds to cover snapshot restore plus catch-up (e.g. 7 days)"
		if rds {
			fix = rdsFix
		}
		r.add(s.side, "binlog retention", Warn, fmt.Sprintf("%.1f hours: a snapshot restore plus catch-up may take longer", hours), fix)
	default:
		r.add(s.side, "binlog retention", Pass, fmt.Sprintf("%.0f hours", hours), "")
	}
}

func checkServerID(ctx context.Context, r *report, s *server, ours uint32, channel string) {
	if s.info.ServerID == ours {
		r.add(s.side, "server_id", Fail, fmt.Sprintf("the source's server_id is %d, the same as pitcrew's", ours), "set server_id in pitcrew's config to a value no server or replica uses")
		return
	}
	q := "SHOW REPLICAS"
	if s.mariadb() {
		q = "SHOW SLAVE HOSTS"
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err == nil {
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if rows.Scan(ptrs...) == nil && len(vals) > 0 && vals[0].String == strconv.FormatUint(uint64(ours), 10) {
				if channel != "" && len(vals) > 1 && vals[1].String == binlog.ReportHost(channel) {
					r.add(s.side, "server_id", Pass, fmt.Sprintf("source %d, pitcrew %d (channel %s is running and connected)", s.info.ServerID, ours, channel), "")
					return
				}
				r.add(s.side, "server_id", Fail, fmt.Sprintf("a replica with server_id %d is connected to the source", ours),
					"set server_id in pitcrew's config to an unused value (two replicas with one id kick each other off)")
				return
			}
		}
	}
	r.add(s.side, "server_id", Pass, fmt.Sprintf("source %d, pitcrew %d", s.info.ServerID, ours), "")
}

// grants returns the current user's privileges, upper-cased, from SHOW GRANTS.
func grants(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var all strings.Builder
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return "", err
		}
		// Only global grants (ON *.*) matter for replication.
		if strings.Contains(g, " ON *.* ") {
			all.WriteString(strings.ToUpper(g) + "\n")
		}
	}
	return all.String(), rows.Err()
}

func missingPrivileges(g string, need [][]string) []string {
	if strings.Contains(g, "ALL PRIVILEGES") {
		return nil
	}
	var missing []string
	for _, alternatives := range need {
		found := false
		for _, p := range alternatives {
			if strings.Contains(g, p) {
				found = true
			}
		}
		if !found {
			missing = append(missing, strings.Join(alternatives, " or "))
		}
	}
	return missing
}

func checkSourceGrants(ctx context.Context, r *report, s *server) {
	g, err := grants(ctx, s.db)
	if err != nil {
		r.add(s.side, "privileges", Warn, "SHOW GRANTS failed: "+err.Error(), "check the user's privileges by hand")
		return
	}
	need := [][]string{{"REPLICATION SLAVE"}, {"REPLICATION CLIENT", "BINLOG MONITOR"}, {"SELECT"}}
	if m := missingPrivileges(g, need); len(m) > 0 {
		r.add(s.side, "privileges", Fail, "the user lacks "+strings.Join(m, ", "),
			"GRANT REPLICATION SLAVE, "+map[bool]string{true: "BINLOG MONITOR", false: "REPLICATION CLIENT"}[s.mariadb()]+", SELECT ON *.* TO the user")
		return
	}
	r.add(s.side, "privileges", Pass, "replication and SELECT", "")
}

func checkTargetGrants(ctx context.Context, r *report, s *server) {
	g, err := grants(ctx, s.db)
	if err != nil {
		r.add(s.side, "privileges", Warn, "SHOW GRANTS failed: "+err.Error(), "check the user's privileges by hand")
		return
	}
	var need [][]string
	for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX"} {
		need = append(need, []string{p})
	}
	if m := missingPrivileges(g, need); len(m) > 0 {
		r.add(s.side, "privileges", Fail, "the user lacks "+strings.Join(m, ", "), "GRANT "+strings.Join(m, ", ")+" ON *.* TO the user (it creates _pitcrew and applies DDL)")
		return
	}
	r.add(s.side, "privileges", Pass, "DML and DDL", "")
}

const userTables = `FROM information_schema.TABLES t WHERE t.TABLE_TYPE = 'BASE TABLE'
 AND t.TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', '_pitcrew')`

func list(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	return conn.Strings(ctx, db, q)
}

func short(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

func checkTables(ctx context.Context, r *report, s *server) {
	noPK, err := list(ctx, s.db, "SELECT CONCAT(t.TABLE_SCHEMA, '.', t.TABLE_NAME) "+userTables+
		" AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY') ORDER BY 1")
	switch {
	case err != nil:
		r.add(s.side, "primary keys", Warn, "cannot list tables: "+err.Error(), "")
	case len(noPK) > 0:
		r.add(s.side, "primary keys", Warn, fmt.Sprintf("%d tables without a primary key (%s): each UPDATE/DELETE on them scans the target table", len(noPK), short(noPK)),
			"add a primary key (or accept slow apply on these tables)")
	default:
		r.add(s.side, "primary keys", Pass, "every table has one", "")
	}
	other, err := list(ctx, s.db, "SELECT CONCAT(t.TABLE_SCHEMA, '.', t.TABLE_NAME, ' (', t.ENGINE, ')') "+userTables+" AND t.ENGINE <> 'InnoDB' ORDER BY 1")
	switch {
	case err != nil:
		r.add(s.side, "engines", Warn, "cannot list tables: "+err.Error(), "")
	case len(other) > 0:
		r.add(s.side, "engines", Warn, fmt.Sprintf("%d non-InnoDB tables (%s): not transactional, so a crash on the source can log changes that a rollback does not undo", len(other), short(other)),
			"ALTER TABLE ... ENGINE=InnoDB")
	default:
		r.add(s.side, "engines", Pass, "all InnoDB", "")
	}
}

// checkVersioned fails on system-versioned tables the channel replicates:
// their rows carry the history columns (row_start, row_end), which SQL
// cannot write as the source logged them (an UPDATE through SQL makes a
// history row of its own), so the channel would stop at their first
// change.
func checkVersioned(ctx context.Context, r *report, s *server, rt *route.Router) {
	all, err := list(ctx, s.db, `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_TYPE = 'SYSTEM VERSIONED' ORDER BY 1`)
	if err != nil {
		r.add(s.side, "system-versioned tables", Warn, "cannot list tables: "+err.Error(), "")
		return
	}
	var names []string
	for _, n := range all {
		if db, t, _ := strings.Cut(n, "."); rt.Included(db, t) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		r.add(s.side, "system-versioned tables", Pass, "none replicated", "")
		return
	}
	r.add(s.side, "system-versioned tables", Fail,
		fmt.Sprintf("%d system-versioned tables (%s): pitcrew cannot write their history rows (row_start/row_end) as the source logged them; the channel stops at their first change", len(names), short(names)),
		"exclude them (route: exclude: [schema.table]) and copy them another way (mariadb-dump of the table, history included with system_versioning_insert_history), or ALTER TABLE ... DROP SYSTEM VERSIONING on the source")
}

func checkClock(ctx context.Context, r *report, s *server, cfg Config) {
	var ts float64
	before := cfg.Now()
	if err := s.db.QueryRowContext(ctx, "SELECT UNIX_TIMESTAMP(NOW(6))").Scan(&ts); err != nil {
		r.add(s.side, "clock", Warn, "cannot read the server's clock: "+err.Error(), "")
		return
	}
	local := before.Add(cfg.Now().Sub(before) / 2)
	skew := time.Duration((ts - float64(local.UnixNano())/1e9) * float64(time.Second))
	if math.Abs(float64(skew)) > float64(cfg.MaxClockSkew) {
		r.add(s.side, "clock", Warn, fmt.Sprintf("%s off from this host's clock: lag figures will be off by as much", skew.Round(time.Millisecond)), "run NTP/chrony on both hosts")
		return
	}
	r.add(s.side, "clock", Pass, fmt.Sprintf("within %s of this host", cfg.MaxClockSkew), "")
}

func checkParity(r *report, src, tgt *server) {
	for _, v := range []string{"time_zone", "sql_mode", "character_set_server", "collation_server"} {
		a, b := src.vars[v], tgt.vars[v]
		if v == "time_zone" && a == "SYSTEM" && b == "SYSTEM" {
			a, b = src.vars["system_time_zone"], tgt.vars["system_time_zone"]
		}
		if a == b {
			r.add("both", v, Pass, a, "")
			continue
		}
		fix := fmt.Sprintf("SET GLOBAL %s on the target to the source's value (and in its config)", v)
		if strings.Contains(a, "_0900_") && tgt.mariadb() {
			// MySQL 8's UCA 9.0 collations; MariaDB's UCA 14.0 ones are
			// their nearest (10.10+), utf8mb4_unicode_520_ci on older.
			near := strings.Replace(a, "_0900_", "_uca1400_", 1)
			fix = fmt.Sprintf("MariaDB has no %s: SET GLOBAL %s = '%s' on the target (MariaDB 10.10+; older: utf8mb4_unicode_520_ci), and in its config", a, v, near)
		}
		r.add("both", v, Warn, fmt.Sprintf("source %q, target %q: pitcrew applies row values exactly either way, but the application will see the difference after the switch", a, b), fix)
	}
}

func checkPacket(ctx context.Context, r *report, src, tgt *server) {
	sp, _ := strconv.ParseInt(src.vars["max_allowed_packet"], 10, 64)
	tp, _ := strconv.ParseInt(tgt.vars["max_allowed_packet"], 10, 64)
	var biggest sql.NullInt64
	_ = src.db.QueryRowContext(ctx, "SELECT MAX(t.AVG_ROW_LENGTH) "+userTables).Scan(&biggest)
	need := max(sp, 4*biggest.Int64)
	if tp < need {
		r.add("both", "max_allowed_packet", Fail, fmt.Sprintf("target %d < %d (source %d, largest average row %d bytes): big rows or batches will fail on the target", tp, need, sp, biggest.Int64),
			fmt.Sprintf("SET GLOBAL max_allowed_packet=%d on the target (and in its config)", need))
		return
	}
	r.add("both", "max_allowed_packet", Pass, fmt.Sprintf("target %d >= %d", tp, need), "")
}

// checkStored says what pitcrew does with the target's triggers and
// events (internal/stored): the source's triggers are guarded, so they do
// not fire again for the rows pitcrew applies (native row-based
// replication does not fire them either), the source's events are parked
// (SLAVESIDE_DISABLED) until the cut-over moves them; the target's own
// are left alone, and its own triggers fire for pitcrew's writes too.
func checkStored(ctx context.Context, r *report, src, tgt *server, rt *route.Router) {
	if src == nil {
		return
	}
	plan, ts, err := stored.Plan(ctx, tgt.db, src.db, rt.Origin)
	switch {
	case err != nil:
		r.add(tgt.side, "triggers", Warn, "cannot list triggers: "+err.Error(), "")
	case len(ts.Guarded)+len(ts.Own) == 0:
		r.add(tgt.side, "triggers", Pass, "none", "")
	default:
		detail := fmt.Sprintf("%d of the source's triggers guarded while pitcrew applies (%s; %d still to guard, at the next start): they fire for the application's writes, not again for pitcrew's; `pitcrew triggers restore` gives their definitions back",
			len(ts.Guarded), short(ts.Guarded), len(plan.Guard))
		if len(ts.Own) == 0 {
			r.add(tgt.side, "triggers", Pass, detail, "")
			break
		}
		r.add(tgt.side, "triggers", Warn, detail+fmt.Sprintf("; %d only on the target (%s), which fire for every row pitcrew applies too", len(ts.Own), short(ts.Own)),
			"keep those if they must see replicated rows (an audit of what arrives); else drop them on the target until the switch-over")
	}
	ep, es, err := stored.PlanEvents(ctx, tgt.db, src.db, func(db string) (string, bool) { s, _, ok := rt.Origin(db, ""); return s, ok })
	switch {
	case err != nil:
		r.add(tgt.side, "events", Warn, "cannot list events: "+err.Error(), "")
	case len(es.Parked)+len(es.Own) == 0:
		r.add(tgt.side, "events", Pass, "none", "")
	default:
		detail := fmt.Sprintf("%d of the source's events parked on the target (%s; SLAVESIDE_DISABLED, %d still to park, at the next start) until the cut-over enables them there", len(es.Parked), short(es.Parked), len(ep.Park))
		if len(es.Own) == 0 {
			r.add(tgt.side, "events", Pass, detail, "")
			break
		}
		r.add(tgt.side, "events", Warn, detail+fmt.Sprintf("; %d only on the target (%s), left as they are", len(es.Own), short(es.Own)),
			"disable those of the target's own events that write replicated tables (ALTER EVENT ... DISABLE) until the switch-over")
	}
}

// HasGlobalPrivilege tells whether the connected user holds any of the
// alternatives ON *.* (ALL PRIVILEGES counts).
func HasGlobalPrivilege(ctx context.Context, db *sql.DB, alternatives ...string) (bool, error) {
	g, err := grants(ctx, db)
	if err != nil {
		return false, fmt.Errorf("SHOW GRANTS: %w", err)
	}
	return len(missingPrivileges(g, [][]string{alternatives})) == 0, nil
}
