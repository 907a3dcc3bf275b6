// Package console is the operator's web page: one page, embedded in the
// binary, that shows each channel (state, lag, backlog, ETA, relay,
// retention, last error) with a live lag chart, the conflicts of a
// bidirectional pair (and settles parked ones), and a migration's runbook
// (steps, journal, guardrails, the drain picture, what the next step waits
// for, confirm and rollback).
//
// It reads the process through narrow interfaces (a status source per
// channel, a conflict store, a runbook), so the syncer and the runbook
// only implement them.
//
// Safe by construction:
//   - a listener reachable from other hosts needs a token (Config.Token);
//   - every state-changing request carries the token and the exact
//     confirmation phrase of its action (the page asks the person first);
//   - without the token a remote reader sees nothing unless the operator
//     allowed a read-only view (Config.ReadOpen); on loopback reads are open;
//   - the token is compared in constant time and never rendered; the page
//     holds it in the tab's session storage only.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/syncer"
)

//go:embed page
var pageFS embed.FS

// Conflicts is a store of conflicts: the ledgers of a bidirectional set's
// nodes.
type Conflicts interface {
	// Recent returns up to limit conflicts of every node, newest first,
	// and the number of parked ones.
	Recent(ctx context.Context, limit int) (list []Conflict, parked int, err error)
	Get(ctx context.Context, node string, id int64) (Conflict, error)
	// Resolve settles a parked conflict: take "source" or "target".
	Resolve(ctx context.Context, node string, id int64, take string) error
}

// Conflict is a ledger entry with the node whose ledger holds it.
type Conflict struct {
	Node string `json:"node"`
	conflict.Entry
}

// Runbook is a migration as the console shows it, and the operator's
// actions on it.
type Runbook interface {
	View(ctx context.Context) (RunbookView, error)
	// Confirm tells a waiting run that the application moved: phase
	// "cutover" (to the target) or "rollback" (back to the source).
	Confirm(ctx context.Context, phase string) error
	// Rollback moves the application back to the source (from any step
	// before take-down).
	Rollback(ctx context.Context) error
}

