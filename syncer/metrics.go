package syncer

import (
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are one channel's Prometheus series (prefix pitcrew_, base units).
// deploy/grafana/pitcrew.json and deploy/prometheus/alerts.yaml use them;
// a test checks that every series they name is one the binary exports.
type Metrics struct {
	Events        prometheus.Counter
	BytesRead     prometheus.Counter
	Rows          prometheus.Counter
	Transactions  prometheus.Counter
	Reconnects    prometheus.Counter
	Errors        prometheus.Counter
	SecondsBehind prometheus.Gauge
	TxnsBehind    prometheus.Gauge
	AtRisk        prometheus.Gauge
	RelayBytes    prometheus.Gauge
	RelayQuota    prometheus.Gauge
	Conflicts     *prometheus.CounterVec
	ExpiresIn     prometheus.Gauge
	// ApplyDuration is the time one target transaction (a batch, a DDL, a
	// large transaction) took from BEGIN to COMMIT.
	ApplyDuration prometheus.Histogram
	// LastCommit is the source commit time (Unix seconds) of the last
	// applied transaction: time() minus it is the replication delay even
	// when the source poll is stale.
	LastCommit prometheus.Gauge
	// State is 1 for the channel's current state and 0 for the others.
	State *prometheus.GaugeVec

	events atomic.Int64 // mirror of Events for /status
}

// States lists every state a channel can be in (pitcrew_channel_state).
var States = []string{StateStarting, StateStreaming, StateCaughtUp, StateRetrying, StateFailed, StateStopped}

// NewMetrics registers a channel's series with reg.
func NewMetrics(reg prometheus.Registerer, channel string) *Metrics {
	l := prometheus.Labels{"channel": channel}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l})
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: l})
		reg.MustRegister(g)
		return g
	}
	conflicts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pitcrew_conflicts_total",
		Help: "Row conflicts in bidirectional mode, by policy and outcome.", ConstLabels: l}, []string{"policy", "outcome"})
	reg.MustRegister(conflicts)
	apply := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pitcrew_apply_duration_seconds",
		Help:        "Time one target transaction (batch, DDL or large transaction) took from BEGIN to COMMIT.",
		ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}) // 0.5 ms .. 11 min
	reg.MustRegister(apply)
	state := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pitcrew_channel_state",
		Help: "1 for the channel's current state (label state), 0 for the others.", ConstLabels: l}, []string{"state"})
	reg.MustRegister(state)
	m := &Metrics{
		Conflicts:     conflicts,
		ApplyDuration: apply,
		State:         state,
		Events:        counter("pitcrew_binlog_events_total", "Binlog events read from the source."),
		BytesRead:     counter("pitcrew_binlog_read_bytes_total", "Bytes of binlog events read from the source."),
		Rows:          counter("pitcrew_rows_applied_total", "Row changes applied to the target."),
		Transactions:  counter("pitcrew_transactions_applied_total", "Source transactions applied to the target."),
		Reconnects:    counter("pitcrew_reconnects_total", "Pipeline restarts after the source or target went away."),
		Errors:        counter("pitcrew_errors_total", "Errors that stopped or restarted the pipeline."),
		SecondsBehind: gauge("pitcrew_seconds_behind_source", "Age of the last applied source transaction while behind; 0 when caught up."),
		TxnsBehind:    gauge("pitcrew_transactions_behind", "Source transactions not yet applied (at the last poll of the source)."),
		RelayBytes:    gauge("pitcrew_relay_bytes", "Bytes of source binlog spooled locally ahead of the applier."),
		RelayQuota:    gauge("pitcrew_relay_quota_bytes", "The relay's size bound (relay_quota_bytes); 0 with the relay off."),
		AtRisk:        gauge("pitcrew_binlog_retention_at_risk", "1 when the source may purge a binlog the channel needs before it catches up."),
		ExpiresIn:     gauge("pitcrew_binlog_expires_in_seconds", "Estimated seconds until the oldest binlog still needed may be purged; -1 never."),
		LastCommit:    gauge("pitcrew_last_applied_source_commit_timestamp_seconds", "Source commit time (Unix seconds) of the last applied transaction."),
	}
	m.setState(StateStarting)
	return m
}

func (m *Metrics) setState(state string) {
	for _, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		m.State.WithLabelValues(s).Set(v)
	}
}

// EventRead implements binlog.Stats.
func (m *Metrics) EventRead(bytes int) {
	m.Events.Inc()
	m.events.Add(1)
	m.BytesRead.Add(float64(bytes))
}

// RegisterBuildInfo registers pitcrew_build_info (value 1) with the
// version, the VCS revision and the Go version as labels.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pitcrew_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()}})
	g.Set(1)
	reg.MustRegister(g)
}
