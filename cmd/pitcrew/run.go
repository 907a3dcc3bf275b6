package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pitcrew/pitcrew/internal/devtools/cpuprof"
	"github.com/pitcrew/pitcrew/internal/jobs/dumpfile"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
)

var errTimeout = errors.New("timeout")

// channelFlags are the flags sync and catchup share.
type channelFlags struct {
	config    string
	startFrom string
	startGTID string
	startDump string
}

func (c *channelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "pitcrew.yaml", "config file (YAML; README.md documents every key)")
	fs.StringVar(&c.startFrom, "start-from", "", "first start only: target | now | beginning (overrides start_from)")
	fs.StringVar(&c.startGTID, "start-gtid", "", "first start only: GTID set already applied on the target (overrides start_gtid)")
	fs.StringVar(&c.startDump, "start-from-dump", "", "first start only: the dump the target was loaded from (mariadb-dump --gtid --master-data=2 or mysqldump --set-gtid-purged=ON; .gz is fine); the stream starts at its recorded GTID position")
}

// build loads the config and applies the flags.
func (c *channelFlags) build() (fileConfig, syncer.Config, error) {
	fc, err := loadConfig(c.config)
	if err != nil {
		return fc, syncer.Config{}, err
	}
	if c.startFrom != "" {
		fc.StartFrom, fc.StartGTID = c.startFrom, ""
	}
	given := 0
	for _, f := range []string{c.startFrom, c.startGTID, c.startDump} {
		if f != "" {
			given++
		}
	}
	if given > 1 {
		return fc, syncer.Config{}, errors.New("--start-from, --start-gtid and --start-from-dump choose the same thing: give one")
	}
	if c.startGTID != "" {
		fc.StartFrom, fc.StartGTID = syncer.StartGTID, c.startGTID
	}
	if c.startDump != "" {
		_, set, err := dumpfile.Position(c.startDump)
		if err != nil {
			return fc, syncer.Config{}, err
		}
		fc.StartFrom, fc.StartGTID = syncer.StartGTID, set.String()
	}
	if fc.StartGTID != "" {
		if fc.StartFrom == "" {
			fc.StartFrom = syncer.StartGTID
		}
		if err := checkGTIDSyntax(fc.StartGTID); err != nil {
			return fc, syncer.Config{}, fmt.Errorf("--start-gtid: %w", err)
		}
	}
	cfg := fc.syncerConfig()
	if c.startDump != "" {
		cfg.StartGTIDOrigin = "the position recorded in the dump " + c.startDump
	}
	return fc, cfg, nil
}

// checkGTIDSyntax rejects a set that is neither flavour's notation before
// anything connects.
func checkGTIDSyntax(s string) error {
	if _, err := gtid.Parse(gtid.MariaDB, s); err == nil {
		return nil
	}
	if _, err := gtid.Parse(gtid.MySQL, s); err == nil {
		return nil
	}
	return fmt.Errorf("malformed GTID set %q: use MariaDB domain-server-seq[,...] (e.g. 0-1-42) or MySQL uuid[:tag]:N[-M][,...]", s)
}

func cmdSync(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("sync", "sync --config FILE [--start-from WHERE | --start-gtid SET]", stderr)
	var cf channelFlags
	cf.register(fs)
	httpAddr := fs.String("http", "", "listen address for the console, /metrics, /healthz, /readyz, /status (overrides http_addr; 'off' disables)")
	initialLoad := fs.Bool("initial-load", false, "first run a full load (pitcrew load) of the replicated tables, then stream from its snapshot")
	if err := parse(fs, args); err != nil {
		return err
	}
	fc, cfg, err := cf.build()
	if err != nil {
		return err
	}
	if *initialLoad && cfg.StartFrom != syncer.StartNone {
		return errors.New("--initial-load decides where the stream starts: drop --start-from/--start-gtid")
	}
	if *httpAddr != "" {
		fc.HTTPAddr = *httpAddr
	}
	if cfg.Logger, err = newLoggerFormat(stderr, fc.LogLevel, fc.LogFormat); err != nil {
		return err
	}
	cfg.ProgressEvery = fc.logProgress()
	reg := newRegistry()
	s, err := syncer.New(cfg, syncer.NewMetrics(reg, cfg.Channel))
	if err != nil {
		return err
	}
	_, stop, err := serve(ctx, fc.console(), fc.httpAddr(), cfg.Logger, service{title: "sync " + cfg.Channel, gatherer: reg, channels: staticChannels(s),
		urlFile: filepath.Join(cfg.DataDir, serviceURLFile)})
	if err != nil {
		return err
	}
	defer stop()
	if *initialLoad {
		if _, err := runLoad(ctx, cfg, 4, 10000, "", allObjects(), stderr); err != nil {
			return err
		}
	}
	err = s.Run(ctx, syncer.RunOptions{})
	if err == nil {
		cfg.Logger.Info("stopped cleanly", "gtid", s.Status().AppliedGTIDSet)
	}
	return err
}

func cmdCatchup(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("catchup", "catchup --config FILE [--until SET] [--timeout DURATION] [--start-from WHERE | --start-gtid SET]", stderr)
	var cf channelFlags
	cf.register(fs)
	until := fs.String("until", "", "stop once the target covers this GTID set (default: the source's executed set at start)")
	timeout := fs.Duration("timeout", 0, "give up after this long (e.g. 10m) with exit code 2 and the gap printed; 0 = no limit")
	verbose := fs.Bool("verbose", false, "log at the config's log_level instead of warnings only")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	stopProfile, err := cpuprof.Start(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	fc, cfg, err := cf.build()
	if err != nil {
		return err
	}
	if *until != "" {
		if err := checkGTIDSyntax(*until); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	level := "warn"
	if *verbose {
		level = fc.LogLevel
	}
	if cfg.Logger, err = newLogger(stderr, level); err != nil {
		return err
	}
	s, err := syncer.New(cfg, syncer.NewMetrics(prometheus.NewRegistry(), cfg.Channel))
	if err != nil {
		return err
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	bar := newProgress(stderr)
	done := make(chan struct{})
	go bar.loop(s, done)
	err = s.Run(ctx, syncer.RunOptions{CatchUp: true, Until: *until})
	close(done)
	if err == nil || errors.Is(err, syncer.ErrTimeout) {
		bar.final(s.Status())
	} else {
		bar.clear()
	}
	if errors.Is(err, syncer.ErrTimeout) {
		return fmt.Errorf("%w: %w", errTimeout, err)
	}
	if err == nil && ctx.Err() != nil {
		return errors.New("interrupted before the target caught up; run catchup again to resume")
	}
	return err
}

func isTTY(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
