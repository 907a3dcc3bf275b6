// Package syncer is the conductor of a channel: it opens the source and
// the target, checks them, reconciles the start position, wires the stages
//
//	binlog.Stream --txn.Queue--> applier.Applier --> target
//	binlog.Stream --txn.Queue--> spool -> relay -> replay --txn.Queue--> applier.Applier
//
// (the second with the relay), supervises them, restarting the pipeline
// from the last applied position whenever the source or the target goes
// away (capped backoff), and reports (status, metrics). The applier
// reaches the rest only through the interfaces it declares, which this
// package implements: its Filter (skips, echo filter, routing), Reporter
// (local checkpoint, relay, status) and Metrics. It is the only package
// that knows the whole shape.
//
// Invariants: the applied position only moves forward, and only past
// transactions committed on the target; a restart re-reads everything after
// it, so a half-received transaction is never applied.
package syncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/applier"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
)

// Syncer runs one channel.
type Syncer struct {
	cfg     Config
	metrics *Metrics
	status  statusBox
}

// New validates cfg (after defaults) and returns a syncer.
func New(cfg Config, m *Metrics) (*Syncer, error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg, metrics: m}
	s.status.s = Status{Channel: cfg.Channel, State: StateStarting}
	s.status.onState = m.setState
	return s, nil
}

// Status is a snapshot of the channel's state.
func (s *Syncer) Status() Status {
	st := s.status.get()
	st.EventsRead = s.metrics.events.Load()
	return st
}

// RunOptions choose between the service and a one-shot catch-up.
type RunOptions struct {
	// CatchUp stops once the target covers Until, or, when Until is empty,
	// the source's executed GTID state recorded at start.
	CatchUp bool
	Until   string
}

// ErrTimeout wraps the context's deadline for a catch-up that did not finish.
var ErrTimeout = errors.New("catch-up did not finish in time")

// Run runs the channel until ctx ends (service: returns nil) or, in catch-up
// mode, until the target covers the goal. Errors that retrying cannot fix
// are returned; the target is not written before every check has passed.
func (s *Syncer) Run(ctx context.Context, opts RunOptions) (err error) {
	s.status.update(func(st *Status) { st.StartedAt = time.Now().UTC() })
	defer func() {
		s.status.update(func(st *Status) {
			switch {
			case err != nil:
				st.State, st.LastError = StateFailed, err.Error()
			case st.State != StateCaughtUp:
				st.State = StateStopped
			}
		})
	}()
	srcDB, flavor, err := s.openSource(ctx)
	if err != nil {
		return err
	}
	defer srcDB.Close()

	var until gtid.Set
	if opts.CatchUp {
		if opts.Until != "" {
			if until, err = gtid.Parse(flavor, opts.Until); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
		} else if until, err = binlog.Executed(ctx, srcDB, flavor); err != nil {
			return conn.Explain(err, "source", s.cfg.Source)
		}
	}

	progress := s.progressTable()
	objects := &storedObjects{}
	ex, ledger, err := s.openExecutor(ctx, flavor, progress, objects)
	if err != nil {
		return err
	}
	defer ex.Close()
	if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	store, err := checkpoint.Open(s.cfg.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	start, err := s.resolveStart(ctx, srcDB, ex.DB(), store, flavor)
	if err != nil {
		return err
	}
	relay, err := s.openRelay(store)
	if err != nil {
		return err
	}
	if len(start.extras) > 0 {
		s.cfg.Logger.Info("parallel lanes committed batches beyond the position before the last stop; they are not applied again", "gtid", start.set.String(), "batches_beyond", len(start.extras))
	}
	st := &state{applied: start.set, until: until, catchUp: opts.CatchUp}
	p := &pipeline{s: s, ex: ex, store: store, flavor: flavor, st: st, srcDB: srcDB, relay: relay,
		echoes: conflict.NewEchoFilter(s.cfg.ProgressSchema, s.cfg.ProgressTable, s.cfg.Echo).Fence(s.cfg.FenceUsers), router: route.New(s.cfg.Route)}
	if start.first {
		start.written = start.set // its progress row is written there below
	}
	if p.ap, err = s.newApplier(p, start, opts, until); err != nil {
		return err
	}
	// Before anything is written: does the source still hold what we need
	// (after what the relay already holds)?
	from, err := p.readFrom()
	if err != nil {
		return err
	}
	if err := binlog.CheckGap(ctx, srcDB, flavor, from); err != nil {
		return err
	}
	// Every check passed: from here on the target may be written.
	if err := s.writeStart(ctx, p, start, objects, ledger, progress); err != nil {
		return err
	}

	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go s.pollSource(pollCtx, srcDB, flavor, st)

	return s.supervise(ctx, p)
}

// openSource connects to the source and checks it can be streamed from:
// its binlog settings, and a server_id other than ours.
func (s *Syncer) openSource(ctx context.Context) (*sql.DB, string, error) {
	srcDB, err := conn.Open(s.cfg.Source)
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*sql.DB, string, error) {
		srcDB.Close()
		return nil, "", err
	}
	if err := conn.Ping(ctx, srcDB, "source", s.cfg.Source); err != nil {
		return fail(err)
	}
	info, err := binlog.Inspect(ctx, srcDB)
	if err != nil {
		return fail(conn.Explain(err, "source", s.cfg.Source))
	}
	if err := info.CheckSource(); err != nil {
		return fail(err)
	}
	if info.ServerID == s.cfg.ServerID {
		return fail(fmt.Errorf("our server_id %d equals the source's: set server_id in the config to a value no other server or replica uses", s.cfg.ServerID))
	}
	flavor := info.Flavor
	s.status.update(func(st *Status) { st.Flavor = flavor })
	return srcDB, flavor, nil
}

