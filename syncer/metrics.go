package syncer

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are one channel's Prometheus series (prefix pitcrew_, base units).
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
	Conflicts     *prometheus.CounterVec
	ExpiresIn     prometheus.Gauge

	events atomic.Int64 // mirror of Events for /status
}

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
	return &Metrics{
		Conflicts:     conflicts,
		Events:        counter("pitcrew_binlog_events_total", "Binlog events read from the source."),
		BytesRead:     counter("pitcrew_binlog_read_bytes_total", "Bytes of binlog events read from the source."),
		Rows:          counter("pitcrew_rows_applied_total", "Row changes applied to the target."),
		Transactions:  counter("pitcrew_transactions_applied_total", "Source transactions applied to the target."),
		Reconnects:    counter("pitcrew_reconnects_total", "Pipeline restarts after the source or target went away."),
		Errors:        counter("pitcrew_errors_total", "Errors that stopped or restarted the pipeline."),
		SecondsBehind: gauge("pitcrew_seconds_behind_source", "Age of the last applied source transaction while behind; 0 when caught up."),
		TxnsBehind:    gauge("pitcrew_transactions_behind", "Source transactions not yet applied (at the last poll of the source)."),
		RelayBytes:    gauge("pitcrew_relay_bytes", "Bytes of source binlog spooled locally ahead of the applier."),
		AtRisk:        gauge("pitcrew_binlog_retention_at_risk", "1 when the source may purge a binlog the channel needs before it catches up."),
		ExpiresIn:     gauge("pitcrew_binlog_expires_in_seconds", "Estimated seconds until the oldest binlog still needed may be purged; -1 never."),
	}
}

// EventRead implements binlog.Stats.
func (m *Metrics) EventRead(bytes int) {
	m.Events.Inc()
	m.events.Add(1)
	m.BytesRead.Add(float64(bytes))
}
