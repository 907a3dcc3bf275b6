package conn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// TLS modes, with the mysql client's --ssl-mode names and meaning.
const (
	ModeDisabled       = "disabled"        // plaintext only
	ModePreferred      = "preferred"       // TLS when the server offers it, certificate not checked (default)
	ModeRequired       = "required"        // TLS or fail, certificate not checked
	ModeVerifyCA       = "verify-ca"       // TLS, certificate chain checked against the CA
	ModeVerifyIdentity = "verify-identity" // verify-ca, and the certificate must name the host (recommended)
)

// TLS says how one endpoint's connections are encrypted. Every connection
// to the endpoint uses it: the SQL pools (go-sql-driver/mysql) and the
// binlog stream (go-mysql's BinlogSyncerConfig.TLSConfig), both built by
// Config, so the two can never disagree.
type TLS struct {
	Mode       string `yaml:"mode"`        // default preferred
	CA         string `yaml:"ca"`          // PEM file of the CA(s) the server's certificate must chain to (verify-ca, verify-identity); empty: the system's roots
	Cert       string `yaml:"cert"`        // PEM client certificate, for accounts created REQUIRE X509 (any mode but disabled)
	Key        string `yaml:"key"`         // its PEM private key
	ServerName string `yaml:"server_name"` // the name the certificate must hold under verify-identity; default: the endpoint's host
}

// mode is the normalized mode: lower case, '_' as '-' (VERIFY_IDENTITY
// is the mysql client's spelling), empty as preferred.
func (t TLS) mode() string {
	m := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(t.Mode)), "_", "-")
	if m == "" {
		return ModePreferred
	}
	return m
}

// Effective is the mode in force, after the default.
func (t TLS) Effective() string { return t.mode() }

// Verifies reports whether the mode checks the server's certificate.
func (t TLS) Verifies() bool { m := t.mode(); return m == ModeVerifyCA || m == ModeVerifyIdentity }

// Requires reports whether a plaintext connection is refused.
func (t TLS) Requires() bool { m := t.mode(); return m != ModeDisabled && m != ModePreferred }

// Validate checks what can be checked without connecting or reading files
// (a plan is checked on a machine that may not hold them; Config reads
// them and names the key and file); role names the endpoint in the
// message ("source", "nodes[1]").
func (t TLS) Validate(role string) error {
	switch t.mode() {
	case ModeDisabled, ModePreferred, ModeRequired, ModeVerifyCA, ModeVerifyIdentity:
	default:
		return fmt.Errorf("%s.tls.mode %q is unknown: use disabled, preferred, required, verify-ca or verify-identity (recommended)", role, t.Mode)
	}
	if t.mode() == ModeDisabled && (t.CA != "" || t.Cert != "" || t.Key != "" || t.ServerName != "") {
		return fmt.Errorf("%s.tls.mode is disabled but ca/cert/key/server_name are set: remove them or choose a mode that uses them", role)
	}
	// The mysql client ignores --ssl-ca below VERIFY_CA with a warning;
	// here a CA that would not be checked is an error, since whoever wrote
	// it expects the server to be verified.
	if t.CA != "" && !t.Verifies() {
		return fmt.Errorf("%s.tls.ca is only used to verify the server (mode verify-ca or verify-identity), but the mode is %s: set %s.tls.mode: verify-identity (recommended) or remove ca", role, t.mode(), role)
	}
	if t.ServerName != "" && t.mode() != ModeVerifyIdentity {
		return fmt.Errorf("%s.tls.server_name is only checked under verify-identity, but the mode is %s: set %s.tls.mode: verify-identity or remove server_name", role, t.mode(), role)
	}
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("%s.tls: cert and key go together: set both (the client certificate and its private key) or neither", role)
	}
	return nil
}

// Config builds the tls.Config for connections to host (the endpoint's
// host: the name checked under verify-identity unless ServerName is set).
// It returns nil for disabled. Under preferred the caller must also allow
// plaintext when the server offers no TLS (Open does, through the
// driver's AllowFallbackToPlaintext; binlog.Stream retries without TLS).
//
// The mysql client's modes map onto crypto/tls so:
//
//	disabled         no tls.Config
//	preferred        InsecureSkipVerify (encrypt, check nothing), plaintext fallback;
//	                 go-sql-driver's own "preferred" is the same, its
//	                 "skip-verify" is our required: we never use those names
//	required         InsecureSkipVerify, no fallback
//	verify-ca        InsecureSkipVerify plus VerifyConnection checking the chain
//	                 against RootCAs without a name (tls has no such mode)
//	verify-identity  the standard check: chain and ServerName (IP SANs for an address)
//
// A client certificate (Cert, Key) is presented in every mode but disabled.
// Errors name the file, never its contents.
func (t TLS) Config(role, host string) (*tls.Config, error) {
	if err := t.Validate(role); err != nil {
		return nil, err
	}
	mode := t.mode()
	if mode == ModeDisabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("%s.tls.cert %s / key %s: %w: give a PEM certificate and its matching private key", role, t.Cert, t.Key, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("%s.tls.ca: %w", role, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.tls.ca %s holds no PEM certificate: give the CA bundle file (-----BEGIN CERTIFICATE----- blocks)", role, t.CA)
		}
		c.RootCAs = pool
	}
	switch mode {
	case ModePreferred, ModeRequired:
		c.InsecureSkipVerify = true
	case ModeVerifyCA:
		c.InsecureSkipVerify = true
		roots := c.RootCAs
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	case ModeVerifyIdentity:
		c.ServerName = host
		if t.ServerName != "" {
			c.ServerName = t.ServerName
		}
	}
	return c, nil
}