// RunbookView is a migration's state.
type RunbookView struct {
	Name  string `json:"name"`
	Steps []Step `json:"steps"`
	// Running names the step being run now ("" when none).
	Running string `json:"running,omitempty"`
	// Waiting says what the running step waits for, in words.
	Waiting string `json:"waiting,omitempty"`
	// Confirm is "cutover" or "rollback" while a run waits for the
	// operator to confirm that the application moved.
	Confirm    string      `json:"confirm,omitempty"`
	Guardrails []Guardrail `json:"guardrails,omitempty"`
	// Drain: the old side's traffic over time, as take-down reads it.
	Drain []DrainSample `json:"drain,omitempty"`
	// Rollback says whether a rollback is possible now, and why not.
	CanRollback bool   `json:"can_rollback"`
	RollbackWhy string `json:"rollback_why,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Step is one runbook step with its journal record.
type Step struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	State    string            `json:"state"`
	Attempts int               `json:"attempts"`
	Started  time.Time         `json:"started,omitzero"`
	Finished time.Time         `json:"finished,omitzero"`
	Error    string            `json:"error,omitempty"`
	Note     string            `json:"note,omitempty"`
	Outputs  map[string]string `json:"outputs,omitempty"`
}

// Guardrail is one cut-over check and its last result.
type Guardrail struct {
	Name   string    `json:"name"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// DrainSample is one look at the old side: requests on the old load
// balancer since the previous look (-1: no load balancer in the plan) and
// client sessions on the source.
type DrainSample struct {
	At       time.Time `json:"at"`
	Requests float64   `json:"requests"`
	Sessions int       `json:"sessions"`
	Clients  string    `json:"clients,omitempty"`
}

// Config is what the console serves and who may do what.
type Config struct {
	// Title names the process on the page ("sync main", "migration shop").
	Title   string
	Version string
	// Token authorizes actions, and reads from other hosts. Required when
	// the listener is not on loopback.
	Token string
	// ReadOpen lets anyone who reaches the listener read the page without
	// the token (actions still need it).
	ReadOpen bool
	// Health tunes /healthz.
	Health syncer.HealthOptions
	// Channels lists the channels now running (a migration's come and go).
	Channels  func() []syncer.StatusSource
	Conflicts Conflicts // nil: no conflicts section
	Runbook   Runbook   // nil: no migration section
	// SampleEvery is how often the lag chart takes a point; default 1s.
	SampleEvery time.Duration
	Logger      *slog.Logger
}

// MinTokenLen is the shortest token accepted: it stands between the
// network and the power to resolve conflicts and roll a migration back.
const MinTokenLen = 16

// Check refuses a configuration that would expose the console: a
// listener other hosts can reach without a token, or a weak token.
func (c Config) Check(addr net.Addr) error {
	if c.Token != "" && len(c.Token) < MinTokenLen {
		return fmt.Errorf("console_token is %d characters: use at least %d (e.g. openssl rand -hex 16)", len(c.Token), MinTokenLen)
	}
	if !Loopback(addr) && c.Token == "" {
		return fmt.Errorf("http_addr %s is reachable from other hosts and no console_token is set: set console_token in the config (or PITCREW_CONSOLE_TOKEN), or listen on 127.0.0.1", addr)
	}
	return nil
}

// Loopback reports whether a listener's address is loopback only.
func Loopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Server is the console's HTTP handler.
type Server struct {
	cfg      Config
	loopback bool
	mux      *http.ServeMux
	hist     *history
}

// New builds the console for a listener at addr. mux receives /metrics,
// /healthz, /readyz and /status from the caller (syncer.Register); the
// console adds / and /api/ and guards /status like its own reads.
func New(cfg Config, addr net.Addr) (*Server, error) {
	if err := cfg.Check(addr); err != nil {
		return nil, err
	}
	if cfg.Channels == nil {
		cfg.Channels = func() []syncer.StatusSource { return nil }
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, loopback: Loopback(addr), mux: http.NewServeMux(), hist: newHistory(600)}
	page, _ := fs.Sub(pageFS, "page")
	files := http.FileServerFS(page)
	s.mux.Handle("GET /", noCache(files))
	s.mux.HandleFunc("GET /api/state", s.read(s.state))
	s.mux.HandleFunc("GET /api/conflicts", s.read(s.conflicts))
	s.mux.HandleFunc("GET /api/conflicts/{node}/{id}", s.read(s.conflictDetail))
	s.mux.HandleFunc("POST /api/conflicts/{node}/{id}/resolve", s.act(s.resolve))
	s.mux.HandleFunc("POST /api/runbook/confirm", s.act(s.confirm))
	s.mux.HandleFunc("POST /api/runbook/rollback", s.act(s.rollback))
	return s, nil
}

// Handler wraps the caller's mux (health, metrics, status) with the
// console's routes; /status is guarded like the console's reads.
func (s *Server) Handler(base *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch {
		case r.URL.Path == "/metrics" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
			base.ServeHTTP(w, r)
		case r.URL.Path == "/status":
			if !s.mayRead(r) {
				deny(w, http.StatusUnauthorized, s.readDenied())
				return
			}
			base.ServeHTTP(w, r)
		default:
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
			w.Header().Set("X-Frame-Options", "DENY")
			w.Header().Set("Referrer-Policy", "no-referrer")
			s.mux.ServeHTTP(w, r)
		}
	})
}

