package bench

import (
	"strings"
	"testing"
)

// The summary prices the relay (the defaults against the same run with
// the relay off) and flags a lag measured below its target rate.
func TestSummaryRelayCostAndShortRate(t *testing.T) {
	r := &Report{
		Catchup: []CatchupResult{
			{Workload: WriteOnly, Contender: "native single-threaded", TxnsPerS: 5000, Seconds: 20, Equal: true},
			{Workload: WriteOnly, Contender: defaultsName, TxnsPerS: 9000, Seconds: 11, Equal: true},
			{Workload: WriteOnly, Contender: relayOffName, TxnsPerS: 10000, Seconds: 10, Equal: true},
		},
		Lag: []LagResult{
			{Contender: "native single-threaded", Rate: 2000, Achieved: 1000, Samples: 10, P99: 10},
			{Contender: defaultsName, Rate: 2000, Achieved: 1990, Samples: 10, P99: 12},
		},
	}
	var cost, short []Line
	for _, l := range r.Summary() {
		if strings.HasSuffix(l.Name, "vs relay off") {
			cost = append(cost, l)
		}
		if strings.Contains(l.Name, "short of the target rate") {
			short = append(short, l)
		}
	}
	if len(cost) != 1 || cost[0].Ratio != 0.9 || cost[0].Reference != relayOffName {
		t.Errorf("relay cost lines = %+v, want one at 0.90x against %q", cost, relayOffName)
	}
	if len(short) != 1 || !strings.HasPrefix(short[0].Name, "native") || short[0].Value != 1000 || !short[0].Warning {
		t.Errorf("short-rate lines = %+v, want native's only, at 1000 tx/s, a warning", short)
	}
}