// openExecutor opens the target for applying, with the conflict resolver
// and its ledger on a bidirectional channel.
func (s *Syncer) openExecutor(ctx context.Context, flavor string, progress checkpoint.Progress, objects *storedObjects) (*apply.Executor, *conflict.Ledger, error) {
	acfg := apply.Config{
		Target: s.cfg.Target, Channel: s.cfg.Channel, Flavor: flavor, Progress: progress,
		DDLPrefix: conflict.OriginMarker(s.cfg.Channel), NoCompact: s.cfg.NoCompact,
		Logger: s.cfg.Logger.With("component", "apply"), AfterDDL: objects.afterDDL,
		MarkDefinitions: len(s.cfg.Echo) > 0,
	}
	var ledger *conflict.Ledger
	if s.cfg.Conflicts != nil {
		ledger = &conflict.Ledger{Schema: s.cfg.ProgressSchema}
		acfg.Resolver = &resolver{channel: s.cfg.Channel, rules: *s.cfg.Conflicts, ledger: *ledger, s: s}
	}
	ex, err := apply.Open(ctx, acfg)
	return ex, ledger, err
}

// openRelay opens the channel's relay (nil with the relay off), cut after
// its last whole group.
func (s *Syncer) openRelay(store *checkpoint.Store) (*checkpoint.Relay, error) {
	if s.cfg.NoRelay {
		return nil, nil
	}
	relay, err := store.Relay(s.cfg.Channel, s.cfg.RelayQuota)
	if err != nil {
		return nil, err
	}
	if n := relay.Cut(); n > 0 {
		s.cfg.Logger.Warn("the relay's last segment ended in records after its last whole group (pieces of a transaction still arriving, a write a crash tore, or rot): cut them; what they held is read from the source again", "component", "relay", "bytes", n)
	}
	return relay, nil
}

