package fleet

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/pitcrew/pitcrew/console"
)

//go:embed page/fleet.html
var fleetPage []byte

// View is the fleet as its page shows it.
type View struct {
	Fleet     string     `json:"fleet"`
	Now       time.Time  `json:"now"`
	Waves     []Wave     `json:"waves"`
	Databases []DBStatus `json:"databases"`
}

// Serve serves the fleet's page (/) and its JSON (/api/fleet) on addr
// until ctx ends; it links every runbook's own console. Loopback only: it
// has no token of its own.
func (r *Runner) Serve(ctx context.Context, addr string) (string, error) {
	if err := r.defaults(); err != nil {
		return "", err
	}
	hs, err := console.Listen(addr)
	if err != nil {
		return "", fmt.Errorf("listening on %s for the fleet view: %w (pass --http with a free address)", addr, err)
	}
	if !console.Loopback(hs.Addr()) {
		hs.Close()
		return "", fmt.Errorf("--http %s is reachable from other hosts: the fleet view has no token; listen on 127.0.0.1 (each runbook's console keeps its own token)", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(fleetPage)
	})
	mux.HandleFunc("GET /api/fleet", func(w http.ResponseWriter, req *http.Request) {
		v, err := r.View(req.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(v)
	})
	hs.Serve(mux)
	go func() { <-ctx.Done(); hs.Close() }()
	return hs.URL(), nil
}

// View gathers the fleet's state (as 'fleet status' does).
func (r *Runner) View(ctx context.Context) (View, error) {
	dbs, _, err := r.Status(ctx)
	if err != nil {
		return View{}, err
	}
	waves, err := r.Fleet.Waves()
	if err != nil {
		return View{}, err
	}
	return View{Fleet: r.Fleet.Name, Now: r.Now().UTC(), Waves: waves, Databases: dbs}, nil
}
