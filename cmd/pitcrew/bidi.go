package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/console"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/apply"
	"github.com/pitcrew/pitcrew/syncer"
)

const bidiUsage = "bidi plan|check|sync|status --config FILE [--force] [--start-from WHERE] [--json]"

// bidiSet is a loaded bidirectional config.
type bidiSet struct {
	fc       fileConfig
	nodes    map[string]conn.Endpoint
	names    []string
	channels []conflict.Channel
}

func loadBidi(path string) (*bidiSet, error) {
	fc, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	if len(fc.Nodes) == 0 {
		return nil, fmt.Errorf("config %s has no nodes: list them under nodes: (name, host, port, user, password) for bidirectional mode", path)
	}
	if fc.Source != (conn.Endpoint{}) || fc.Target != (conn.Endpoint{}) {
		return nil, fmt.Errorf("config %s has both nodes and source/target: use nodes only for bidirectional mode", path)
	}
	b := &bidiSet{fc: fc, nodes: map[string]conn.Endpoint{}}
	for i, n := range fc.Nodes {
		e := n.Endpoint
		if err := e.TLS.Validate(fmt.Sprintf("nodes[%d]", i)); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if p, ok := os.LookupEnv("PITCREW_NODE_" + strings.ToUpper(n.Name) + "_PASSWORD"); ok {
			e.Password = p
		}
		e.Default()
		b.nodes[n.Name] = e
		b.names = append(b.names, n.Name)
	}
	if b.channels, err = conflict.Mesh(b.names); err != nil {
		return nil, err
	}
	for name := range fc.Channels {
		if !slicesContainsChannel(b.channels, name) {
			return nil, fmt.Errorf("config %s: channels: %q is not a channel of these nodes (channels are named from-to, e.g. %s)", path, name, b.channels[0].Name)
		}
	}
	return b, nil
}

func slicesContainsChannel(chs []conflict.Channel, name string) bool {
	for _, c := range chs {
		if c.Name == name {
			return true
		}
	}
	return false
}

func (b *bidiSet) open(ctx context.Context) (map[string]*sql.DB, error) {
	dbs := map[string]*sql.DB{}
	for _, n := range b.names {
		db, err := conn.Open(b.nodes[n], conn.Options{Init: apply.Session})
		if err == nil {
			err = conn.Ping(ctx, db, "node "+n, b.nodes[n])
		}
		if err != nil {
			closeAll(dbs)
			return nil, err
		}
		dbs[n] = db
	}
	return dbs, nil
}

// ledgers are the nodes' conflict ledgers on their connections dbs.
func (b *bidiSet) ledgers(dbs map[string]*sql.DB) console.Ledgers {
	return console.Ledgers{Ledger: conflict.Ledger{Schema: b.fc.syncerConfig().ProgressSchema}, Nodes: b.names, DBs: dbs}
}

func closeAll(dbs map[string]*sql.DB) {
	for _, db := range dbs {
		db.Close()
	}
}

// syncerConfigs builds one engine config per channel (syncer.MeshConfigs,
// which infra's migration channels use too), with the file's and the
// flag's first-start options.
func (b *bidiSet) syncerConfigs(startFrom string) []syncer.Config {
	base := b.fc.syncerConfig()
	base.Conflicts = b.fc.Conflicts
	out := syncer.MeshConfigs(base, b.nodes, b.channels)
	for i := range out {
		c := &out[i]
		if o, ok := b.fc.Channels[c.Channel]; ok {
			c.StartFrom, c.StartGTID = o.StartFrom, o.StartGTID
			if o.StartGTID != "" && o.StartFrom == "" {
				c.StartFrom = syncer.StartGTID
			}
		}
		if startFrom != "" {
			c.StartFrom, c.StartGTID = startFrom, ""
		}
	}
	return out
}

func cmdBidi(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: pitcrew "+bidiUsage)
		return errUsage
	}
	sub, rest := subcommand(args)
	fs := newFlags("bidi "+sub, bidiUsage, stderr)
	config := fs.String("config", "pitcrew.yaml", "config file with nodes: (README.md, Bidirectional mode)")
	force := fs.Bool("force", false, "sync: start even when auto-increment offsets are unsafe")
	startFrom := fs.String("start-from", "", "sync, first start only: target | now | beginning for every channel (channels: in the config sets them one by one)")
	httpAddr := fs.String("http", "", "sync: listen address for the console, /metrics, /healthz, /readyz, /status (overrides http_addr)")
	asJSON := fs.Bool("json", false, "status: print JSON")
	if err := parse(fs, rest); err != nil {
		return err
	}
	b, err := loadBidi(*config)
	if err != nil {
		return err
	}
	switch sub {
	case "plan":
		for _, o := range conflict.Plan(b.names) {
			fmt.Fprintf(stdout, "node %s:\n  %s\n  on RDS: %s\n", o.Node, strings.Join(o.Statements(), "\n  "), o.RDS())
		}
		fmt.Fprintln(stdout, "Set these in each server's config file too, so they survive a restart.")
		return nil
	case "check":
		problems, err := b.check(ctx, stdout)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return fmt.Errorf("auto-increment offsets are unsafe: %s; run 'pitcrew bidi plan' for the settings", conflict.Join(problems))
		}
		return nil
	case "sync":
		return b.sync(ctx, *force, *startFrom, *httpAddr, stderr)
	case "status":
		return b.status(ctx, stdout, *asJSON)
	}
	fmt.Fprintf(stderr, "pitcrew bidi: unknown subcommand %q\nUsage: pitcrew %s\n", sub, bidiUsage)
	return errUsage
}

