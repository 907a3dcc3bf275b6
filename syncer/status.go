package syncer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
)

// States of a channel.
const (
	StateStarting   = "starting"
	StateStreaming  = "streaming"
	StateCaughtUp   = "caught-up"
	StateRetrying   = "retrying"
	StateFailed     = "failed"
	StateStopped    = "stopped"
	StateNotRunning = "not-running"
)

// Status is a channel's state as /status and `pitcrew status` show it.
type Status struct {
	Channel            string   `json:"channel"`
	State              string   `json:"state"`
	Flavor             string   `json:"flavor,omitempty"`
	AppliedGTIDSet     string   `json:"applied_gtid_set"`
	SourceGTIDSet      string   `json:"source_gtid_set,omitempty"`
	TransactionsBehind int64    `json:"transactions_behind"`
	SecondsBehind      float64  `json:"seconds_behind_source"`
	EventsRead         int64    `json:"events_read"`
	RowsApplied        int64    `json:"rows_applied"`
	TxnsApplied        int64    `json:"transactions_applied"`
	Reconnects         int64    `json:"reconnects"`
	Conflicts          int64    `json:"conflicts"`
	Echoes             int64    `json:"echoes_dropped"`
	Skipped            []string `json:"skipped_gtids,omitempty"`
	// Parallel lanes: batches handed to a lane while another lane was
	// applying, and batches that ran alone as barriers (DDL, tables
	// without a unique key or with triggers).
	LaneOverlaps int64 `json:"lane_overlapping_batches,omitempty"`
	LaneBarriers int64 `json:"lane_barrier_batches,omitempty"`
	// LargeTxns counts transactions bigger than Config.LazyBytes, applied
	// (or dropped as echoes) as they were decoded.
	LargeTxns int64 `json:"large_transactions_streamed,omitempty"`
	// Retention guard: seconds until the oldest binlog still needed may be
	// purged (-1: never), estimated seconds to catch up (-1: unknown), and
	// a warning when the first comes too close to the second.
	BinlogExpiresIn float64 `json:"binlog_expires_in_seconds"`
	// ApplyRate is applied source transactions per second, smoothed over
	// the last polls of the source (every 2 s).
	ApplyRate float64 `json:"apply_rate"`
	// LastCommit is the source commit time of the last applied transaction.
	LastCommit       time.Time `json:"last_source_commit,omitzero"`
	CatchUpIn        float64   `json:"catch_up_in_seconds"`
	RetentionWarning string    `json:"retention_warning,omitempty"`

	// Relay: bytes spooled ahead of the applier, and its state (off,
	// reading, or paused at the quota).
	RelayBytes int64  `json:"relay_bytes"`
	RelayQuota int64  `json:"relay_quota_bytes,omitempty"`
	RelayState string `json:"relay_state"`
	// ReadGTIDSet is what the relay holds or the target applied: the source
	// may purge everything in it without harm.
	ReadGTIDSet string `json:"read_gtid_set,omitempty"`

	// Triggers and Events: what is in force on the target (internal/stored):
	// the source's triggers guarded (silent for pitcrew's writes) and its
	// events parked, the target's own left alone.
	Triggers *stored.TriggerState `json:"triggers,omitempty"`
	Events   *stored.EventState   `json:"events,omitempty"`

	LastError string    `json:"last_error,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

type statusBox struct {
	mu sync.Mutex
	s  Status
	// onState is told every change of State (the pitcrew_channel_state
	// series); nil: nobody listens.
	onState func(string)
}

func (b *statusBox) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

func (b *statusBox) update(f func(*Status)) {
	b.mu.Lock()
	was := b.s.State
	f(&b.s)
	b.s.UpdatedAt = time.Now().UTC()
	if b.s.State != was && b.onState != nil {
		b.onState(b.s.State)
	}
	b.mu.Unlock()
}

// LocalAhead says whether a channel's local checkpoint is ahead of the
// target's progress row (its text row, parsed rowSet) only by transactions
// that changed nothing on the target (echoes, filtered events, which are
// never written there): the checkpoint last wrote that very row, and its
// set contains the row's. Then the local set, returned, is how far the
// channel got; otherwise the row is.
func LocalAhead(local checkpoint.Position, row string, rowSet gtid.Set) (gtid.Set, bool) {
	if local.Written != row {
		return gtid.Set{}, false
	}
	l, err := gtid.Parse(local.Flavor, local.GTIDSet)
	if err != nil || !l.Contains(rowSet) {
		return gtid.Set{}, false
	}
	return l, true
}

// Reach is how far a channel has got, read from the servers themselves
// (`pitcrew bidi status`).
type Reach struct {
	Applied  string // the applied set ("" before the first progress row)
	Source   string // the source's executed set
	Behind   int64  // transactions of Source not in Applied
	CaughtUp bool   // the target has a progress row and nothing is behind
}

// ReachOf reads a channel's reach: the source's executed set against the
// target's progress row. Echoes are never written to that row: the
// running service (live, its Status; nil when none answers), or else the
// channel's local checkpoint in dataDir, knows how far the channel really
// got.
func ReachOf(ctx context.Context, src, tgt *sql.DB, progress checkpoint.Progress, channel, dataDir string, live *Status) (Reach, error) {
	info, err := binlog.Inspect(ctx, src)
	if err != nil {
		return Reach{}, err
	}
	executed, err := binlog.Executed(ctx, src, info.Flavor)
	if err != nil {
		return Reach{}, err
	}
	r := Reach{Source: executed.String()}
	row, ok, err := progress.Load(ctx, tgt, channel)
	if err != nil {
		return Reach{}, err
	}
	applied := gtid.Empty(info.Flavor)
	if ok {
		r.Applied = row.GTIDSet
		if applied, err = gtid.Parse(info.Flavor, row.GTIDSet); err != nil {
			return Reach{}, err
		}
	}
	if live != nil {
		if set, err := gtid.Parse(info.Flavor, live.AppliedGTIDSet); err == nil && set.Contains(applied) {
			applied, r.Applied = set, set.String()
		}
	} else if local, ok := localPosition(dataDir, channel); ok {
		if l, ok := LocalAhead(local, row.GTIDSet, applied); ok {
			applied, r.Applied = l, l.String()
		}
	}
	r.Behind = applied.Behind(executed)
	r.CaughtUp = ok && r.Behind == 0
	return r, nil
}

// localPosition reads a channel's pebble checkpoint when no process holds it.
func localPosition(dir, channel string) (checkpoint.Position, bool) {
	if _, err := os.Stat(dir); err != nil {
		return checkpoint.Position{}, false
	}
	store, err := checkpoint.Open(dir)
	if err != nil {
		return checkpoint.Position{}, false
	}
	defer store.Close()
	p, ok, err := store.Position(channel)
	return p, ok && err == nil
}

// StoredStatus is the status of a channel that is not running, read from
// its local checkpoint in dir.
func StoredStatus(dir, channel string) (Status, error) {
	if _, err := os.Stat(dir); err != nil {
		return Status{}, fmt.Errorf("data dir %s: %w", dir, err)
	}
	store, err := checkpoint.Open(dir)
	if err != nil {
		return Status{}, fmt.Errorf("%w; if pitcrew sync is running, ask it with --url", err)
	}
	defer store.Close()
	p, ok, err := store.Position(channel)
	if err != nil {
		return Status{}, err
	}
	if !ok {
		return Status{}, fmt.Errorf("channel %q has no checkpoint in %s yet", channel, dir)
	}
	return Status{Channel: channel, State: StateNotRunning, Flavor: p.Flavor, AppliedGTIDSet: p.GTIDSet, UpdatedAt: p.Updated}, nil
}

// SourceBehind fills, for a channel that is not running, the source's
// executed set and how many transactions the applied set is behind it; a
// source that cannot be reached (within 10s) leaves them empty and says so
// in LastError.
func (st *Status) SourceBehind(ctx context.Context, src conn.Endpoint) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := conn.Open(src)
	if err == nil {
		defer db.Close()
		var executed gtid.Set
		if executed, err = binlog.Executed(ctx, db, st.Flavor); err == nil {
			var applied gtid.Set
			if applied, err = gtid.Parse(st.Flavor, st.AppliedGTIDSet); err == nil {
				st.SourceGTIDSet, st.TransactionsBehind = executed.String(), applied.Behind(executed)
				return
			}
		}
	}
	st.LastError = "source not reached for how far behind it is: " + conn.Explain(err, "source", src).Error()
}