// writeStart prepares the target once every check passed: guards and
// parked events, the ledger, the progress row (written at the first
// start), the lanes' table, the local checkpoint at the reconciled start,
// and shows it.
func (s *Syncer) writeStart(ctx context.Context, p *pipeline, start start, objects *storedObjects, ledger *conflict.Ledger, progress checkpoint.Progress) error {
	if err := s.prepareStored(ctx, objects, p.ex.DB(), p.srcDB, p.router); err != nil {
		return err
	}
	if ledger != nil {
		if err := ledger.Ensure(ctx, p.ex.DB()); err != nil {
			return err
		}
	}
	if start.first {
		if err := progress.Ensure(ctx, p.ex.DB()); err != nil {
			return err
		}
		if err := progress.Write(ctx, p.ex.DB(), s.cfg.Channel, p.flavor, start.set.String()); err != nil {
			return err
		}
		// Rows of lanes of an earlier channel of this name mean nothing now.
		if err := progress.DeleteLanes(ctx, p.ex.DB(), s.cfg.Channel); err != nil {
			return err
		}
		s.cfg.Logger.Info("channel starts", "gtid", start.set.String(), "start_from", s.cfg.StartFrom)
	}
	if s.cfg.Lanes > 1 {
		if err := progress.EnsureLanes(ctx, p.ex.DB()); err != nil {
			return err
		}
	}
	// The reconciled start: the target's row wins over a local copy ahead
	// of it, so this one write may move the checkpoint back (ResetPosition).
	applied := start.set.String()
	if err := p.store.ResetPosition(s.cfg.Channel, checkpoint.At(start.set, start.written)); err != nil {
		return err
	}
	s.status.update(func(x *Status) {
		x.AppliedGTIDSet = applied
		x.RelayState = RelayOff
		if p.relay != nil {
			x.RelayState, x.RelayBytes, x.RelayQuota = RelayReading, p.relay.Size(), s.cfg.RelayQuota
		}
	})
	if p.relay != nil {
		s.metrics.RelayQuota.Set(float64(s.cfg.RelayQuota))
		s.metrics.RelayBytes.Set(float64(p.relay.Size()))
	}
	return nil
}

// newApplier wires the apply stage of pipeline p: where it starts (after
// a resumed load, idempotent until the load's latest snapshot), and the
// channel's filters, reporter and counters.
func (s *Syncer) newApplier(p *pipeline, start start, opts RunOptions, until gtid.Set) (*applier.Applier, error) {
	as := applier.Start{Applied: start.set, Written: start.written, PendingDDL: start.pendingDDL, Beyond: start.extras,
		CatchUp: opts.CatchUp, Until: until}
	if ls, ok, err := p.store.Load(s.cfg.Channel); err != nil {
		return nil, err
	} else if ok && ls.Done && ls.Until != "" {
		if as.IdempotentUntil, err = gtid.Parse(p.flavor, ls.Until); err != nil {
			return nil, fmt.Errorf("load state: %w", err)
		}
	}
	skips, err := p.store.Skips(s.cfg.Channel)
	if err != nil {
		return nil, err
	}
	lanes := s.cfg.Lanes
	if s.cfg.Conflicts != nil {
		lanes = 1 // conflict resolution runs in the serial applier
	}
	cfg := applier.Config{Channel: s.cfg.Channel, Flavor: p.flavor, BatchTxns: s.cfg.BatchTxns, BatchRows: s.cfg.BatchRows,
		Lanes: lanes, ParallelTriggers: s.cfg.ParallelTriggers, Progress: s.progressTable(), Logger: s.cfg.Logger}
	hooks := applier.Hooks{Filter: &filters{s: s, store: p.store, skips: newSkipSet(skips), echoes: p.echoes, router: p.router},
		Report: p, Metrics: counters{s}, Decoder: binlog.NewDecoder(p.flavor)}
	return applier.New(cfg, p.ex, hooks, as), nil
}

// progressTable is where the target records the channel's progress.
func (s *Syncer) progressTable() checkpoint.Progress {
	return checkpoint.Progress{Schema: s.cfg.ProgressSchema, Table: s.cfg.ProgressTable}
}

type start struct {
	set        gtid.Set
	pendingDDL string
	first      bool
	written    gtid.Set       // the target's progress row
	extras     []applier.Span // batches applied beyond set by parallel lanes
}

