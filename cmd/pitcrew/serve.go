package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/pitcrew/pitcrew/console"
	"github.com/pitcrew/pitcrew/syncer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry is a process's Prometheus registry: Go runtime, process and
// pitcrew_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	syncer.RegisterBuildInfo(reg, version, buildRevision())
	return reg
}

// buildRevision is the VCS revision the binary was built from ("" when
// unknown, e.g. go test binaries).
// service is what a long-running command serves on http_addr.
type service struct {
	title     string
	gatherer  prometheus.Gatherer
	channels  func() []syncer.StatusSource
	conflicts console.Conflicts
	runbook   console.Runbook
	list      bool // /status is an array (more than one channel, or they come and go)
	// urlFile, when set, holds the console's URL while the service runs,
	// so that `pitcrew status --config` finds it whatever address it got.
	urlFile string
}

// serviceURLFile is the file in a data dir naming the running service's URL.
const serviceURLFile = "service.url"

// consoleSettings are the config keys of the console.
type consoleSettings struct {
	token    string
	readOpen bool
	maxLag   time.Duration
}

func (fc fileConfig) console() consoleSettings {
	return consoleSettings{token: fc.consoleToken(), readOpen: fc.ConsoleRead, maxLag: fc.healthMaxLag()}
}

// serve listens on addr ("" = off) and serves the console, /metrics,
// /healthz, /readyz and /status until the returned stop is called; url is
// the console's ("" when off). A bind beyond loopback without a token is
// refused before anything runs.
func serve(ctx context.Context, cs consoleSettings, addr string, log *slog.Logger, s service) (url string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	hs, err := console.Listen(addr)
	if err != nil {
		return "", nil, fmt.Errorf("listening on %s for the console and /metrics: %w (set http_addr or --http to a free address, or 'off')", addr, err)
	}
	health := syncer.HealthOptions{MaxLag: cs.maxLag}
	con, err := console.New(console.Config{
		Title: s.title, Version: version, Token: cs.token, ReadOpen: cs.readOpen, Health: health,
		Channels: s.channels, Conflicts: s.conflicts, Runbook: s.runbook, Logger: log,
	}, hs.Addr())
	if err != nil {
		hs.Close()
		return "", nil, err
	}
	base := http.NewServeMux()
	syncer.Endpoints{Gatherer: s.gatherer, Health: health, Channels: s.channels, List: s.list}.Register(base)
	cctx, cancel := context.WithCancel(ctx)
	go con.Run(cctx)
	hs.Serve(con.Handler(base))
	url = hs.URL()
	log.Info("console and /metrics, /healthz, /readyz, /status served", "url", url)
	if s.urlFile != "" {
		if err := os.MkdirAll(filepath.Dir(s.urlFile), 0o700); err == nil {
			err = os.WriteFile(s.urlFile, []byte(url+"\n"), 0o600)
		}
		if err != nil {
			log.Warn("cannot record the service's URL in the data dir; pitcrew status finds it at http_addr only", "file", s.urlFile, "err", err)
		}
	}
	return url, func() {
		cancel()
		hs.Close()
		if s.urlFile != "" {
			_ = os.Remove(s.urlFile)
		}
	}, nil
}

// staticChannels adapts syncers to the console's channel list.
func staticChannels(ss ...*syncer.Syncer) func() []syncer.StatusSource {
	out := make([]syncer.StatusSource, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return func() []syncer.StatusSource { return out }
}
