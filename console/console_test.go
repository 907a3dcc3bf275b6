package console

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/syncer"
)

const token = "0123456789abcdef-token"

type fakeChannel struct{ st syncer.Status }

func (f fakeChannel) Status() syncer.Status { return f.st }

type fakeConflicts struct{ resolved []string }

func (f *fakeConflicts) Recent(context.Context, int) ([]Conflict, int, error) {
	return []Conflict{{Node: "b", Entry: conflict.Entry{ID: 7, Outcome: "parked"}}}, 1, nil
}

func (f *fakeConflicts) Get(_ context.Context, node string, id int64) (Conflict, error) {
	if node != "b" || id != 7 {
		return Conflict{}, conflict.ErrNoEntry
	}
	return Conflict{Node: "b", Entry: conflict.Entry{ID: 7, Outcome: "parked"}}, nil
}

func (f *fakeConflicts) Resolve(_ context.Context, node string, id int64, take string) error {
	f.resolved = append(f.resolved, ResolvePhrase(node, id, take))
	return nil
}

type fakeRunbook struct {
	confirmed  []string
	rolledBack bool
	can        bool
}

func (f *fakeRunbook) View(context.Context) (RunbookView, error) {
	return RunbookView{Name: "shop", CanRollback: f.can, RollbackWhy: "take-down has begun"}, nil
}
func (f *fakeRunbook) Confirm(_ context.Context, phase string) error {
	f.confirmed = append(f.confirmed, phase)
	return nil
}
func (f *fakeRunbook) Rollback(context.Context) error { f.rolledBack = true; return nil }

var (
	loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9307}
	anyAddr  = &net.TCPAddr{IP: net.IPv4zero, Port: 9307}
)

func TestCheckRefusesExposure(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		addr net.Addr
		want string
	}{
		{"loopback without token", Config{}, loopback, ""},
		{"all interfaces without token", Config{}, anyAddr, "reachable from other hosts"},
		{"all interfaces with token", Config{Token: token}, anyAddr, ""},
		{"short token", Config{Token: "secret"}, loopback, "at least 16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Check(c.addr)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Check: %v, want %q", err, c.want)
			}
		})
	}
}

func serve(t *testing.T, cfg Config, addr net.Addr) (*httptest.Server, *fakeConflicts, *fakeRunbook) {
	t.Helper()
	fc, rb := &fakeConflicts{}, &fakeRunbook{can: true}
	cfg.Conflicts, cfg.Runbook = fc, rb
	cfg.Channels = func() []syncer.StatusSource {
		return []syncer.StatusSource{fakeChannel{syncer.Status{Channel: "main", State: syncer.StateStreaming}}}
	}
	s, err := New(cfg, addr)
	if err != nil {
		t.Fatal(err)
	}
	base := http.NewServeMux()
	syncer.Endpoints{Channels: cfg.Channels}.Register(base)
	srv := httptest.NewServer(s.Handler(base))
	t.Cleanup(srv.Close)
	return srv, fc, rb
}

