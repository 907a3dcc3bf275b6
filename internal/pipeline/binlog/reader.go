// Package binlog reads a source's binary log as a replica and hands complete
// transactions downstream.
//
// Invariant: only whole transactions leave a Reader, or, with PartBytes,
// pieces of one marked txn.Txn.Part that count for nothing until its whole
// Txn follows. When the stream breaks, the partly received transaction is
// dropped and Stream returns; the caller (syncer) restarts from its last
// applied position, so the transaction is received again from its GTID
// event (and the caller drops the pieces it kept).
package binlog

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Config says how to connect as a replica.
type Config struct {
	Source   conn.Endpoint
	Flavor   string // "mysql" or "mariadb"; syncer fills it from the server's version
	ServerID uint32 // our replica server_id; must be unique among the source's replicas
	// ReportHost is the name the replica registers with: the source shows
	// it in SHOW SLAVE HOSTS / SHOW REPLICAS, where preflight tells
	// pitcrew's own channel from a stranger using the same server_id.
	// Default "pitcrew".
	ReportHost string
	// Heartbeat is how often the source sends a heartbeat when idle; the
	// stream is considered dead after three missed heartbeats. Default 5s.
	Heartbeat time.Duration
	// KeepRaw attaches each transaction's raw events, for the relay spool.
	KeepRaw bool
	// PartBytes: a transaction still being received is sent on in pieces
	// (txn.Txn.Part) of about this many bytes, so a huge one is never held
	// whole. 0: never.
	PartBytes int
	// ConnectTimeout bounds connecting: dial, TLS and authentication,
	// the replica's registration and the dump request. Default
	// conn.ConnectTimeout.
	ConnectTimeout time.Duration
	// Admit, when set, is called before each transaction is sent on; it
	// may block (the caller's queue is full by bytes).
	Admit  func(context.Context, *txn.Txn) error
	Logger *slog.Logger
}

// ReportHost is the name a channel's replica connection registers with.
func ReportHost(channel string) string {
	h := "pitcrew/" + channel
	if len(h) > 60 { // the server keeps report_host to 60 characters
		h = h[:60]
	}
	return h
}