// Run samples the channels for the lag chart until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	for {
		now := time.Now()
		for _, c := range s.cfg.Channels() {
			st := c.Status()
			s.hist.add(st.Channel, point{T: now.Unix(), Lag: st.SecondsBehind, Behind: st.TransactionsBehind, Rate: st.ApplyRate})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// bearer is the request's token ("" when none).
func bearer(r *http.Request) string {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(h)
}

func (s *Server) tokenOK(r *http.Request) bool {
	got := bearer(r)
	return s.cfg.Token != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func (s *Server) mayRead(r *http.Request) bool {
	return s.loopback || s.cfg.ReadOpen || s.tokenOK(r)
}

func (s *Server) readDenied() string {
	return "this console listens beyond loopback: enter the console token (console_token) to read it"
}

type apiError struct {
	Error string `json:"error"`
}

func deny(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// read guards a read-only API route.
func (s *Server) read(h func(http.ResponseWriter, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.mayRead(r) {
			deny(w, http.StatusUnauthorized, s.readDenied())
			return
		}
		v, err := h(w, r)
		if err != nil {
			code := http.StatusInternalServerError
			var he httpError
			if errors.As(err, &he) {
				code = he.code
			}
			deny(w, code, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

// actRequest is the body of every state-changing request.
type actRequest struct {
	Take    string `json:"take,omitempty"`
	Phase   string `json:"phase,omitempty"`
	Confirm string `json:"confirm"`
}

// act guards a state-changing route: the token, then the action's own
// confirmation phrase (returned by h's first result), then the action.
func (s *Server) act(h func(r *http.Request, req actRequest) (phrase string, do func(ctx context.Context) (string, error), err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" {
			deny(w, http.StatusForbidden, "actions are off: no console token is configured; set console_token in the config (or PITCREW_CONSOLE_TOKEN) and restart")
			return
		}
		if !s.tokenOK(r) {
			deny(w, http.StatusUnauthorized, "the console token is missing or wrong: enter it at the top of the page")
			return
		}
		var req actRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			deny(w, http.StatusBadRequest, "the request body is not the expected JSON: "+err.Error())
			return
		}
		phrase, do, err := h(r, req)
		if err != nil {
			code := http.StatusBadRequest
			var he httpError
			if errors.As(err, &he) {
				code = he.code
			}
			deny(w, code, err.Error())
			return
		}
		if req.Confirm != phrase {
			deny(w, http.StatusPreconditionFailed, fmt.Sprintf("not confirmed: this action needs the confirmation %q", phrase))
			return
		}
		msg, err := do(r.Context())
		if err != nil {
			s.cfg.Logger.Warn("console action failed", "component", "console", "action", phrase, "error", err)
			deny(w, http.StatusConflict, err.Error())
			return
		}
		s.cfg.Logger.Info("console action", "component", "console", "action", phrase, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, map[string]string{"message": msg})
	}
}

// state is everything the page polls every second but the conflicts.
type state struct {
	Title     string        `json:"title"`
	Version   string        `json:"version"`
	Now       time.Time     `json:"now"`
	Auth      authView      `json:"auth"`
	Healthy   bool          `json:"healthy"`
	Health    string        `json:"health"`
	Channels  []channelView `json:"channels"`
	Conflicts bool          `json:"conflicts"`
	Runbook   *RunbookView  `json:"runbook,omitempty"`
	SampleSec float64       `json:"sample_seconds"`
	MaxLag    float64       `json:"max_lag"` // health_max_lag in seconds; 0: off
}

type authView struct {
	// Token: a token is configured (actions possible); Valid: this request
	// carried it.
	Token bool `json:"token"`
	Valid bool `json:"valid"`
}

type channelView struct {
	syncer.Status
	History []point `json:"history"`
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) (any, error) {
	st := state{Title: s.cfg.Title, Version: s.cfg.Version, Now: time.Now().UTC(),
		Auth: authView{Token: s.cfg.Token != "", Valid: s.tokenOK(r)}, Conflicts: s.cfg.Conflicts != nil,
		SampleSec: s.cfg.SampleEvery.Seconds(), MaxLag: s.cfg.Health.MaxLag.Seconds()}
	var all []syncer.Status
	for _, c := range s.cfg.Channels() {
		cs := c.Status()
		all = append(all, cs)
		st.Channels = append(st.Channels, channelView{Status: cs, History: s.hist.get(cs.Channel)})
	}
	st.Healthy, st.Health = syncer.Healthy(all, s.cfg.Health)
	if s.cfg.Runbook != nil {
		v, err := s.cfg.Runbook.View(r.Context())
		if err != nil {
			v.Error = err.Error()
		}
		st.Runbook = &v
	}
	return st, nil
}

type conflictsView struct {
	Enabled bool       `json:"enabled"`
	Parked  int        `json:"parked"`
	List    []Conflict `json:"list"`
}

func (s *Server) conflicts(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Conflicts == nil {
		return conflictsView{}, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	list, parked, err := s.cfg.Conflicts.Recent(ctx, 200)
	if err != nil {
		return nil, fmt.Errorf("reading the conflict ledgers: %w", err)
	}
	if list == nil {
		list = []Conflict{}
	}
	return conflictsView{Enabled: true, Parked: parked, List: list}, nil
}

func (s *Server) conflictID(r *http.Request) (string, int64, error) {
	if s.cfg.Conflicts == nil {
		return "", 0, httpError{http.StatusNotFound, "this process keeps no conflict ledger (bidirectional mode only)"}
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return "", 0, httpError{http.StatusBadRequest, fmt.Sprintf("conflict id %q is not a number", r.PathValue("id"))}
	}
	return r.PathValue("node"), id, nil
}

func (s *Server) conflictDetail(w http.ResponseWriter, r *http.Request) (any, error) {
	node, id, err := s.conflictID(r)
	if err != nil {
		return nil, err
	}
	c, err := s.cfg.Conflicts.Get(r.Context(), node, id)
	if errors.Is(err, conflict.ErrNoEntry) || errors.Is(err, errNoNode) {
		return nil, httpError{http.StatusNotFound, err.Error()}
	}
	return c, err
}

// ResolvePhrase is the confirmation a resolve request must carry.
func ResolvePhrase(node string, id int64, take string) string {
	return fmt.Sprintf("resolve %s/%d take %s", node, id, take)
}

// ConfirmPhrase is the confirmation a confirm request must carry.
func ConfirmPhrase(phase string) string {
	if phase == "rollback" {
		return "the application writes to the source again"
	}
	return "the application writes to the target now"
}

// RollbackPhrase is the confirmation a rollback request must carry: the
// migration's name, typed.
func RollbackPhrase(name string) string { return "roll back " + name }

func (s *Server) resolve(r *http.Request, req actRequest) (string, func(context.Context) (string, error), error) {
	node, id, err := s.conflictID(r)
	if err != nil {
		return "", nil, err
	}
	if req.Take != "source" && req.Take != "target" {
		return "", nil, fmt.Errorf("take %q: use source (write the source's row) or target (keep the target's)", req.Take)
	}
	return ResolvePhrase(node, id, req.Take), func(ctx context.Context) (string, error) {
		if err := s.cfg.Conflicts.Resolve(ctx, node, id, req.Take); err != nil {
			return "", err
		}
		return fmt.Sprintf("conflict %d on node %s resolved: %s", id, node, req.Take), nil
	}, nil
}

func (s *Server) runbook() (Runbook, error) {
	if s.cfg.Runbook == nil {
		return nil, httpError{http.StatusNotFound, "this process runs no migration"}
	}
	return s.cfg.Runbook, nil
}

func (s *Server) confirm(r *http.Request, req actRequest) (string, func(context.Context) (string, error), error) {
	rb, err := s.runbook()
	if err != nil {
		return "", nil, err
	}
	if req.Phase != "cutover" && req.Phase != "rollback" {
		return "", nil, fmt.Errorf("phase %q: use cutover or rollback", req.Phase)
	}
	return ConfirmPhrase(req.Phase), func(ctx context.Context) (string, error) {
		if err := rb.Confirm(ctx, req.Phase); err != nil {
			return "", err
		}
		return "confirmed: the waiting run goes on within a second", nil
	}, nil
}

func (s *Server) rollback(r *http.Request, req actRequest) (string, func(context.Context) (string, error), error) {
	rb, err := s.runbook()
	if err != nil {
		return "", nil, err
	}
	v, err := rb.View(r.Context())
	if err != nil {
		return "", nil, err
	}
	if !v.CanRollback {
		return "", nil, httpError{http.StatusConflict, "rollback is not possible now: " + v.RollbackWhy}
	}
	return RollbackPhrase(v.Name), func(ctx context.Context) (string, error) {
		if err := rb.Rollback(ctx); err != nil {
			return "", err
		}
		return "rollback started: follow it in the runbook", nil
	}, nil
}

// history keeps the last points of each channel for the lag chart.
type history struct {
	mu  sync.Mutex
	max int
	m   map[string][]point
}

// point is one sample: Unix seconds, seconds behind, transactions behind,
// apply rate.
type point struct {
	T      int64   `json:"t"`
	Lag    float64 `json:"lag"`
	Behind int64   `json:"behind"`
	Rate   float64 `json:"rate"`
}

func newHistory(max int) *history { return &history{max: max, m: map[string][]point{}} }

func (h *history) add(channel string, p point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pts := append(h.m[channel], p)
	if len(pts) > h.max {
		pts = append(pts[:0:0], pts[len(pts)-h.max:]...)
	}
	h.m[channel] = pts
}

func (h *history) get(channel string) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]point{}, h.m[channel]...)
}
