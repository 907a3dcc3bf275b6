package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatusSource is what the HTTP endpoints read of a channel; *Syncer is one.
type StatusSource interface {
	Status() Status
}

// HealthOptions tune /healthz.
type HealthOptions struct {
	// MaxLag: /healthz is unhealthy while a channel is more than this many
	// seconds behind its source; 0 = lag never makes it unhealthy.
	MaxLag time.Duration
}

// Healthy says whether the channels are healthy for /healthz: none failed
// or stopped, none further behind than MaxLag. The text explains, one
// line per channel.
func Healthy(sts []Status, o HealthOptions) (bool, string) {
	ok := true
	var b strings.Builder
	for _, st := range sts {
		line := fmt.Sprintf("%s %s", st.Channel, st.State)
		switch {
		case st.State == StateFailed:
			ok, line = false, line+": "+st.LastError
		case st.State == StateStopped || st.State == StateNotRunning:
			ok, line = false, line+": the channel no longer applies anything"
		case o.MaxLag > 0 && st.SecondsBehind > o.MaxLag.Seconds():
			ok, line = false, line+fmt.Sprintf(": %.0fs behind the source, over health_max_lag %s", st.SecondsBehind, o.MaxLag)
		default:
			line += fmt.Sprintf(" %.0fs behind", st.SecondsBehind)
		}
		b.WriteString(line + "\n")
	}
	return ok, b.String()
}

// Ready says whether every channel has passed its start checks and is
// applying (streaming or caught up): what a scheduler waits for before it
// counts the process as up, and what it watches to take it out of service.
func Ready(sts []Status) (bool, string) {
	ok := true
	var b strings.Builder
	for _, st := range sts {
		switch st.State {
		case StateStreaming, StateCaughtUp:
			b.WriteString(st.Channel + " ready\n")
		default:
			ok = false
			b.WriteString(st.Channel + " not ready: " + st.State + "\n")
		}
	}
	return ok, b.String()
}

// Handler serves /metrics, /healthz, /readyz and /status for one syncer
// (/status is an object) or several (bidirectional: /status is an array).
func Handler(g prometheus.Gatherer, syncers ...*Syncer) http.Handler {
	src := make([]StatusSource, len(syncers))
	for i, s := range syncers {
		src[i] = s
	}
	mux := http.NewServeMux()
	Endpoints{Gatherer: g, Channels: func() []StatusSource { return src }, List: len(src) > 1}.Register(mux)
	return mux
}

// Endpoints are the machine-readable endpoints of a process.
type Endpoints struct {
	Gatherer prometheus.Gatherer
	Health   HealthOptions
	// Channels lists the channels running at the time of each request.
	Channels func() []StatusSource
	// List: /status is an array even of one channel (bidirectional mode,
	// a migration); otherwise one channel's object.
	List bool
}

// Register adds /metrics, /healthz, /readyz and /status to mux.
func (e Endpoints) Register(mux *http.ServeMux) {
	g, o, multi := e.Gatherer, e.Health, e.List
	statuses := func() []Status {
		var all []Status
		for _, s := range e.Channels() {
			all = append(all, s.Status())
		}
		return all
	}
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, text := Healthy(statuses(), o)
		plain(w, ok, text)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, text := Ready(statuses())
		plain(w, ok, text)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		all := statuses()
		if len(all) == 1 && !multi {
			_ = enc.Encode(all[0])
			return
		}
		if all == nil {
			all = []Status{}
		}
		_ = enc.Encode(all)
	})
}

// plain writes "ok" or "unhealthy" and the explanation, with 200 or 503.
func plain(w http.ResponseWriter, ok bool, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("unhealthy\n" + text))
		return
	}
	_, _ = w.Write([]byte("ok\n" + text))
}

// FetchStatus asks the service at url (http://host:port) for the /status
// of its one channel. token, when not empty, is sent as the bearer a
// console beyond loopback requires.
func FetchStatus(ctx context.Context, url, token string) (Status, error) {
	var st Status
	return st, fetchStatus(ctx, url, token, &st)
}

// FetchStatuses asks the service at url for the /status of its channels
// (an array: bidirectional mode, a migration).
func FetchStatuses(ctx context.Context, url, token string) ([]Status, error) {
	var all []Status
	return all, fetchStatus(ctx, url, token, &all)
}

// fetchStatus is the /status client: one GET within 3s, decoded into v.
func fetchStatus(ctx context.Context, url, token string, v any) error {
	if url == "" {
		return errors.New("no URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/status: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
