// Package sandbox keeps a local source and target MariaDB under one
// directory for trying pitcrew out: `pitcrew sandbox up|down|status`. The
// servers outlive the command; their ports live in sandbox.json, and a
// ready-to-use pitcrew.yaml is written next to it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Server is one sandbox server as recorded in sandbox.json.
type Server struct {
	Role     string `json:"role"`
	Port     int    `json:"port"`
	ServerID uint32 `json:"server_id"`
	Dir      string `json:"dir"`
	// Certs, with --tls, is the directory of the sandbox's CA, server and
	// client certificates; the server then refuses plaintext over TCP.
	Certs string `json:"certs,omitempty"`
}

func (s Server) certs() *mariadb.Certs {
	if s.Certs == "" {
		return nil
	}
	return mariadb.CertsIn(s.Certs)
}

// Endpoint is how to reach it (root, no password: loopback only; with
// TLS, verify-identity and the client certificate).
func (s Server) Endpoint() conn.Endpoint {
	e := conn.Endpoint{Host: "127.0.0.1", Port: s.Port, User: "root"}
	if c := s.certs(); c != nil {
		e.TLS = c.ClientTLS()
	}
	return e
}

// DSN is a go-sql-driver style DSN.
func (s Server) DSN() string { return fmt.Sprintf("root@tcp(127.0.0.1:%d)/", s.Port) }

// Client is the mariadb command line that connects to it.
func (s Server) Client() string {
	cmd := fmt.Sprintf("mariadb -h127.0.0.1 -P%d -uroot", s.Port)
	if c := s.certs(); c != nil {
		cmd += fmt.Sprintf(" --ssl-verify-server-cert --ssl-ca=%s --ssl-cert=%s --ssl-key=%s", c.CA, c.ClientCert, c.ClientKey)
	}
	return cmd
}

func (s Server) server() *mariadb.Server {
	return &mariadb.Server{Options: mariadb.Options{Dir: s.Dir, Port: s.Port, ServerID: s.ServerID, Detach: true, TLS: s.certs()}}
}

// Running reports whether the server answers.
func (s Server) Running() bool { return s.server().Running() }

// State is sandbox.json.
type State struct {
	Source Server `json:"source"`
	Target Server `json:"target"`
}

func stateFile(dir string) string { return filepath.Join(dir, "sandbox.json") }

// ConfigFile is the pitcrew.yaml written for the sandbox.
func ConfigFile(dir string) string { return filepath.Join(dir, "pitcrew.yaml") }

// Load reads sandbox.json.
func Load(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(stateFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("no sandbox in %s: run 'pitcrew sandbox up' first", dir)
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// Up starts the sandbox's servers (creating them on first use) and writes
// sandbox.json and pitcrew.yaml. Servers already running are left alone.
// With tls, certificates are generated into DIR/certs (once) and the
// servers serve TLS and refuse plaintext; a sandbox keeps the choice it
// was created with.
func Up(ctx context.Context, dir string, tls bool) (State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return State{}, err
	}
	st, err := Load(abs)
	if err != nil {
		st = State{
			Source: Server{Role: "source", ServerID: 1, Dir: filepath.Join(abs, "source")},
			Target: Server{Role: "target", ServerID: 2, Dir: filepath.Join(abs, "target")},
		}
		if tls {
			certs, err := mariadb.NewCerts(filepath.Join(abs, "certs"))
			if err != nil {
				return st, fmt.Errorf("generating the sandbox's certificates: %w", err)
			}
			st.Source.Certs, st.Target.Certs = certs.Dir, certs.Dir
		}
	} else if tls != (st.Source.Certs != "") {
		return st, fmt.Errorf("the sandbox in %s was created with tls=%v: run 'pitcrew sandbox down' first to change it", dir, st.Source.Certs != "")
	}
	for _, s := range []*Server{&st.Source, &st.Target} {
		if s.Port != 0 && s.Running() {
			continue
		}
		srv, err := mariadb.Start(ctx, mariadb.Options{Dir: s.Dir, ServerID: s.ServerID, Port: s.Port, Detach: true, TLS: s.certs()})
		if err != nil && s.Port != 0 {
			// The recorded port may be taken now: pick a new one.
			srv, err = mariadb.Start(ctx, mariadb.Options{Dir: s.Dir, ServerID: s.ServerID, Detach: true, TLS: s.certs()})
		}
		if err != nil {
			return st, fmt.Errorf("starting sandbox %s: %w", s.Role, err)
		}
		s.Port = srv.Port
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(stateFile(abs), b, 0o644); err != nil {
		return st, err
	}
	cfg := fmt.Sprintf(`# pitcrew config for the local sandbox (written by 'pitcrew sandbox up').
channel: sandbox
source:
  host: 127.0.0.1
  port: %d
  user: root
%starget:
  host: 127.0.0.1
  port: %d
  user: root
%sdata_dir: %s
http_addr: 127.0.0.1:9307
`, st.Source.Port, tlsYAML(st.Source), st.Target.Port, tlsYAML(st.Target), filepath.Join(abs, "pitcrew-data"))
	return st, os.WriteFile(ConfigFile(abs), []byte(cfg), 0o644)
}

// tlsYAML is a server's tls: block in pitcrew.yaml, or nothing.
func tlsYAML(s Server) string {
	c := s.certs()
	if c == nil {
		return ""
	}
	return fmt.Sprintf("  tls:\n    mode: verify-identity\n    ca: %s\n    cert: %s\n    key: %s\n", c.CA, c.ClientCert, c.ClientKey)
}

// Down stops the servers and removes the sandbox directory.
func Down(dir string) error {
	st, err := Load(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range []Server{st.Source, st.Target} {
		errs = append(errs, s.server().Stop())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
