package syncer

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// Start points for a channel's first run (no checkpoint yet).
const (
	StartNone      = ""          // refuse: the operator must choose
	StartTarget    = "target"    // the target's own GTID state (restored from a snapshot/dump)
	StartNow       = "now"       // the source's current position (empty target, history not needed)
	StartBeginning = "beginning" // everything the source's binlog still holds
	StartGTID      = "gtid"      // Config.StartGTID
)

// Config is one channel: a source, a target, and where local state lives.
type Config struct {
	Channel  string        // name, [A-Za-z0-9_-]{1,64}; default "main"
	Source   conn.Endpoint // streamed from as a replica
	Target   conn.Endpoint // written to
	ServerID uint32        // our replica server_id on the source; default 4207
	DataDir  string        // local state (pebble); default ./pitcrew-data

	ProgressSchema string // schema of ours on the target; default _pitcrew
	ProgressTable  string // default progress

	// First start only; ignored once the channel has a checkpoint.
	StartFrom string // StartTarget, StartNow, StartBeginning or StartGTID
	StartGTID string // with StartGTID: the set already applied on the target
	// StartGTIDOrigin names where StartGTID came from, in errors (a dump
	// file's recorded position); default "--start-gtid".
	StartGTIDOrigin string

	// Batching: consecutive row transactions commit together on the target
	// while the engine is behind, up to these bounds.
	BatchTxns int // default 1000
	BatchRows int // default 20000
	// Lanes is how many target connections apply batches at once; batches
	// whose conflict keys meet wait for each other (see lanes.go). 1 is
	// the serial applier. Bidirectional channels (Conflicts set) always
	// apply serially. Default: DefaultLanes.
	Lanes int
	// ParallelTriggers lets batches on tables with triggers on the target
	// run beside others (by their keys), for triggers whose writes commute
	// (audit logs, counters). Default: such a batch is a barrier.
	ParallelTriggers bool
	// LazyBytes: a relayed transaction bigger than this is applied as it
	// is decoded, event by event, instead of being decoded whole first
	// (memory holds its raw events, not its decoded rows). Default 16 MiB.
	LazyBytes int
	// PartBytes: with the relay, a transaction is spooled in pieces of
	// about this many bytes while it arrives, and one spooled in pieces is
	// applied the lazy way, read back a piece at a time: memory stays
	// bounded whatever the transaction's size. Default 4 MiB.
	PartBytes int
	// NoCompact turns off folding a batch's changes into one net change
	// per key (see internal/apply, compactor).
	NoCompact bool
	// QueueBytes bounds the bytes of transactions queued between stages
	// (each queue is also bounded to 1024 transactions). Default 64 MiB.
	QueueBytes int64

	// NoRelay turns the local relay off: by default the reader spools the
	// source's binlog into the data dir ahead of the applier, so a source
	// that purges its binlogs cannot take from us what was already read.
	NoRelay bool
	// RelayQuota bounds the spool in bytes; reading pauses at the quota
	// until the applier frees space. Default 4 GiB.
	RelayQuota int64

	// RetentionMargin: warn when the estimated catch-up time comes closer
	// than this to the moment the source may purge the oldest binlog the
	// channel still needs. Default 1h.
	RetentionMargin time.Duration

	// Heartbeat is how often the source sends a heartbeat on an idle
	// stream; three missed ones end the stream (the watchdog). Default 5s.
	Heartbeat time.Duration
	// ConnectTimeout bounds each connect of the binlog stream: dial, TLS
	// and login handshakes, replica registration, dump request. Default
	// conn.ConnectTimeout (10s). A dead route so costs a restart at most
	// the watchdog's 3 x Heartbeat plus one ConnectTimeout per attempt.
	ConnectTimeout time.Duration
	// ProgressEvery: the service logs a progress line (rate, behind, ETA)
	// this often while it applies or is behind; 0: only the "caught up" /
	// "fell behind" transitions.
	ProgressEvery time.Duration

	// RestartBackoffMax caps the wait between pipeline restarts after the
	// source or target went away. Default 30s.
	RestartBackoffMax time.Duration

	// Bidirectional mode. Echo names the channels whose applied
	// transactions this channel drops when it reads them from its source
	// (conflict.Topology computes them). Conflicts, when set, turns row
	// conflicts from errors into policy decisions recorded in the ledger.
	Echo      []string
	Conflicts *conflict.Rules
	// FenceUsers are accounts a migration fence locks on one side only:
	// ALTER USER ... ACCOUNT LOCK / UNLOCK naming only them is not applied
	// (conflict.Loop.Fenced), so the application is never locked out of
	// the side it moves to.
	FenceUsers []string

	// Route filters and renames databases and tables (default: all, as is).
	Route route.Rules

	Logger *slog.Logger
}

