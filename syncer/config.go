package syncer

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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

// Config is one channel: a source, a target, where local state lives, and
// the options of its stages grouped by concern (embedded, so cfg.Lanes is
// cfg.ApplyConfig.Lanes). Zero values mean the defaults below; Default
// fills them and Validate checks the result, for every caller: the YAML
// layer (cmd/pitcrew), infra's channels, bench, and New itself.
type Config struct {
	Channel string        // name, [A-Za-z0-9_-]{1,64}; default "main"
	Source  conn.Endpoint // streamed from as a replica
	Target  conn.Endpoint // written to
	DataDir string        // local state (pebble); default ./pitcrew-data

	ProgressSchema string // schema of ours on the target; default _pitcrew
	ProgressTable  string // default progress

	StreamConfig // reading the source: who we are to it, where the first run starts
	RelayConfig  // the local spool between reader and applier
	ApplyConfig  // batching, lanes, queues
	BidiConfig   // bidirectional mode: echoes, conflicts, fences

	// Route filters and renames databases and tables (default: all, as is).
	Route route.Rules

	// ProgressEvery: the service logs a progress line (rate, behind, ETA)
	// this often while it applies or is behind; 0: only the "caught up" /
	// "fell behind" transitions.
	ProgressEvery time.Duration
	// RestartBackoffMax caps the wait between pipeline restarts after the
	// source or target went away. Default 30s.
	RestartBackoffMax time.Duration

	Logger *slog.Logger // default: discard
}

// StreamConfig is how the channel reads the source's binlog.
type StreamConfig struct {
	ServerID uint32 // our replica server_id on the source; default 4207

	// First start only; ignored once the channel has a checkpoint.
	StartFrom string // StartTarget, StartNow, StartBeginning or StartGTID
	StartGTID string // with StartGTID: the set already applied on the target
	// StartGTIDOrigin names where StartGTID came from, in errors (a dump
	// file's recorded position); default "--start-gtid".
	StartGTIDOrigin string

	// Heartbeat is how often the source sends a heartbeat on an idle
	// stream; three missed ones end the stream (the watchdog). Default 5s
	// (the binlog reader's).
	Heartbeat time.Duration
	// ConnectTimeout bounds each connect of the binlog stream: dial, TLS
	// and login handshakes, replica registration, dump request. Default
	// conn.ConnectTimeout (10s). A dead route so costs a restart at most
	// the watchdog's 3 x Heartbeat plus one ConnectTimeout per attempt.
	ConnectTimeout time.Duration

	// RetentionMargin: warn when the estimated catch-up time comes closer
	// than this to the moment the source may purge the oldest binlog the
	// channel still needs. Default 1h.
	RetentionMargin time.Duration
}

// RelayConfig is the local relay: the reader spools the source's binlog
// into the data dir ahead of the applier.
type RelayConfig struct {
	// NoRelay turns the local relay off: by default the reader spools the
	// source's binlog into the data dir ahead of the applier, so a source
	// that purges its binlogs cannot take from us what was already read.
	NoRelay bool
	// RelayQuota bounds the spool in bytes; reading pauses at the quota
	// until the applier frees space. Default 4 GiB.
	RelayQuota int64
	// PartBytes: with the relay, a transaction is spooled in pieces of
	// about this many bytes while it arrives, and one spooled in pieces is
	// applied the lazy way, read back a piece at a time: memory stays
	// bounded whatever the transaction's size. Default 4 MiB.
	PartBytes int
}

// ApplyConfig is how transactions are applied on the target.
type ApplyConfig struct {
	// Batching: consecutive row transactions commit together on the target
	// while the engine is behind, up to these bounds.
	BatchTxns int // default 1000
	BatchRows int // default 20000
	// Lanes is how many target connections apply batches at once; batches
	// whose conflict keys meet wait for each other (see lanes.go). 1 is
	// the serial applier. Bidirectional channels (Conflicts set) always
	// apply serially. Default: DefaultLanes (half the CPUs, 1 to 8).
	Lanes int
	// ParallelTriggers lets batches on tables with triggers on the target
	// run beside others (by their keys), for triggers whose writes commute
	// (audit logs, counters). Default: such a batch is a barrier.
	ParallelTriggers bool
	// LazyBytes: a relayed transaction bigger than this is applied as it
	// is decoded, event by event, instead of being decoded whole first
	// (memory holds its raw events, not its decoded rows). Default 16 MiB.
	LazyBytes int
	// NoCompact turns off folding a batch's changes into one net change
	// per key (see internal/pipeline/apply, compactor).
	NoCompact bool
	// QueueBytes bounds the bytes of transactions queued between stages
	// (each queue is also bounded to 1024 transactions). Default 64 MiB.
	QueueBytes int64
}

// BidiConfig is bidirectional mode (MeshConfigs fills it for a set of
// nodes).
type BidiConfig struct {
	// Echo names the channels whose applied transactions this channel
	// drops when it reads them from its source (conflict.Topology computes
	// them). Conflicts, when set, turns row conflicts from errors into
	// policy decisions recorded in the ledger.
	Echo      []string
	Conflicts *conflict.Rules
	// FenceUsers are accounts a migration fence locks on one side only:
	// ALTER USER ... ACCOUNT LOCK / UNLOCK naming only them is not applied
	// (conflict.Loop.Fenced), so the application is never locked out of
	// the side it moves to.
	FenceUsers []string
}