// check prints the nodes' offsets, colliding counters and risky tables, and
// returns the problems that make a reverse channel unsafe.
func (b *bidiSet) check(ctx context.Context, w io.Writer) ([]string, error) {
	dbs, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(dbs)
	settings, problems, err := conflict.Check(ctx, b.names, dbs)
	if err != nil {
		return nil, err
	}
	for _, o := range settings {
		fmt.Fprintf(w, "node %-10s auto_increment_increment=%d auto_increment_offset=%d\n", o.Node, o.Increment, o.Offset)
	}
	for _, p := range problems {
		fmt.Fprintln(w, "UNSAFE", p)
	}
	for _, n := range b.names {
		risks, err := conflict.Risks(ctx, dbs[n])
		if err != nil {
			return nil, err
		}
		for _, r := range risks {
			fmt.Fprintf(w, "RISK   node %s: %s has a primary key not generated by AUTO_INCREMENT: writes of one key on two nodes conflict\n", n, r)
		}
	}
	if len(problems) == 0 {
		fmt.Fprintln(w, "SAFE   auto-increment offsets keep the nodes' inserts apart")
	}
	return problems, nil
}

func (b *bidiSet) sync(ctx context.Context, force bool, startFrom, httpAddr string, stderr io.Writer) error {
	log, err := newLoggerFormat(stderr, b.fc.LogLevel, b.fc.LogFormat)
	if err != nil {
		return err
	}
	problems, err := b.check(ctx, io.Discard)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		if !force {
			return fmt.Errorf("refusing to run both directions: %s; fix with 'pitcrew bidi plan', or pass --force", conflict.Join(problems))
		}
		log.Warn("auto-increment offsets are unsafe; running anyway (--force)", "problems", conflict.Join(problems))
	}
	reg := newRegistry()
	var syncers []*syncer.Syncer
	for _, c := range b.syncerConfigs(startFrom) {
		c.Logger = log.With("channel", c.Channel)
		c.ProgressEvery = b.fc.logProgress()
		s, err := syncer.New(c, syncer.NewMetrics(reg, c.Channel))
		if err != nil {
			return fmt.Errorf("channel %s: %w", c.Channel, err)
		}
		syncers = append(syncers, s)
	}
	if httpAddr != "" {
		b.fc.HTTPAddr = httpAddr
	}
	svc := service{title: "bidi " + strings.Join(b.names, " <-> "), gatherer: reg, channels: staticChannels(syncers...), list: true}
	if addr := b.fc.httpAddr(); addr != "" {
		// The console's conflict list and resolve use each node's ledger
		// on connections of their own, as 'pitcrew conflicts' does.
		dbs, err := b.open(ctx)
		if err != nil {
			return err
		}
		defer closeAll(dbs)
		ledgers := b.ledgers(dbs)
		reg.MustRegister(ledgers)
		svc.conflicts = ledgers
	}
	_, stop, err := serve(ctx, b.fc.console(), b.fc.httpAddr(), log, svc)
	if err != nil {
		return err
	}
	defer stop()
	if err := syncer.RunGroup(ctx, syncers); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// channelState is one direction in `bidi status`.
type channelState struct {
	Channel  string `json:"channel"`
	Applied  string `json:"applied_gtid_set"`
	Source   string `json:"source_gtid_set"`
	Behind   int64  `json:"transactions_behind"`
	CaughtUp bool   `json:"caught_up"`
}

// status reads both directions from the nodes themselves: a channel is
// caught up when the target's progress row covers the source's executed
// set; the pair is in sync when every channel is.
func (b *bidiSet) status(ctx context.Context, w io.Writer, asJSON bool) error {
	dbs, err := b.open(ctx)
	if err != nil {
		return err
	}
	defer closeAll(dbs)
	cfg := b.fc.syncerConfig()
	prog := checkpoint.Progress{Schema: cfg.ProgressSchema, Table: cfg.ProgressTable}
	live := map[string]syncer.Status{}
	if addr := b.fc.httpAddr(); addr != "" {
		for _, st := range liveStatuses(ctx, "http://"+addr) {
			live[st.Channel] = st
		}
	}
	var states []channelState
	inSync := true
	for _, ch := range b.channels {
		var l *syncer.Status
		if st, ok := live[ch.Name]; ok {
			l = &st
		}
		r, err := syncer.ReachOf(ctx, dbs[ch.Source], dbs[ch.Target], prog, ch.Name, filepath.Join(cfg.DataDir, ch.Name), l)
		if err != nil {
			return err
		}
		states = append(states, channelState{Channel: ch.Name, Applied: r.Applied, Source: r.Source, Behind: r.Behind, CaughtUp: r.CaughtUp})
		inSync = inSync && r.CaughtUp
	}
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"in_sync": inSync, "channels": states})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tBEHIND\tCAUGHT UP\tAPPLIED\tSOURCE")
	for _, s := range states {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%s\n", s.Channel, s.Behind, s.CaughtUp, s.Applied, s.Source)
	}
	tw.Flush()
	if inSync {
		fmt.Fprintln(w, "in sync: every direction has applied everything its source executed; safe to move the application")
	} else {
		fmt.Fprintln(w, "NOT in sync: wait until every direction has caught up before moving the application")
	}
	return nil
}

// liveStatuses asks a running `bidi sync` for its channels' statuses.
func liveStatuses(ctx context.Context, url string) []syncer.Status {
	all, err := syncer.FetchStatuses(ctx, url, os.Getenv(envConsoleToken))
	if err != nil {
		return nil
	}
	return all
}
