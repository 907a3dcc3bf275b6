package load

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/schema"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
)

// snapshots are the workers' source connections, all in one consistent
// snapshot, and its GTID position.
type snapshots struct {
	db    *sql.DB
	conns []*sql.Conn
	pos   gtid.Set
}

func (s *snapshots) close() {
	for _, c := range s.conns {
		_, _ = c.ExecContext(context.Background(), "COMMIT")
		c.Close()
	}
	s.db.Close()
}

// openSnapshots starts cfg.Workers snapshot transactions at one moment.
// With several workers it holds FLUSH TABLES WITH READ LOCK for the few
// milliseconds it takes to start them (RELOAD privilege); without that
// privilege it loads with one worker. The position is the snapshot's own
// binlog position (MariaDB: Binlog_snapshot_file/_position through
// BINLOG_GTID_POS; @@gtid_binlog_pos alone is not snapshot-consistent).
func openSnapshots(ctx context.Context, cfg Config) (*snapshots, error) {
	db, err := conn.Open(cfg.Source, conn.Options{Init: apply.Session})
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(cfg.Workers + 1)
	s := &snapshots{db: db}
	workers := cfg.Workers
	var lock *sql.Conn
	if workers > 1 {
		lock, err = db.Conn(ctx)
		if err != nil {
			s.close()
			return nil, err
		}
		defer lock.Close()
		if _, err := lock.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
			cfg.Logger.Warn("no FLUSH TABLES WITH READ LOCK (RELOAD privilege): loading with one worker", "error", err)
			workers = 1
		} else {
			defer lock.ExecContext(context.Background(), "UNLOCK TABLES") //nolint:errcheck
		}
	}
	for i := 0; i < workers; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, c)
		for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				s.close()
				return nil, fmt.Errorf("opening a snapshot: %w", err)
			}
		}
	}
	if s.pos, err = snapshotPosition(ctx, s.conns[0], cfg.Flavor); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func snapshotPosition(ctx context.Context, c *sql.Conn, flavor string) (gtid.Set, error) {
	if flavor == gtid.MySQL {
		// MySQL: inside the snapshot, gtid_executed is what it holds (the
		// lock, when taken, makes it exact).
		var s string
		if err := c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&s); err != nil {
			return gtid.Set{}, err
		}
		return gtid.Parse(flavor, s)
	}
	rows, err := c.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return gtid.Set{}, err
	}
	var file, pos string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return gtid.Set{}, err
		}
		switch strings.ToLower(k) {
		case "binlog_snapshot_file":
			file = v
		case "binlog_snapshot_position":
			pos = v
		}
	}
	rows.Close()
	if file == "" {
		return gtid.Set{}, fmt.Errorf("the source reports no binlog snapshot position: is binary logging on?")
	}
	var g sql.NullString
	if err := c.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", file, pos).Scan(&g); err != nil {
		return gtid.Set{}, err
	}
	return gtid.Parse(flavor, g.String)
}

// columns lists a source table's written columns and its key.
func columns(ctx context.Context, c *sql.Conn, t Table) ([]schema.Typed, []string, error) {
	cols, err := schema.WrittenColumns(ctx, c, t.SourceSchema, t.SourceName)
	if err != nil {
		return nil, nil, err
	}
	key, err := schema.KeyColumns(ctx, c, t.SourceSchema, t.SourceName)
	return cols, key, err
}

// plan walks the key in the snapshot and returns every chunk's upper bound
// (the last chunk is open). Bounds are stored as JSON strings.
func plan(ctx context.Context, c *sql.Conn, t Table, chunkRows int) ([]json.RawMessage, error) {
	_, key, err := columns(ctx, c, t)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, nil // one chunk: the whole table
	}
	list := schema.KeyList(key)
	var bounds []json.RawMessage
	var lo []any
	for {
		where, args := schema.KeyRange(key, lo, nil)
		vals := make([]sql.NullString, len(key))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s ORDER BY %s LIMIT 1 OFFSET %d",
			list, conn.QuoteName(t.SourceSchema), conn.QuoteName(t.SourceName), where, list, chunkRows-1), args...).Scan(ptrs...)
		if err == sql.ErrNoRows {
			return bounds, nil
		}
		if err != nil {
			return nil, err
		}
		hi := make([]any, len(vals))
		for i, v := range vals {
			hi[i] = v.String
		}
		b, _ := json.Marshal(hi)
		bounds = append(bounds, b)
		lo = hi
	}
}