// Default fills the documented defaults.
func (c *Config) Default() {
	if c.Heartbeat == 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.ReportHost == "" {
		c.ReportHost = "pitcrew"
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = conn.ConnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are counters the reader updates; the caller owns them and may read
// them concurrently through the atomic fields of its metrics.
type Stats interface {
	EventRead(bytes int)
}

// Stream connects to the source, asks for everything after from, and sends
// each complete transaction to out until ctx ends or the stream fails. The
// returned error is classified with conn.Retryable.
func Stream(ctx context.Context, cfg Config, from gtid.Set, out chan<- *txn.Txn, stats Stats) error {
	cfg.Default()
	syncer, streamer, err := connect(cfg, from)
	if err != nil {
		return err
	}
	presumedDead := false
	defer func() {
		if presumedDead {
			// Close kills our session on the source through a new
			// connection, which a dead route would hold for minutes.
			go syncer.Close()
			return
		}
		syncer.Close()
	}()
	presumedDead, err = follow(ctx, cfg, streamer, out, stats)
	return err
}

// syncerConfig is go-mysql's replica config for cfg.
func syncerConfig(cfg Config, tlsCfg *tls.Config) replication.BinlogSyncerConfig {
	var rowsDecode func(*replication.RowsEvent, []byte) error
	var tableMeta func([]byte) error
	if cfg.KeepRaw {
		// The relay spools raw events and decodes them when it replays
		// them: here only the framing matters, not the row images nor the
		// table maps' optional metadata (column names, keys, charsets).
		rowsDecode = func(e *replication.RowsEvent, data []byte) error {
			_, err := e.DecodeHeader(data)
			return err
		}
		tableMeta = func([]byte) error { return nil }
	}
	bcfg := replication.BinlogSyncerConfig{
		RowsEventDecodeFunc:            rowsDecode,
		TableMapOptionalMetaDecodeFunc: tableMeta,
		ServerID:                       cfg.ServerID,
		Localhost:                      cfg.ReportHost,
		Flavor:                         cfg.Flavor,
		Host:                           cfg.Source.Host,
		Port:                           uint16(cfg.Source.Port),
		User:                           cfg.Source.User,
		Password:                       cfg.Source.Password,
		Charset:                        "utf8mb4",
		TimestampStringLocation:        time.UTC,
		// The same tls.Config the SQL pools use (conn.Endpoint.TLSConfig).
		TLSConfig: tlsCfg,
		// No ReadTimeout: go-mysql would set a read deadline before every
		// packet read (10% of pitcrew's CPU in a catch-up profile). The
		// watchdog (follow) finds a dead stream instead; the connect has
		// a deadline of its own (connectDeadline).
		HeartbeatPeriod: cfg.Heartbeat,
		// go-mysql parses ahead of us into a queue of this many events
		// (default 10240: at binlog_row_event_max_size 8 KiB, and packet
		// buffers grown to twice that, 150 MB held while we spool a big
		// transaction). Our own queues, bounded by bytes, do the rest.
		EventCacheCount:  eventCache,
		DisableRetrySync: true,
		VerifyChecksum:   true,
		Logger:           quiet(cfg.Logger),
	}
	if cfg.Source.Socket != "" {
		// go-mysql dials a unix socket when Host is its path and Port 0.
		bcfg.Host, bcfg.Port = cfg.Source.Socket, 0
	}
	return bcfg
}

// connect starts the stream after from, over TLS as the endpoint says
// (plaintext when TLS is only preferred and the server offers none).
func connect(cfg Config, from gtid.Set) (*replication.BinlogSyncer, *replication.BinlogStreamer, error) {
	tlsCfg, err := cfg.Source.TLSConfig("source")
	if err != nil {
		return nil, nil, err
	}
	bcfg := syncerConfig(cfg, tlsCfg)
	syncer, streamer, err := startSync(bcfg, cfg.ConnectTimeout, from)
	if err != nil && tlsCfg != nil && cfg.Source.TLS.Fallback() && conn.NoTLS(err) {
		// preferred, and the server offers no TLS: plaintext, as the
		// mysql client and the SQL driver (AllowFallbackToPlaintext) do.
		// go-mysql has no fallback of its own.
		bcfg.TLSConfig = nil
		syncer, streamer, err = startSync(bcfg, cfg.ConnectTimeout, from)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("starting binlog stream from %q: %w", from.String(), explainDump(err, cfg.Source))
	}
	return syncer, streamer, nil
}

// follow reads the stream until ctx ends or it fails, and sends each
// transaction (or piece, with PartBytes) to out. presumedDead says the
// watchdog ended it: no event nor heartbeat for three heartbeat periods.
func follow(ctx context.Context, cfg Config, streamer *replication.BinlogStreamer, out chan<- *txn.Txn, stats Stats) (presumedDead bool, err error) {
	asm := txn.NewAssembler(cfg.Flavor)
	if cfg.KeepRaw {
		asm.KeepRaw()
	}
	getCtx, dead := context.WithCancelCause(ctx)
	defer dead(nil)
	var w watchdog
	go w.watch(getCtx, cfg.Heartbeat, func() {
		dead(deadStream{fmt.Sprintf("no event nor heartbeat from the source %s for %s (heartbeats every %s): the connection is presumed dead", cfg.Source, 3*cfg.Heartbeat, cfg.Heartbeat)})
	})
	for {
		w.waiting.Store(true)
		ev, err := streamer.GetEvent(getCtx)
		w.waiting.Store(false)
		w.events.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if cause := context.Cause(getCtx); cause != nil {
				return true, cause
			}
			return false, fmt.Errorf("reading binlog from %s: %w", cfg.Source, explainDump(err, cfg.Source))
		}
		if stats != nil {
			stats.EventRead(int(ev.Header.EventSize))
		}
		t, err := asm.Feed(ev)
		if err != nil {
			return false, err
		}
		if t == nil {
			if t = asm.Part(cfg.PartBytes); t == nil {
				continue
			}
		}
		if err := send(ctx, cfg.Admit, t, out); err != nil {
			return false, err
		}
	}
}

// send hands t on, once admit (when set) lets it.
func send(ctx context.Context, admit func(context.Context, *txn.Txn) error, t *txn.Txn, out chan<- *txn.Txn) error {
	if admit != nil {
		if err := admit(ctx, t); err != nil {
			return err
		}
	}
	select {
	case out <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startSync connects, registers as a replica and asks for the stream after
// from, all under one deadline (connectDeadline); the syncer is closed
// when it fails.
func startSync(bcfg replication.BinlogSyncerConfig, timeout time.Duration, from gtid.Set) (*replication.BinlogSyncer, *replication.BinlogStreamer, error) {
	d := &connectDeadline{timeout: timeout}
	bcfg.Dialer = d.dial
	syncer := replication.NewBinlogSyncer(bcfg)
	started := time.Now()
	// A copy: for MySQL sets go-mysql adds each received transaction's
	// GTID to the set it was given (BinlogSyncer.prevGset), which is the
	// caller's position, shared and never to be mutated (gtid.Set).
	streamer, err := syncer.StartSyncGTID(from.Raw().Clone())
	if err != nil {
		if time.Since(started) < timeout {
			syncer.Close()
			return nil, nil, err
		}
		// Close kills our session through a new connection, which a
		// dead route would hold for another timeout: in the background.
		go syncer.Close()
		// go-mysql reports the deadline as a bad connection, its text
		// only: say what happened.
		return nil, nil, fmt.Errorf("source %s:%d did not complete the connect within %s (TCP, TLS and login handshakes, replica registration): the path to it drops packets or the server hangs: %w", bcfg.Host, bcfg.Port, timeout, err)
	}
	d.streaming()
	return syncer, streamer, nil
}

// eventCache is how many parsed events go-mysql may hold ahead of Stream.
const eventCache = 512

// watchdog ends a stream that waited three heartbeat periods for an event
// (the source sends heartbeats while idle): time spent waiting on our own
// consumers does not count.
type watchdog struct {
	waiting atomic.Bool
	events  atomic.Uint64
}

func (w *watchdog) watch(ctx context.Context, heartbeat time.Duration, fire func()) {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	last, missed := w.events.Load(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := w.events.Load()
		if n == last && w.waiting.Load() {
			missed++
		} else {
			missed = 0
		}
		last = n
		if missed >= 3 {
			fire()
			return
		}
	}
}

// deadStream is a stream the watchdog ended; a network error (retryable).
type deadStream struct{ msg string }

func (e deadStream) Error() string   { return e.msg }
func (e deadStream) Timeout() bool   { return true }
func (e deadStream) Temporary() bool { return true }

// explainDump adds the operator's fix to errors the dump protocol returns.
func explainDump(err error, src conn.Endpoint) error {
	switch conn.Code(err) {
	case 1236:
		return fmt.Errorf("the source cannot serve the binlog we need (purged, or a GTID it never had); re-seed the target or pick a position the source still has: %w", err)
	case 1045, 1044, 1227, 1142, 3159:
		return conn.Explain(err, "source", src)
	}
	if te := conn.ExplainTLS(err, "source", src); te != nil {
		return te
	}
	return err
}

// quiet keeps go-mysql's own log lines out of the way: every failure it
// logs also comes back to us as an error, which the syncer logs once where it
// handles it. At debug level everything passes, for diagnosis.
func quiet(l *slog.Logger) *slog.Logger {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return l
	}
	return slog.New(levelFilter{l.Handler(), slog.LevelError + 1})
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}
