package conn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want Endpoint
	}{
		{"mysql://app:s3cr%40t@db.example:3307?ssl-mode=VERIFY_IDENTITY", Endpoint{Host: "db.example", Port: 3307, User: "app", Password: "s3cr@t", TLS: TLS{Mode: "verify-identity"}}},
		{"mysql://root@127.0.0.1", Endpoint{Host: "127.0.0.1", User: "root"}},
		{"app:pw@tcp(10.0.0.5:3306)/", Endpoint{Host: "10.0.0.5", Port: 3306, User: "app", Password: "pw"}},
		{"app:pw@unix(/run/mysqld/mysqld.sock)/", Endpoint{Socket: "/run/mysqld/mysqld.sock", User: "app", Password: "pw"}},
	} {
		got, err := parseDSN(c.dsn)
		if err != nil {
			t.Errorf("%s: %v", c.dsn, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.dsn, got, c.want)
		}
	}
	e := Endpoint{DSN: "app@tcp(host:x)/"}
	if err := e.Resolve("source"); err == nil || !strings.Contains(err.Error(), "source.dsn") {
		t.Errorf("a bad DSN: %v", err)
	}
}

func TestOptionFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "my.cnf")
	body := `# a comment
[mysqld]
port = 9999
[client]
user = app
password = "pa ss#word"
port=3310
host = db1 # inline comment
[pitcrew-target]
host = db2
ssl_ca = /etc/ca.pem
ssl-mode = VERIFY_CA
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e := Endpoint{DefaultsFile: path, DefaultsGroup: "pitcrew-target", User: "explicit"}
	if err := e.Resolve("target"); err != nil {
		t.Fatal(err)
	}
	want := Endpoint{DefaultsFile: path, DefaultsGroup: "pitcrew-target", User: "explicit", Password: "pa ss#word", Host: "db2", Port: 3310,
		TLS: TLS{Mode: "verify-ca", CA: "/etc/ca.pem"}}
	if e != want {
		t.Errorf("got  %+v\nwant %+v", e, want)
	}
	for _, c := range []struct{ body, want string }{
		{"[mysqld]\nport=1\n", "has no [client] group"},
		{"!include /etc/other.cnf\n", "!include is not followed"},
		{"[client]\nport = many\n", `port "many" is not a number`},
	} {
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		e := Endpoint{DefaultsFile: path}
		if err := e.Resolve("source"); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "source.defaults_file") {
			t.Errorf("%q: %v", c.body, err)
		}
	}
	e = Endpoint{DefaultsFile: filepath.Join(dir, "none.cnf")}
	if err := e.Resolve("source"); err == nil || !strings.Contains(err.Error(), "readable option file") {
		t.Errorf("missing file: %v", err)
	}
}
