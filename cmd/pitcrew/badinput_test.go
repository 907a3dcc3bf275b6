package main

import (
	"database/sql"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Bad input ends with one line naming the cause and the fix, a non-zero
// exit, and nothing written to the target.
func TestBadInput(t *testing.T) {
	good := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	binlogOff := testenv.New(t, testenv.Options{ServerID: 3, BinlogFormat: "OFF"})
	statement := testenv.New(t, testenv.Options{ServerID: 4, BinlogFormat: "STATEMENT"})
	tgtDB := testenv.MustDB(t, tgt)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	wrongPassword := good.Endpoint()
	wrongPassword.Password = "not-the-password"

	cases := []struct {
		name  string
		src   conn.Endpoint
		extra []string
		args  []string
		want  []string // all must appear in the error line
	}{
		{"unreachable source", conn.Endpoint{Host: "127.0.0.1", Port: deadPort, User: "root"}, nil,
			[]string{"--start-from", "now"}, []string{"unreachable", "source.host/source.port"}},
		{"wrong password", wrongPassword, nil,
			[]string{"--start-from", "now"}, []string{"access denied", "password"}},
		{"binlog off", binlogOff.Endpoint(), nil,
			[]string{"--start-from", "now"}, []string{"binary logging is off", "log_bin"}},
		{"statement format", statement.Endpoint(), nil,
			[]string{"--start-from", "now"}, []string{"binlog_format=STATEMENT", "set binlog_format=ROW"}},
		{"unknown config key", good.Endpoint(), []string{"bacth_rows: 10"},
			[]string{"--start-from", "now"}, []string{`unknown key "bacth_rows"`, "line"}},
		{"duration without a unit it knows", good.Endpoint(), []string{"retention_margin: 5 minutes"},
			[]string{"--start-from", "now"}, []string{`retention_margin: "5 minutes" is not a duration`, "number of seconds"}},
		{"malformed start gtid", good.Endpoint(), nil,
			[]string{"--start-gtid", "0-1-x"}, []string{"malformed GTID", "0-1-42"}},
		{"no start position", good.Endpoint(), nil,
			nil, []string{"no checkpoint yet", "--start-from"}},
		{"start gtid the source never executed", good.Endpoint(), nil,
			[]string{"--start-gtid", "1-1-999999"}, []string{"not contained in the source's executed GTID set", "domain 1, which the source never had"}},
		{"unknown tls mode", withTLS(good.Endpoint(), conn.TLS{Mode: "verify-full"}), nil,
			[]string{"--start-from", "now"}, []string{`source.tls.mode "verify-full" is unknown`, "verify-identity"}},
		{"tls required, server without TLS", withTLS(good.Endpoint(), conn.TLS{Mode: "required"}), nil,
			[]string{"--start-from", "now"}, []string{"does not offer TLS", "source.tls.mode"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeConfig(t, c.src, tgt.Endpoint(), c.extra...)
			args := append([]string{"catchup", "--config", cfg, "--timeout", "30s"}, c.args...)
			code, _, stderr := runCLI(args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; stderr: %s", stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "pitcrew: ") {
				t.Fatalf("want one 'pitcrew: ...' line, got %q", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error %q does not mention %q", lines[0], w)
				}
			}
			if strings.Contains(lines[0], "not-the-password") {
				t.Errorf("the password leaked into the error: %s", lines[0])
			}
			assertNoProgressSchema(t, tgtDB)
		})
	}
}

func assertNoProgressSchema(t *testing.T, db *sql.DB) {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_pitcrew'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the target was written to (_pitcrew exists)")
	}
}

func TestLoadConfigUnknownNestedKey(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("source:\n  host: db1\n  passwrd: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path)
	if err == nil || !strings.Contains(err.Error(), `unknown key "source.passwrd" at line 3`) {
		t.Fatalf("got %v", err)
	}
}

func TestLoadConfigEnvPassword(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("source:\n  host: db1\n  password: file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSourcePassword, "from-env")
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fc.syncerConfig().Source.Password; got != "from-env" {
		t.Fatalf("password %q, want the environment's", got)
	}
}

func withTLS(e conn.Endpoint, t conn.TLS) conn.Endpoint {
	e.TLS = t
	return e
}