// Default fills the documented defaults.
func (c *Config) Default() {
	if c.Channel == "" {
		c.Channel = "main"
	}
	c.Source.Default()
	c.Target.Default()
	if c.ServerID == 0 {
		c.ServerID = 4207
	}
	if c.DataDir == "" {
		c.DataDir = "pitcrew-data"
	}
	if c.ProgressSchema == "" {
		c.ProgressSchema = "_pitcrew"
	}
	if c.ProgressTable == "" {
		c.ProgressTable = "progress"
	}
	if c.BatchTxns == 0 {
		c.BatchTxns = 1000
	}
	if c.BatchRows == 0 {
		c.BatchRows = 20000
	}
	if c.LazyBytes == 0 {
		c.LazyBytes = 16 << 20
	}
	if c.PartBytes == 0 {
		c.PartBytes = 4 << 20
	}
	if c.Lanes == 0 {
		c.Lanes = DefaultLanes()
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 64 << 20
	}
	if c.RelayQuota == 0 {
		c.RelayQuota = 4 << 30
	}
	if c.RetentionMargin == 0 {
		c.RetentionMargin = time.Hour
	}
	if c.RestartBackoffMax == 0 {
		c.RestartBackoffMax = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DefaultLanes is half the CPUs, between 1 and 8: the reader (decode,
// relay) takes about a core of its own, and on a host shared with the
// target the server needs the rest. On 2 cores lanes measured between
// -15% and +17% against one lane (bench catchup --lanes 1,2,4): noise.
func DefaultLanes() int { return min(8, max(1, runtime.NumCPU()/2)) }

var channelName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks what can be checked without connecting.
func (c *Config) Validate() error {
	if !channelName.MatchString(c.Channel) {
		return fmt.Errorf("channel name %q is invalid: use 1-64 letters, digits, '_' or '-'", c.Channel)
	}
	if err := c.Source.Validate("source"); err != nil {
		return err
	}
	if err := c.Target.Validate("target"); err != nil {
		return err
	}
	if c.Source.Addr() == c.Target.Addr() {
		return fmt.Errorf("source and target are the same server (%s): point target at another server", c.Source.Addr())
	}
	switch c.StartFrom {
	case StartNone, StartTarget, StartNow, StartBeginning:
		if c.StartGTID != "" {
			return errors.New("--start-gtid given together with --start-from " + c.StartFrom + ": use one of them")
		}
	case StartGTID:
	default:
		return fmt.Errorf("start_from %q is unknown: use target, now, beginning, or give --start-gtid", c.StartFrom)
	}
	if err := c.Route.Validate(); err != nil {
		return err
	}
	if c.Conflicts != nil {
		if err := c.Conflicts.Validate(); err != nil {
			return err
		}
	}
	if c.Lanes < 1 || c.Lanes > 64 {
		return fmt.Errorf("lanes %d is out of range: use 1 (serial) to 64", c.Lanes)
	}
	if c.BatchTxns < 1 || c.BatchRows < 1 {
		return errors.New("batch_txns and batch_rows must be at least 1")
	}
	return nil
}
