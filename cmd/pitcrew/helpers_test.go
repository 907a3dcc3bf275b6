package main

import (
	"bytes"
	"context"
	"database/sql"
	"time"

	"fmt"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// writeConfig writes a pitcrew.yaml for src -> tgt with extra YAML lines.
func writeConfig(t *testing.T, src, tgt conn.Endpoint, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf(`channel: test
source:
  host: %s
  port: %d
  user: %s
  password: %q
%starget:
  host: %s
  port: %d
  user: %s
%sdata_dir: %s
http_addr: "off"
`, src.Host, src.Port, src.User, src.Password, tlsYAML(src.TLS), tgt.Host, tgt.Port, tgt.User, tlsYAML(tgt.TLS), filepath.Join(dir, "data"))
	extras := strings.Join(extra, "\n")
	if strings.Contains(extras, "http_addr:") {
		body = strings.Replace(body, "http_addr: \"off\"\n", "", 1)
	}
	body += extras + "\n"
	path := filepath.Join(dir, "pitcrew.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsYAML is an endpoint's tls: block (indented under it), or nothing.
func tlsYAML(t conn.TLS) string { return tlsYAMLAt("  ", t) }

func tlsYAMLAt(indent string, t conn.TLS) string {
	if t == (conn.TLS{}) {
		return ""
	}
	return fmt.Sprintf(indent+"tls: {mode: %q, ca: %q, cert: %q, key: %q, server_name: %q}\n", t.Mode, t.CA, t.Cert, t.Key, t.ServerName)
}

// runCLI runs the command in-process and returns exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeInBackground runs gen's transactions until the returned stop is
// called; stop returns the first error the writes met.
func writeInBackground(gen *workload.Generator, pause time.Duration) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := gen.Txn(ctx); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			time.Sleep(pause)
		}
		done <- nil
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// assertEncrypted fails the test unless the connections of the servers'
// clients other than this one (pitcrew's) were TLS: the servers count
// them in Ssl_accepts, and a TLS server of testenv refuses plaintext.
func assertEncrypted(t *testing.T, dbs ...*sql.DB) {
	t.Helper()
	for _, db := range dbs {
		var name string
		var accepts int64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'").Scan(&name, &accepts); err != nil {
			t.Fatal(err)
		}
		st, err := conn.SessionTLS(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Encrypted() || accepts < 2 {
			t.Errorf("server session %s, %d TLS connections accepted; want TLS everywhere", st, accepts)
		}
		t.Logf("TLS: %s; %d TLS connections accepted", st, accepts)
	}
}
