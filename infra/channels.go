package infra

import (
	"context"
	"errors"
	"fmt"
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
type channels struct {
	mu sync.Mutex
	m  map[string]*channel
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
func (r *run) channelConfig(name string) (syncer.Config, error) {
	src, err := r.endpoint("source")
	if err != nil {
		return syncer.Config{}, err
	}
	tgt, err := r.endpoint("target")
	if err != nil {
		return syncer.Config{}, err
	}
	mesh, err := conflict.Mesh([]string{"source", "target"})
	if err != nil {
		return syncer.Config{}, err
	}
	base := syncer.Default()
	base.DataDir, base.ServerID = filepath.Join(r.p.DataDir, "channels"), r.p.Options.ServerID // forward's id; reverse's is +1
	var c syncer.Config
	for _, m := range syncer.MeshConfigs(base, map[string]conn.Endpoint{"source": src, "target": tgt}, mesh) {
		if m.Channel == name {
			c = m
		}
	}
	c.Logger = r.log.With("channel", name)
	if r.p.Options.Fence == FenceLockUsers {
		c.FenceUsers = r.p.Options.AppUsers // a side's fence stays on that side
	}
	switch name {
	case forward:
		c.StartFrom, c.StartGTID = r.p.Options.StartFrom, r.p.Options.StartGTID
		if c.StartGTID != "" {
			c.StartFrom = syncer.StartGTID
		}
	case reverse:
		if c.StartGTID, err = r.outputOf("cutover", "reverse_start"); err != nil {
			return c, err
		}
		c.StartFrom = syncer.StartGTID
	}
	return c, nil
}

// startChannel runs a direction in the background (no-op when running).
func (r *run) startChannel(name string) error {
	if c := r.chans.get(name); c != nil {
		select {
		case <-c.done:
			r.chans.stop(name) // it failed: start it again
		default:
			return nil
		}
	}
	cfg, err := r.channelConfig(name)
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
	r.chans.mu.Lock()
	if r.chans.m == nil {
		r.chans.m = map[string]*channel{}
	}
	r.chans.m[name] = c
	r.chans.mu.Unlock()
	r.say("channel %s running", name)
	return nil
}

// applied returns what a running direction has applied (echoes included).
func (r *run) applied(name string) (gtid.Set, error) {
	c := r.chans.get(name)
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

// waitApplied waits until a direction has applied goal.
func (r *run) waitApplied(ctx context.Context, name string, goal gtid.Set) error {
	r.say("waiting for %s to apply %s", name, goal)
	return r.awaitApplied(ctx, name, goal)
}

// awaitApplied is waitApplied without the progress line.
func (r *run) awaitApplied(ctx context.Context, name string, goal gtid.Set) error {
	// The channel runs in this process: its status is cheap to read, and
	// during the cut-over every millisecond here is the application's stall.
	return r.pollEvery(ctx, fmt.Sprintf("channel %s to apply %s", name, goal), time.Millisecond, func(context.Context) (bool, error) {
		set, err := r.applied(name)
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
func (r *run) resumeChannels(context.Context) error {
	fwd, err := r.store.Step(r.p.Name, "forward")
	if err != nil {
		return err
	}
	cut, err := r.store.Step(r.p.Name, "cutover")
	if err != nil {
		return err
	}
	down, err := r.store.Step(r.p.Name, "take-down")
	if err != nil {
		return err
	}
	if fwd.Attempts > 0 && cut.Outputs["forward_stopped"] == "" {
		if err := r.startChannel(forward); err != nil {
			return err
		}
	}
	if cut.Outputs["reverse_start"] != "" && down.Outputs["reverse_stopped"] == "" {
		if err := r.startChannel(reverse); err != nil {
			return err
		}
	}
	return nil
}
