package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The server's own replication, as the reference pitcrew is measured and
// checked against: what a native replica ends with from a binlog,
// pitcrew's target must end with too.

// ReplicaOptions say how a native replica replicates.
type ReplicaOptions struct {
	// From is the GTID position the replica starts after
	// (gtid_slave_pos); "" replays the source's whole binlog.
	From string
	// Threads: slave_parallel_threads; 0 is the single-threaded applier,
	// more run in optimistic parallel mode.
	Threads int
	// User on the source (default root, no password).
	User string
}

// StartReplica points the server behind db at source with GTID
// auto-position (MASTER_USE_GTID = slave_pos) and starts it.
func StartReplica(ctx context.Context, db *sql.DB, source *Server, o ReplicaOptions) error {
	mode := "conservative"
	if o.Threads > 0 {
		mode = "optimistic"
	}
	if o.User == "" {
		o.User = "root"
	}
	for _, q := range []string{
		"STOP SLAVE",
		fmt.Sprintf("SET GLOBAL slave_parallel_threads = %d", o.Threads),
		"SET GLOBAL slave_parallel_mode = '" + mode + "'",
		"SET GLOBAL gtid_slave_pos = '" + strings.ReplaceAll(o.From, "'", "") + "'",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, MASTER_USER = '%s', MASTER_USE_GTID = slave_pos", source.Port, strings.ReplaceAll(o.User, "'", "")),
		"START SLAVE",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("native replica: %s: %w", q, err)
		}
	}
	return nil
}

// WaitReplica waits until the replica behind db has applied pos (a GTID
// position of the source), for at most timeout. When it has stopped on an
// error instead, the error says the replica's own message.
func WaitReplica(ctx context.Context, db *sql.DB, pos string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		// Short waits, so a replica stopped on an error is seen at once.
		var res sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 0.5)", pos).Scan(&res); err != nil {
			return fmt.Errorf("native replica: waiting for %s: %w", pos, err)
		}
		if res.Valid && res.Int64 == 0 {
			return nil
		}
		if err := ReplicaError(ctx, db); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("native replica: %s not reached within %s", pos, timeout)
		}
	}
}

// ReplicaError is the error the replica behind db stopped on, or nil while
// it runs.
func ReplicaError(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if !rows.Next() {
		return errors.New("native replica: not configured (SHOW SLAVE STATUS is empty)")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return err
	}
	st := map[string]string{}
	for i, c := range cols {
		st[c] = vals[i].String
	}
	if st["Slave_SQL_Running"] == "Yes" && st["Slave_IO_Running"] != "No" {
		return nil
	}
	return fmt.Errorf("native replica stopped: SQL thread %s (%s %s), IO thread %s (%s %s)",
		st["Slave_SQL_Running"], st["Last_SQL_Errno"], st["Last_SQL_Error"], st["Slave_IO_Running"], st["Last_IO_Errno"], st["Last_IO_Error"])
}

// StopReplica stops the replica behind db.
func StopReplica(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "STOP SLAVE")
	return err
}