// resolveStart reconciles the target's progress row, the local checkpoint
// and the operator's start options. The target's row wins: it commits with
// the data.
func (s *Syncer) resolveStart(ctx context.Context, srcDB, tgtDB *sql.DB, store *checkpoint.Store, flavor string) (start, error) {
	tp, onTarget, err := s.readTarget(ctx, tgtDB, flavor)
	if err != nil {
		return start{}, err
	}
	local, onDisk, err := store.Position(s.cfg.Channel)
	if err != nil {
		return start{}, err
	}
	if onTarget {
		row, set, extras := tp.row, tp.set, tp.extras
		if onDisk {
			if l, err := gtid.Parse(local.Flavor, local.GTIDSet); err == nil && !set.Contains(l) {
				if _, ok := LocalAhead(local, row.GTIDSet, set); ok {
					// Ahead only by transactions that changed nothing here.
					return start{set: l, pendingDDL: row.PendingDDL, written: tp.written, extras: extras}, nil
				}
				s.cfg.Logger.Warn("local checkpoint is ahead of the target's progress row; the target's row wins", "local", l.String(), "target", set.String())
			}
		}
		if s.cfg.StartFrom != StartNone {
			s.cfg.Logger.Info("channel has a checkpoint; start options ignored", "gtid", set.String())
		}
		if err := s.checkOnSource(ctx, srcDB, flavor, set, fmt.Sprintf("the checkpoint of channel %q (its progress row on the target)", s.cfg.Channel),
			"the source is not the server this channel streamed from, or it lost transactions (restored from a backup, failed over to a replica that lagged): point source at the right server, or start the channel anew (another channel name, an empty data dir)"); err != nil {
			return start{}, err
		}
		return start{set: set, pendingDDL: row.PendingDDL, written: tp.written, extras: extras}, nil
	}
	if onDisk {
		return start{}, fmt.Errorf("the target has no progress row for channel %q, but the local checkpoint in %s is at %q: the target was replaced or its %s schema dropped; to start the channel anew, use an empty data dir and choose --start-from", s.cfg.Channel, s.cfg.DataDir, local.GTIDSet, s.cfg.ProgressSchema)
	}
	var set gtid.Set
	if s.cfg.StartFrom == StartNone {
		// A completed `pitcrew load` hands off to the stream.
		if ls, ok, err := store.Load(s.cfg.Channel); err != nil {
			return start{}, err
		} else if ok && ls.Done {
			if set, err = gtid.Parse(flavor, ls.Position); err != nil {
				return start{}, fmt.Errorf("load state: %w", err)
			}
			s.cfg.Logger.Info("starting after the full load", "gtid", set.String(), "idempotent_until", ls.Until)
			return start{set: set, first: true}, nil
		}
	}
	switch s.cfg.StartFrom {
	case StartNone:
		return start{}, fmt.Errorf("channel %q has no checkpoint yet: choose where to start: --start-from target (target restored from a snapshot or dump of the source), --start-from now (only changes from now on), --start-from beginning (everything the source's binlog still holds), or --start-gtid SET", s.cfg.Channel)
	case StartGTID:
		what := s.cfg.StartGTIDOrigin
		if what == "" {
			what = "--start-gtid"
		}
		if set, err = gtid.Parse(flavor, s.cfg.StartGTID); err != nil {
			return start{}, fmt.Errorf("%s: %w", what, err)
		}
		if err := s.checkOnSource(ctx, srcDB, flavor, set, what,
			"give the GTID set the target already holds, which the source must have executed (is source the server the target was copied from?), or choose --start-from target|now|beginning"); err != nil {
			return start{}, err
		}
	case StartNow:
		if set, err = binlog.Executed(ctx, srcDB, flavor); err != nil {
			return start{}, err
		}
	case StartBeginning:
		set = gtid.Empty(flavor)
	case StartTarget:
		restored, err := binlog.Restored(ctx, tgtDB, flavor)
		if err != nil {
			return start{}, fmt.Errorf("reading the target's GTID state: %w", err)
		}
		srcSet, err := binlog.Executed(ctx, srcDB, flavor)
		if err != nil {
			return start{}, err
		}
		// The target's own domains (UUIDs) mean nothing to its source.
		set = restored.Known(srcSet)
		if set.IsEmpty() && !srcSet.IsEmpty() {
			// Starting from nothing would replay the source's whole
			// binlog onto a target that may well hold the data.
			return start{}, fmt.Errorf("--start-from target: the target holds no GTID state for the source's %s (the target's state is %q, the source's %q): it was not restored from a snapshot or dump that recorded the source's position; "+
				"set it on the target (MariaDB: SET GLOBAL gtid_slave_pos='<the dump's position>'; MySQL: SET GLOBAL gtid_purged='<set>'), or use --start-from-dump FILE, "+
				"or --start-from beginning to replay everything the source's binlog still holds, or fill the target from a consistent snapshot with pitcrew load", unitsOf(flavor), restored.String(), srcSet.String())
		}
		if out := gtid.Outside(set, srcSet, "the source"); out != "" {
			return start{}, fmt.Errorf("--start-from target: the target's GTID state %q is not contained in the source's executed set %q: %s; nothing was written: the target was not copied from this source, or holds writes of its own in the source's %s: check source and target", set.String(), srcSet.String(), out, unitsOf(flavor))
		}
	}
	return start{set: set, first: true}, nil
}