func do(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Who may read and who may act, on loopback and beyond it.
func TestAccess(t *testing.T) {
	resolve := `{"take":"source","confirm":"resolve b/7 take source"}`
	for _, c := range []struct {
		name   string
		cfg    Config
		addr   net.Addr
		method string
		path   string
		tok    string
		body   string
		code   int
	}{
		{"loopback reads without token", Config{}, loopback, "GET", "/api/state", "", "", 200},
		{"loopback page", Config{}, loopback, "GET", "/", "", "", 200},
		{"remote read needs the token", Config{Token: token}, anyAddr, "GET", "/api/state", "", "", 401},
		{"remote /status needs the token", Config{Token: token}, anyAddr, "GET", "/status", "", "", 401},
		{"remote healthz stays open", Config{Token: token}, anyAddr, "GET", "/healthz", "", "", 200},
		{"remote read with the token", Config{Token: token}, anyAddr, "GET", "/api/conflicts", token, "", 200},
		{"remote read-only view allowed", Config{Token: token, ReadOpen: true}, anyAddr, "GET", "/api/state", "", "", 200},
		{"wrong token", Config{Token: token}, anyAddr, "GET", "/api/state", token + "x", "", 401},
		{"no token configured: actions off", Config{}, loopback, "POST", "/api/conflicts/b/7/resolve", "", resolve, 403},
		{"action without token", Config{Token: token}, loopback, "POST", "/api/conflicts/b/7/resolve", "", resolve, 401},
		{"action with read-open but no token", Config{Token: token, ReadOpen: true}, anyAddr, "POST", "/api/conflicts/b/7/resolve", "", resolve, 401},
		{"action without confirmation", Config{Token: token}, loopback, "POST", "/api/conflicts/b/7/resolve", token, `{"take":"source"}`, 412},
		{"action with another action's confirmation", Config{Token: token}, loopback, "POST", "/api/conflicts/b/7/resolve", token, `{"take":"source","confirm":"resolve b/7 take target"}`, 412},
		{"bad take", Config{Token: token}, loopback, "POST", "/api/conflicts/b/7/resolve", token, `{"take":"both","confirm":"x"}`, 400},
		{"resolve", Config{Token: token}, loopback, "POST", "/api/conflicts/b/7/resolve", token, resolve, 200},
		{"confirm cut-over", Config{Token: token}, loopback, "POST", "/api/runbook/confirm", token, `{"phase":"cutover","confirm":"the application writes to the target now"}`, 200},
		{"rollback needs the typed name", Config{Token: token}, loopback, "POST", "/api/runbook/rollback", token, `{"confirm":"yes"}`, 412},
		{"rollback", Config{Token: token}, loopback, "POST", "/api/runbook/rollback", token, `{"confirm":"roll back shop"}`, 200},
		{"GET cannot act", Config{Token: token}, loopback, "GET", "/api/runbook/rollback", token, "", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, fc, rb := serve(t, c.cfg, c.addr)
			code, body := do(t, c.method, srv.URL+c.path, c.tok, c.body)
			if code != c.code {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.code)
			}
			acted := len(fc.resolved) > 0 || len(rb.confirmed) > 0 || rb.rolledBack
			if acted != (c.method == "POST" && code == 200) {
				t.Errorf("acted %v with answer %d", acted, code)
			}
			if strings.Contains(body, token) {
				t.Error("the token was rendered")
			}
		})
	}
}

func TestRollbackRefusedWhenTooLate(t *testing.T) {
	srv, _, rb := serve(t, Config{Token: token}, loopback)
	rb.can = false
	code, body := do(t, "POST", srv.URL+"/api/runbook/rollback", token, `{"confirm":"roll back shop"}`)
	if code != http.StatusConflict || !strings.Contains(body, "take-down has begun") || rb.rolledBack {
		t.Errorf("%d %s rolled back %v", code, body, rb.rolledBack)
	}
}

func TestStateAndHistory(t *testing.T) {
	srv, _, _ := serve(t, Config{Title: "sync main", Token: token}, loopback)
	_, body := do(t, "GET", srv.URL+"/api/state", token, "")
	var st struct {
		Title    string `json:"title"`
		Healthy  bool   `json:"healthy"`
		Auth     authView
		Channels []struct {
			Channel string `json:"channel"`
		} `json:"channels"`
		Runbook *RunbookView `json:"runbook"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Title != "sync main" || !st.Healthy || !st.Auth.Valid || len(st.Channels) != 1 || st.Runbook == nil || st.Runbook.Name != "shop" {
		t.Errorf("state: %s", body)
	}
	h := newHistory(3)
	for i := range 5 {
		h.add("c", point{T: int64(i)})
	}
	if got := h.get("c"); len(got) != 3 || got[0].T != 2 || got[2].T != 4 {
		t.Errorf("history keeps the last 3: %v", got)
	}
}

func TestMissingConflict(t *testing.T) {
	srv, _, _ := serve(t, Config{}, loopback)
	code, body := do(t, "GET", srv.URL+"/api/conflicts/b/99", "", "")
	if code != 404 || !strings.Contains(body, "no such conflict") {
		t.Errorf("%d %s", code, body)
	}
}