// The defaults, written once: Default fills them in; pitcrew.yaml and
// README.md's Configuration show them (TestSampleIsDefault in cmd/pitcrew
// holds the two to this list).
const (
	DefaultChannel           = "main"
	DefaultServerID          = 4207
	DefaultDataDir           = "pitcrew-data"
	DefaultProgressSchema    = "_pitcrew"
	DefaultProgressTable     = "progress"
	DefaultBatchTxns         = 1000
	DefaultBatchRows         = 20000
	DefaultLazyBytes         = 16 << 20
	DefaultPartBytes         = 4 << 20
	DefaultQueueBytes        = 64 << 20
	DefaultRelayQuota        = 4 << 30
	DefaultRetentionMargin   = time.Hour
	DefaultRestartBackoffMax = 30 * time.Second
)

// Default is a channel's config with every default filled in: what an
// empty pitcrew.yaml gives.
func Default() Config {
	var c Config
	c.Default()
	return c
}

// Default fills the zero fields with the defaults.
func (c *Config) Default() {
	setDefault(&c.Channel, DefaultChannel)
	c.Source.Default()
	c.Target.Default()
	setDefault(&c.DataDir, DefaultDataDir)
	setDefault(&c.ProgressSchema, DefaultProgressSchema)
	setDefault(&c.ProgressTable, DefaultProgressTable)
	c.StreamConfig.fill()
	c.RelayConfig.fill()
	c.ApplyConfig.fill()
	setDefault(&c.RestartBackoffMax, DefaultRestartBackoffMax)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (s *StreamConfig) fill() {
	setDefault(&s.ServerID, DefaultServerID)
	setDefault(&s.RetentionMargin, DefaultRetentionMargin)
}

func (r *RelayConfig) fill() {
	setDefault(&r.RelayQuota, DefaultRelayQuota)
	setDefault(&r.PartBytes, DefaultPartBytes)
}

func (a *ApplyConfig) fill() {
	setDefault(&a.BatchTxns, DefaultBatchTxns)
	setDefault(&a.BatchRows, DefaultBatchRows)
	setDefault(&a.Lanes, DefaultLanes())
	setDefault(&a.LazyBytes, DefaultLazyBytes)
	setDefault(&a.QueueBytes, DefaultQueueBytes)
}

// setDefault sets *v to def when it is zero.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// DefaultLanes is half the CPUs, between 1 and 8: the reader (decode,
// relay) takes about a core of its own, and on a host shared with the
// target the server needs the rest. On 2 cores lanes measured between
// -15% and +17% against one lane (bench catchup --lanes 1,2,4): noise.
func DefaultLanes() int { return min(8, max(1, runtime.NumCPU()/2)) }

var channelName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks what can be checked without connecting (after Default:
// zero lanes or batch bounds are refused).
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
	if err := c.StreamConfig.validate(); err != nil {
		return err
	}
	if err := c.Route.Validate(); err != nil {
		return err
	}
	if err := c.BidiConfig.validate(); err != nil {
		return err
	}
	return c.ApplyConfig.validate()
}

func (s *StreamConfig) validate() error {
	switch s.StartFrom {
	case StartNone, StartTarget, StartNow, StartBeginning:
		if s.StartGTID != "" {
			return errors.New("--start-gtid given together with --start-from " + s.StartFrom + ": use one of them")
		}
	case StartGTID:
	default:
		return fmt.Errorf("start_from %q is unknown: use target, now, beginning, or give --start-gtid", s.StartFrom)
	}
	return nil
}

func (b *BidiConfig) validate() error {
	if b.Conflicts != nil {
		return b.Conflicts.Validate()
	}
	return nil
}

func (a *ApplyConfig) validate() error {
	if a.Lanes < 1 || a.Lanes > 64 {
		return fmt.Errorf("lanes %d is out of range: use 1 (serial) to 64", a.Lanes)
	}
	if a.BatchTxns < 1 || a.BatchRows < 1 {
		return errors.New("batch_txns and batch_rows must be at least 1")
	}
	return nil
}

// MeshConfigs is one config per channel of a bidirectional set (chans, as
// conflict.Mesh or conflict.Topology name them): base's options, with each
// channel's name, source and target (nodes by name) and echoes; the i-th
// channel's server_id is base.ServerID+i and its state lives in
// base.DataDir/<channel>; conflicts follow base.Conflicts, default
// source-wins. Start options, loggers and fences stay the caller's.
func MeshConfigs(base Config, nodes map[string]conn.Endpoint, chans []conflict.Channel) []Config {
	rules := base.Conflicts
	if rules == nil {
		rules = &conflict.Rules{Default: conflict.SourceWins}
	}
	out := make([]Config, 0, len(chans))
	for i, ch := range chans {
		c := base
		c.Channel, c.Source, c.Target = ch.Name, nodes[ch.Source], nodes[ch.Target]
		c.ServerID = base.ServerID + uint32(i)
		c.DataDir = filepath.Join(base.DataDir, ch.Name)
		c.Echo, c.Conflicts = ch.Echo, rules
		out = append(out, c)
	}
	return out
}
