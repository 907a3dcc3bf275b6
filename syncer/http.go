package syncer

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics, /healthz and /status for one syncer (/status is
// an object) or several (bidirectional: /status is an array).
func Handler(g prometheus.Gatherer, syncers ...*Syncer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		var states []string
		for _, s := range syncers {
			st := s.Status()
			if st.State == StateFailed {
				http.Error(w, "failed: "+st.Channel+": "+st.LastError, http.StatusServiceUnavailable)
				return
			}
			states = append(states, st.State)
		}
		_, _ = w.Write([]byte("ok " + strings.Join(states, " ") + "\n"))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if len(syncers) == 1 {
			_ = enc.Encode(syncers[0].Status())
			return
		}
		all := make([]Status, len(syncers))
		for i, s := range syncers {
			all[i] = s.Status()
		}
		_ = enc.Encode(all)
	})
	return mux
}
