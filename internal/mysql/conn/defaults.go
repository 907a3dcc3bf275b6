package conn

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Where an endpoint can come from besides its own keys, as the mysql tools
// take it: a DSN (mysql://user:pass@host:port, or the Go driver's
// user:pass@tcp(host:port)/ and user:pass@unix(/path)/), an option file
// (--defaults-file: the [client] group, then defaults_group), and a unix
// socket. The endpoint's own keys win over the DSN, which wins over the
// option file.

// Resolve fills e from its DSN and option file; role names the endpoint in
// errors ("source", "nodes.b").
func (e *Endpoint) Resolve(role string) error {
	if e.DSN != "" {
		d, err := parseDSN(e.DSN)
		if err != nil {
			return fmt.Errorf("%s.dsn: %v: write mysql://USER:PASSWORD@HOST:PORT or USER:PASSWORD@tcp(HOST:PORT)/", role, err)
		}
		e.fill(d)
	}
	if e.DefaultsFile != "" {
		d, err := readOptionFile(e.DefaultsFile, e.DefaultsGroup)
		if err != nil {
			return fmt.Errorf("%s.defaults_file: %v", role, err)
		}
		e.fill(d)
	}
	return nil
}

// fill sets e's empty fields from d.
func (e *Endpoint) fill(d Endpoint) {
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&e.Host, d.Host)
	set(&e.User, d.User)
	set(&e.Password, d.Password)
	set(&e.Socket, d.Socket)
	if e.Port == 0 {
		e.Port = d.Port
	}
	set(&e.TLS.Mode, d.TLS.Mode)
	set(&e.TLS.CA, d.TLS.CA)
	set(&e.TLS.Cert, d.TLS.Cert)
	set(&e.TLS.Key, d.TLS.Key)
}

func parseDSN(s string) (Endpoint, error) {
	var e Endpoint
	if strings.HasPrefix(s, "mysql://") {
		u, err := url.Parse(s)
		if err != nil {
			return e, fmt.Errorf("not a URL (%s)", strings.TrimPrefix(err.Error(), "parse "+strconv.Quote(s)+": "))
		}
		e.Host = u.Hostname()
		if p := u.Port(); p != "" {
			if e.Port, err = strconv.Atoi(p); err != nil {
				return e, fmt.Errorf("port %q is not a number", p)
			}
		}
		if u.User != nil {
			e.User = u.User.Username()
			e.Password, _ = u.User.Password()
		}
		if m := u.Query().Get("ssl-mode"); m != "" {
			e.TLS.Mode = sslMode(m)
		}
		if sock := u.Query().Get("socket"); sock != "" {
			e.Socket = sock
		}
		return e, nil
	}
	c, err := mysql.ParseDSN(s)
	if err != nil {
		return e, fmt.Errorf("not a DSN (%v)", strings.TrimPrefix(err.Error(), "invalid DSN: "))
	}
	e.User, e.Password = c.User, c.Passwd
	switch c.Net {
	case "unix":
		e.Socket = c.Addr
	default:
		host, port, ok := strings.Cut(c.Addr, ":")
		e.Host = host
		if ok {
			if e.Port, err = strconv.Atoi(port); err != nil {
				return e, fmt.Errorf("port %q is not a number", port)
			}
		}
	}
	return e, nil
}

// readOptionFile reads the [client] group of a MySQL option file, then
// group (when set; later values win): host, port, user, password, socket,
// ssl-mode, ssl-ca, ssl-cert, ssl-key. Other keys are the mysql client's
// business and are ignored; !include directives are refused (say which
// file holds the keys instead).
func readOptionFile(path, group string) (Endpoint, error) {
	var e Endpoint
	f, err := os.Open(path)
	if err != nil {
		return e, fmt.Errorf("%v: point it at a readable option file (like ~/.my.cnf)", err)
	}
	defer f.Close()
	groups := map[string]bool{"client": true}
	if group != "" {
		groups[group] = true
	}
	in, found := false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasPrefix(line, "!include"):
			return e, fmt.Errorf("%s line %d: !include is not followed: point defaults_file at the file that holds the [client] keys", path, n)
		case line[0] == '[':
			name := strings.TrimSpace(strings.Trim(line, "[]"))
			in = groups[name]
			found = found || in
			continue
		case !in:
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		k = strings.ReplaceAll(strings.TrimSpace(k), "_", "-")
		v = unquote(strings.TrimSpace(v))
		switch k {
		case "host":
			e.Host = v
		case "port":
			if e.Port, err = strconv.Atoi(v); err != nil {
				return e, fmt.Errorf("%s line %d: port %q is not a number", path, n, v)
			}
		case "user":
			e.User = v
		case "password":
			e.Password = v
		case "socket":
			e.Socket = v
		case "ssl-mode":
			e.TLS.Mode = sslMode(v)
		case "ssl-ca":
			e.TLS.CA = v
		case "ssl-cert":
			e.TLS.Cert = v
		case "ssl-key":
			e.TLS.Key = v
		}
	}
	if err := sc.Err(); err != nil {
		return e, err
	}
	if !found {
		want := "[client]"
		if group != "" {
			want += " or [" + group + "]"
		}
		return e, fmt.Errorf("%s has no %s group: add one, or set defaults_group", path, want)
	}
	return e, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	if i := strings.Index(v, " #"); i >= 0 {
		return strings.TrimSpace(v[:i])
	}
	return v
}

// sslMode is the mysql client's --ssl-mode value in pitcrew's spelling
// (VERIFY_IDENTITY -> verify-identity).
func sslMode(v string) string { return strings.ReplaceAll(strings.ToLower(v), "_", "-") }
