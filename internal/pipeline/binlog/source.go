package binlog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// ServerInfo is what the engine needs to know about a server before it
// streams from it or writes to it.
type ServerInfo struct {
	Version      string
	Flavor       string // gtid.MySQL or gtid.MariaDB
	ServerID     uint32
	LogBin       bool
	BinlogFormat string
	RowImage     string
}

// Inspect reads a server's identity and binlog settings.
func Inspect(ctx context.Context, db *sql.DB) (ServerInfo, error) {
	var info ServerInfo
	var logBin int
	err := db.QueryRowContext(ctx, "SELECT @@version, @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image").
		Scan(&info.Version, &info.ServerID, &logBin, &info.BinlogFormat, &info.RowImage)
	if err != nil {
		return info, fmt.Errorf("reading server settings: %w", err)
	}
	info.LogBin = logBin == 1
	info.Flavor = gtid.MySQL
	if strings.Contains(strings.ToLower(info.Version), "mariadb") {
		info.Flavor = gtid.MariaDB
	}
	return info, nil
}

// MySQLAtLeast says whether the server is MySQL (not MariaDB) of at least
// major.minor, from its version string ("8.4.3", "8.0.40-log").
func (i ServerInfo) MySQLAtLeast(major, minor int) bool {
	if i.Flavor != gtid.MySQL {
		return false
	}
	return versionAtLeast(i.Version, major, minor)
}

func versionAtLeast(v string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(v, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// CheckSource returns the first reason the server cannot be streamed from
// exactly, with the fix, or nil.
func (i ServerInfo) CheckSource() error {
	if !i.LogBin {
		return fmt.Errorf("binary logging is off on the source: turn it on (log_bin / log-bin=...; on RDS: enable automated backups) and restart the source")
	}
	if !strings.EqualFold(i.BinlogFormat, "ROW") {
		return fmt.Errorf("the source logs binlog_format=%s: set binlog_format=ROW (SET GLOBAL binlog_format='ROW' and in the server config; on RDS in the parameter group); statement events cannot be replayed exactly", i.BinlogFormat)
	}
	if !strings.EqualFold(i.RowImage, "FULL") {
		return fmt.Errorf("the source logs binlog_row_image=%s: set binlog_row_image=FULL so every change carries whole rows", i.RowImage)
	}
	return nil
}

// Executed returns the GTIDs a server has in its binlog: MySQL
// @@gtid_executed, MariaDB @@gtid_binlog_pos.
func Executed(ctx context.Context, db *sql.DB, flavor string) (gtid.Set, error) {
	q := "SELECT @@GLOBAL.gtid_executed"
	if flavor == gtid.MariaDB {
		q = "SELECT @@GLOBAL.gtid_binlog_pos"
	}
	return queryGTID(ctx, db, flavor, q)
}

// Restored returns the GTID state a target restored from a snapshot or dump
// of the source carries: MariaDB @@gtid_slave_pos (set by a dump's or a
// replica's restore), else @@gtid_binlog_pos; MySQL @@gtid_executed.
func Restored(ctx context.Context, db *sql.DB, flavor string) (gtid.Set, error) {
	if flavor == gtid.MariaDB {
		s, err := queryGTID(ctx, db, flavor, "SELECT @@GLOBAL.gtid_slave_pos")
		if err != nil || !s.IsEmpty() {
			return s, err
		}
	}
	return Executed(ctx, db, flavor)
}

func queryGTID(ctx context.Context, db *sql.DB, flavor, q string) (gtid.Set, error) {
	var s string
	if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
		return gtid.Set{}, fmt.Errorf("%s: %w", q, err)
	}
	set, err := gtid.Parse(flavor, s)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("%s: %w", q, err)
	}
	return set, nil
}
