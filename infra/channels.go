package infra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

// The two directions of the move, named as `pitcrew bidi` names them.
const (
	forward = "source-target"
	reverse = "target-source"
)

// channel is one running direction.
type channel struct {
	s      *syncer.Syncer
	reg    *prometheus.Registry // its metrics (the console's /metrics gathers them)
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// channels are the directions this process runs; they outlive a step and
// stop when the run ends (resume restarts them from their checkpoints).
// A direction's config comes from the plan, the two sides' endpoints and
// (reverse) where the cut-over journaled it starts.
type channels struct {
	mu sync.Mutex
	m  map[string]*channel

	plan *Plan
	jr   *journal
	db   *sides
	op   *operator
	log  *slog.Logger
}

func (cs *channels) stopAll() {
	cs.mu.Lock()
	names := make([]string, 0, len(cs.m))
	for n := range cs.m {
		names = append(names, n)
	}
	cs.mu.Unlock()
	for _, n := range names {
		cs.stop(n)
	}
}

func (cs *channels) stop(name string) {
	cs.mu.Lock()
	c := cs.m[name]
	delete(cs.m, name)
	cs.mu.Unlock()
	if c != nil {
		c.cancel()
		<-c.done
	}
}

func (cs *channels) get(name string) *channel {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[name]
}

// channelConfig builds a direction's engine config: the engine's defaults,
// the two sides as a bidirectional set (syncer.MeshConfigs, as `pitcrew
// bidi` builds it), so both directions drop the other's echoes and nothing
// loops in the window when both run; then the plan's start options.
func (cs *channels) config(name string) (syncer.Config, error) {
	src, err := cs.db.endpoint("source")
	if err != nil {
		return syncer.Config{}, err
	}
	tgt, err := cs.db.endpoint("target")
	if err != nil {
		return syncer.Config{}, err
	}
	mesh, err := conflict.Mesh([]string{"source", "target"})
	if err != nil {
		return syncer.Config{}, err
	}
	base := syncer.Default()
	base.DataDir, base.ServerID = filepath.Join(cs.plan.DataDir, "channels"), cs.plan.Options.ServerID // forward's id; reverse's is +1
	var c syncer.Config
	for _, m := range syncer.MeshConfigs(base, map[string]conn.Endpoint{"source": src, "target": tgt}, mesh) {
		if m.Channel == name {
			c = m
		}
	}
	c.Logger = cs.log.With("channel", name)
	if cs.plan.Options.Fence == FenceLockUsers {
		c.FenceUsers = cs.plan.Options.AppUsers // a side's fence stays on that side
	}
	switch name {
	case forward:
		c.StartFrom, c.StartGTID = cs.plan.Options.StartFrom, cs.plan.Options.StartGTID
		if c.StartGTID != "" {
			c.StartFrom = syncer.StartGTID
		}
	case reverse:
		if c.StartGTID, err = cs.jr.outputOf("cutover", "reverse_start"); err != nil {
			return c, err
		}
		c.StartFrom = syncer.StartGTID
	}
	return c, nil
}

// startChannel runs a direction in the background (no-op when running).
func (cs *channels) start(name string) error {
	if c := cs.get(name); c != nil {
		select {
		case <-c.done:
			cs.stop(name) // it failed: start it again
		default:
			return nil
		}
	}
	cfg, err := cs.config(name)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	s, err := syncer.New(cfg, syncer.NewMetrics(reg, name))
	if err != nil {
		return fmt.Errorf("channel %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &channel{s: s, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = s.Run(ctx, syncer.RunOptions{})
	}()
	cs.mu.Lock()
	if cs.m == nil {
		cs.m = map[string]*channel{}
	}
	cs.m[name] = c
	cs.mu.Unlock()
	cs.op.say("channel %s running", name)
	return nil
}

// applied returns what a running direction has applied (echoes included).
func (cs *channels) applied(name string) (gtid.Set, error) {
	c := cs.get(name)
	if c == nil {
		return gtid.Set{}, fmt.Errorf("channel %s is not running", name)
	}
	select {
	case <-c.done:
		if c.err != nil {
			return gtid.Set{}, fmt.Errorf("channel %s stopped: %w", name, c.err)
		}
		return gtid.Set{}, fmt.Errorf("channel %s stopped", name)
	default:
	}
	st := c.s.Status()
	if st.Flavor == "" {
		return gtid.Set{}, errNotYet
	}
	return gtid.Parse(st.Flavor, st.AppliedGTIDSet)
}

var errNotYet = errors.New("not started yet")

// lag says how far a direction is behind goal, in transactions and time
// ("" when it cannot tell).
func (cs *channels) lag(name string, goal gtid.Set) string {
	have, err := cs.applied(name)
	if err != nil {
		return ""
	}
	lag := fmt.Sprintf("%d txns", have.Behind(goal))
	if c := cs.get(name); c != nil {
		lag += fmt.Sprintf(", %.0fms", c.s.Status().SecondsBehind*1000)
	}
	return lag
}

// waitApplied waits until a direction has applied goal.
func (cs *channels) waitApplied(ctx context.Context, name string, goal gtid.Set) error {
	cs.op.say("waiting for %s to apply %s", name, goal)
	return cs.awaitApplied(ctx, name, goal)
}

// awaitApplied is waitApplied without the progress line.
func (cs *channels) awaitApplied(ctx context.Context, name string, goal gtid.Set) error {
	// The channel runs in this process: its status is cheap to read, and
	// during the cut-over every millisecond here is the application's stall.
	return cs.op.pollEvery(ctx, fmt.Sprintf("channel %s to apply %s", name, goal), time.Millisecond, func(context.Context) (bool, error) {
		set, err := cs.applied(name)
		if errors.Is(err, errNotYet) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return set.Contains(goal), nil
	})
}

// resumeChannels restarts what the journal says was running when the last
// process ended: forward from its step until the cut-over stopped it,
// reverse from the cut-over until take-down stopped it.
func (cs *channels) resume() error {
	fwd, err := cs.jr.step("forward")
	if err != nil {
		return err
	}
	cut, err := cs.jr.step("cutover")
	if err != nil {
		return err
	}
	down, err := cs.jr.step("take-down")
	if err != nil {
		return err
	}
	if fwd.Attempts > 0 && cut.Outputs["forward_stopped"] == "" {
		if err := cs.start(forward); err != nil {
			return err
		}
	}
	if cut.Outputs["reverse_start"] != "" && down.Outputs["reverse_stopped"] == "" {
		if err := cs.start(reverse); err != nil {
			return err
		}
	}
	return nil
}