// Fallback reports whether a connection may go on in plaintext when the
// server offers no TLS (mode preferred).
func (t TLS) Fallback() bool { return t.mode() == ModePreferred }

// errNoTLSMySQL is go-mysql's text (client/auth.go, v1.16.0) for a server
// that does not offer TLS when a tls.Config is set: it is not a sentinel
// value, so it is recognised by its text, here only.
const errNoTLSMySQL = "the MySQL Server does not support TLS required by the client"

// NoTLS reports whether err says the server offers no TLS while the
// client asked for it (either driver).
func NoTLS(err error) bool {
	return err != nil && (errors.Is(err, mysql.ErrNoTLS) || strings.Contains(err.Error(), errNoTLSMySQL))
}

// Session is what a connection's TLS turned out to be, from the server's
// own session status (Ssl_version, Ssl_cipher): empty when unencrypted.
type Session struct {
	Version string `json:"version,omitempty"` // e.g. TLSv1.3
	Cipher  string `json:"cipher,omitempty"`  // e.g. TLS_AES_256_GCM_SHA384
}

// Encrypted reports whether the session is encrypted.
func (s Session) Encrypted() bool { return s.Cipher != "" }

func (s Session) String() string {
	if !s.Encrypted() {
		return "unencrypted"
	}
	return s.Version + " " + s.Cipher
}

// SessionTLS asks the server how one of db's connections is encrypted.
func SessionTLS(ctx context.Context, db *sql.DB) (Session, error) {
	rows, err := db.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
	if err != nil {
		return Session{}, fmt.Errorf("reading the session's TLS status: %w", err)
	}
	defer rows.Close()
	var s Session
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return Session{}, err
		}
		switch strings.ToLower(name) {
		case "ssl_version":
			s.Version = value
		case "ssl_cipher":
			s.Cipher = value
		}
	}
	return s, rows.Err()
}

// Loopback reports whether host is this machine (localhost or a loopback
// address): traffic to it does not cross a network.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ExplainTLS turns a TLS failure into its cause and fix, or returns nil
// when err is not one (Explain calls it first).
func ExplainTLS(err error, role string, e Endpoint) error {
	t := e.TLS
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rec tls.RecordHeaderError
	switch {
	case NoTLS(err):
		return fmt.Errorf("%s %s does not offer TLS, but %s.tls.mode is %s: enable TLS on the server (ssl_cert, ssl_key; RDS always offers it) or, on a trusted network only, set %s.tls.mode: preferred: %w", role, e, role, t.mode(), role, err)
	case errors.As(err, &ua):
		where := "the system's roots"
		if t.CA != "" {
			where = role + ".tls.ca (" + t.CA + ")"
		}
		return fmt.Errorf("%s %s: the server's certificate is not signed by a CA in %s: set %s.tls.ca to the CA bundle that signed it (RDS: the region's bundle, e.g. global-bundle.pem): %w", role, e, where, role, err)
	case errors.As(err, &he):
		name := e.Host
		if t.ServerName != "" {
			name = t.ServerName
		}
		return fmt.Errorf("%s %s: the server's certificate does not name %q (verify-identity): connect by a name the certificate holds, set %s.tls.server_name to one, or use tls.mode: verify-ca (chain only): %w", role, e, name, role, err)
	case errors.As(err, &ci):
		return fmt.Errorf("%s %s: the server's certificate is invalid (%s): renew it on the server: %w", role, e, ci.Error(), err)
	case errors.As(err, &rec):
		return fmt.Errorf("%s %s: the TLS handshake got no TLS answer: check that %s.port is the server's MySQL port: %w", role, e, role, err)
	}
	return nil
}

// errSecureTransport is MySQL's ER_SECURE_TRANSPORT_REQUIRED: plaintext
// refused by require_secure_transport. MariaDB (10.11) refuses the same
// connection with 1045, access denied; Explain tells them apart by our
// own side of it (was the connection plaintext?).
const errSecureTransport = 3159