// checkOnSource refuses a start position (what names it) that the source
// has not executed in full: streaming from it would idle or end on the
// server's 1236 later, after the position was recorded. fix is the
// remedy. Nothing has been written to the target when it refuses.
func (s *Syncer) checkOnSource(ctx context.Context, srcDB *sql.DB, flavor string, set gtid.Set, what, fix string) error {
	if set.IsEmpty() {
		return nil
	}
	srcSet, err := binlog.Executed(ctx, srcDB, flavor)
	if err != nil {
		return conn.Explain(err, "source", s.cfg.Source)
	}
	out := gtid.Outside(set, srcSet, "the source")
	if out == "" {
		return nil
	}
	return fmt.Errorf("%s %q is not contained in the source's executed GTID set %q: %s; nothing was written: %s", what, set.String(), srcSet.String(), out, fix)
}

// unitsOf names what a flavour's GTID set is made of.
func unitsOf(flavor string) string {
	if flavor == gtid.MariaDB {
		return "replication domains"
	}
	return "server UUIDs"
}

// supervise runs the pipeline, restarting it from the applied position
// after transient failures with capped exponential backoff.
func (s *Syncer) supervise(ctx context.Context, p *pipeline) error {
	backoff := 500 * time.Millisecond
	for {
		if p.st.done() {
			s.status.update(func(x *Status) { x.State = StateCaughtUp })
			return nil
		}
		s.status.update(func(x *Status) { x.State = StateStreaming; x.LastError = "" })
		// The target's progress row is the truth after any failure: a batch
		// whose COMMIT reply was lost may have landed.
		// With lanes, batches beyond the position may have landed too.
		if tp, ok, err := s.readTarget(ctx, p.ex.DB(), p.flavor); err == nil && ok {
			if tp.set.Contains(p.st.appliedSet()) && !p.st.appliedSet().Contains(tp.set) {
				s.cfg.Logger.Info("the target is ahead of the in-memory position; continuing from the target", "gtid", tp.set.String())
				p.st.advance(tp.set, time.Time{}, 0)
			}
			p.ap.Resume(tp.set, tp.written, tp.extras)
		}
		applied := p.st.appliedSet()
		err := p.run(ctx)
		switch {
		case errors.Is(err, applier.ErrCaughtUp):
			s.status.update(func(x *Status) { x.State = StateCaughtUp })
			return nil
		case ctx.Err() != nil:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: target at %q, goal %q, %d transactions behind", ErrTimeout, p.st.applied.String(), p.st.until.String(), p.st.applied.Behind(p.st.until))
			}
			return nil
		case err == nil:
			err = errors.New("binlog stream ended")
		}
		s.metrics.Errors.Inc()
		if !conn.Retryable(err) && !errors.Is(err, errRelayRefetch) && !errors.Is(err, applier.ErrReadAgain) {
			return err
		}
		if !p.st.appliedSet().Equal(applied) {
			backoff = 500 * time.Millisecond // progress was made: start small again
		}
		s.metrics.Reconnects.Inc()
		s.cfg.Logger.Warn("pipeline stopped; restarting from the applied position", "gtid", p.st.applied.String(), "in", backoff.String(), "error", err)
		s.status.update(func(x *Status) { x.State = StateRetrying; x.LastError = err.Error(); x.Reconnects++ })
		select {
		case <-ctx.Done():
			continue
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.RestartBackoffMax)
	}
}

// target is what the target records for the channel: its progress row,
// and the applied set that row and the lanes' rows give together (merge).
type target struct {
	row     checkpoint.ProgressRow
	written gtid.Set // the row's position
	set     gtid.Set
	extras  []applier.Span // batches applied beyond set
}

