package binlog

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Purged returns the transactions the server no longer has in its binlogs:
// MySQL @@gtid_purged; MariaDB the GTID position at the start of its oldest
// binlog file (everything up to it is gone).
func Purged(ctx context.Context, db *sql.DB, flavor string) (gtid.Set, error) {
	if flavor == gtid.MySQL {
		return queryGTID(ctx, db, flavor, "SELECT @@GLOBAL.gtid_purged")
	}
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return gtid.Set{}, fmt.Errorf("SHOW BINARY LOGS (needs BINLOG MONITOR / REPLICATION CLIENT): %w", err)
	}
	var oldest string
	if rows.Next() {
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(vals); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			rows.Close()
			return gtid.Set{}, err
		}
		oldest = name
	}
	rows.Close()
	if oldest == "" {
		return gtid.Empty(flavor), nil
	}
	var pos sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, 4)", oldest).Scan(&pos); err != nil {
		return gtid.Set{}, fmt.Errorf("GTID position of the oldest binlog %s: %w", oldest, err)
	}
	return gtid.Parse(flavor, pos.String)
}

// GapError says the source purged transactions a replica still needs.
type GapError struct {
	Missing string // gtid.Gap's description
	Count   int64
	Purged  string // the source's purged set / oldest position
	Have    string // what the target has
}

func (e *GapError) Error() string {
	return fmt.Sprintf("the source has purged binlogs the target still needs: missing %s (%d transactions; target at %q, source purged up to %q). "+
		"Remedies: re-seed the target from a new snapshot or dump and start with --start-from target (or --start-from-dump FILE); "+
		"start from a newer snapshot; raise the source's binlog retention (expire_logs_days / binlog_expire_logs_seconds, on RDS "+
		"CALL mysql.rds_set_configuration('binlog retention hours', 168)) so it does not happen again",
		e.Missing, e.Count, e.Have, e.Purged)
}

// CheckGap returns a *GapError when the source no longer holds transactions
// that a replica at have needs, or nil.
func CheckGap(ctx context.Context, db *sql.DB, flavor string, have gtid.Set) error {
	purged, err := Purged(ctx, db, flavor)
	if err != nil {
		return err
	}
	if missing, n := gtid.Gap(have, purged); n > 0 {
		return &GapError{Missing: missing, Count: n, Purged: purged.String(), Have: have.String()}
	}
	return nil
}

// Retention returns the server's binlog retention: hours, and whether it is
// RDS's setting. hours < 0 means "purge as soon as possible" (RDS NULL);
// 0 means never purged by age.
func Retention(ctx context.Context, db *sql.DB) (hours float64, rds bool, err error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = 'rds_show_configuration'").Scan(&n); err == nil && n > 0 {
		rows, err := db.QueryContext(ctx, "CALL mysql.rds_show_configuration")
		if err != nil {
			return 0, true, err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var value, desc sql.NullString
			if err := rows.Scan(&name, &value, &desc); err != nil {
				return 0, true, err
			}
			if name == "binlog retention hours" {
				if !value.Valid {
					return -1, true, nil
				}
				h, err := strconv.ParseFloat(value.String, 64)
				return h, true, err
			}
		}
		return -1, true, rows.Err()
	}
	// MariaDB 10.6+ and MySQL 8 have binlog_expire_logs_seconds; older
	// servers only expire_logs_days. Unknown variables are errors: skip them.
	var secs sql.NullFloat64
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_expire_logs_seconds").Scan(&secs); err == nil && secs.Float64 > 0 {
		return secs.Float64 / 3600, false, nil
	}
	// MySQL 8.4 removed expire_logs_days: not asked there.
	var version string
	if err := db.QueryRowContext(ctx, "SELECT @@version").Scan(&version); err != nil ||
		(!strings.Contains(strings.ToLower(version), "mariadb") && versionAtLeast(version, 8, 4)) {
		return 0, false, nil
	}
	var days sql.NullFloat64
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.expire_logs_days").Scan(&days); err == nil && days.Float64 > 0 {
		return days.Float64 * 24, false, nil
	}
	return 0, false, nil
}

// RDS tells whether the server is an Amazon RDS instance, and why it
// thinks so: RDS's own procedures in the mysql schema (mysql.rds_kill,
// rds_set_configuration, ...) or its install directory (@@basedir
// /rdsdbbin/...). RDS gives no SUPER: SET GLOBAL read_only, KILL of
// another user's session and sql_log_bin are refused there.
func RDS(ctx context.Context, db *sql.DB) (bool, string, error) {
	var procs sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT GROUP_CONCAT(ROUTINE_NAME ORDER BY ROUTINE_NAME SEPARATOR ', ') FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME LIKE 'rds!_%' ESCAPE '!'").Scan(&procs); err != nil {
		return false, "", fmt.Errorf("looking for RDS's mysql.rds_* procedures: %w", err)
	}
	if procs.Valid && procs.String != "" {
		return true, "procedures mysql." + strings.ReplaceAll(procs.String, ", ", ", mysql."), nil
	}
	var base string
	if err := db.QueryRowContext(ctx, "SELECT @@basedir").Scan(&base); err != nil {
		return false, "", fmt.Errorf("reading @@basedir: %w", err)
	}
	if strings.HasPrefix(base, "/rdsdbbin/") {
		return true, "@@basedir " + base, nil
	}
	return false, "", nil
}