// readTarget reads the channel's progress and lane rows; ok is false when
// the channel has no progress row there.
func (s *Syncer) readTarget(ctx context.Context, db *sql.DB, flavor string) (tp target, ok bool, err error) {
	progress := s.progressTable()
	row, ok, err := progress.Load(ctx, db, s.cfg.Channel)
	if err != nil || !ok {
		return target{}, false, err
	}
	if row.Flavor != flavor {
		return target{}, false, fmt.Errorf("channel %q on the target was recorded for a %s source, but the source is %s: use another channel name for a different source", s.cfg.Channel, row.Flavor, flavor)
	}
	set, err := gtid.Parse(flavor, row.GTIDSet)
	if err != nil {
		return target{}, false, fmt.Errorf("progress row of channel %q on the target: %w", s.cfg.Channel, err)
	}
	lanes, err := progress.LoadLanes(ctx, db, s.cfg.Channel)
	if err != nil {
		return target{}, false, err
	}
	tp = target{row: row, written: set}
	if tp.set, tp.extras, err = applier.Merge(flavor, set, lanes); err != nil {
		return target{}, false, err
	}
	return tp, true, nil
}

// pollSource keeps the source's executed set, the backlog and the retention
// guard's estimate in the status.
func (s *Syncer) pollSource(ctx context.Context, db *sql.DB, flavor string, st *state) {
	const every = 2 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	g := guard{margin: s.cfg.RetentionMargin, hours: math.NaN()}
	rep := reporter{every: s.cfg.ProgressEvery}
	for i := 0; ; i++ {
		if src, err := binlog.Executed(ctx, db, flavor); err == nil {
			st.setSource(src)
			s.refreshLag(st)
		}
		if i%15 == 0 { // the setting rarely changes: read it every 30s
			if h, _, err := binlog.Retention(ctx, db); err == nil {
				g.hours = h
			}
		}
		s.checkRetention(&g, st)
		if i > 0 { // the rate needs two polls
			txns, _ := st.appliedSoFar()
			behind, lag, _ := st.lag()
			x := s.status.get()
			s.observe(&rep, time.Now(), txns, behind, lag, g.rate, x.CatchUpIn)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// guard is the retention guard's memory between polls.
type guard struct {
	margin   time.Duration
	hours    float64 // retention; NaN until read
	rate     float64 // applied transactions per second, smoothed
	lastTxns int64
	lastAt   time.Time
	warnedAt time.Time
}

func (s *Syncer) checkRetention(g *guard, st *state) {
	txns, lastCommit := st.appliedSoFar()
	now := time.Now()
	if !g.lastAt.IsZero() {
		inst := float64(txns-g.lastTxns) / now.Sub(g.lastAt).Seconds()
		g.rate = 0.5*g.rate + 0.5*inst
	}
	g.lastTxns, g.lastAt = txns, now
	s.status.update(func(x *Status) { x.ApplyRate = g.rate })
	if math.IsNaN(g.hours) {
		behind, _, _ := st.lag()
		v := assessRetention(retentionInput{Behind: behind, Rate: g.rate})
		s.status.update(func(x *Status) { x.CatchUpIn = seconds(v.CatchUpIn) })
		return
	}
	behind, _, _ := st.lag()
	var age time.Duration
	if !lastCommit.IsZero() {
		age = now.Sub(lastCommit)
	}
	v := assessRetention(retentionInput{RetentionHours: g.hours, Behind: behind, Rate: g.rate, OldestAge: age, Margin: g.margin})
	risk := 0.0
	if v.AtRisk {
		risk = 1
		if g.warnedAt.IsZero() || now.Sub(g.warnedAt) > 10*time.Minute {
			s.cfg.Logger.Warn(v.Message, "component", "retention")
			g.warnedAt = now
		}
	} else {
		g.warnedAt = time.Time{}
	}
	s.metrics.AtRisk.Set(risk)
	s.metrics.ExpiresIn.Set(seconds(v.ExpiresIn))
	s.status.update(func(x *Status) {
		x.RetentionWarning = v.Message
		x.BinlogExpiresIn, x.CatchUpIn = seconds(v.ExpiresIn), seconds(v.CatchUpIn)
	})
}

// seconds renders a duration for /status; negative means never/unknown.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}

// refreshLag publishes how far behind the source st is; also, when given,
// changes the status in the same update.
func (s *Syncer) refreshLag(st *state, also ...func(*Status)) {
	behind, lag, src := st.lag()
	s.metrics.TxnsBehind.Set(float64(behind))
	s.metrics.SecondsBehind.Set(lag)
	s.status.update(func(x *Status) {
		x.TransactionsBehind, x.SecondsBehind, x.SourceGTIDSet = behind, lag, src
		for _, f := range also {
			f(x)
		}
	})
}
