package testenv

import (
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// TLSSecret is the password of the REQUIRE X509 account of TLSCases: no
// message may contain it.
const TLSSecret = "pw-s3cret-never-logged"

// TLSCase is one way of reaching a server and what must come of it: a
// session encrypted or not, or an error whose message says the cause.
type TLSCase struct {
	Name      string
	E         conn.Endpoint
	Encrypted bool
	ErrHas    []string // empty: must connect
}

// TLSCases starts three servers: one serving TLS for 127.0.0.1/localhost
// and refusing plaintext, one whose certificate names only db.internal,
// one without TLS; and the cases every client path must get right
// against them (the SQL driver in internal/conn, the binlog stream in
// internal/binlog).
func TLSCases(t testing.TB) []TLSCase {
	certs := NewTestCerts(t)
	other := NewTestCerts(t, "db.internal")
	tlsSrv := New(t, Options{ServerID: 1, TLS: certs})
	named := New(t, Options{ServerID: 2, TLS: other})
	plain := New(t, Options{ServerID: 3})
	// A transaction in every binlog, for a stream to find.
	for _, s := range []*Server{named, plain} {
		Exec(t, MustDB(t, s), "CREATE DATABASE tlscases")
	}
	db := MustDB(t, tlsSrv)
	Exec(t, db,
		"CREATE USER x509@'%' IDENTIFIED BY '"+TLSSecret+"' REQUIRE X509",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.* TO x509@'%'")
	at := func(s *Server, tls conn.TLS) conn.Endpoint {
		e := s.Endpoint()
		e.TLS = tls
		return e
	}
	x509 := func(tls conn.TLS) conn.Endpoint {
		e := at(tlsSrv, tls)
		e.User, e.Password = "x509", TLSSecret
		return e
	}
	verifyCA := conn.TLS{Mode: conn.ModeVerifyCA, CA: other.CA}
	return []TLSCase{
		{Name: "verify-identity", E: tlsSrv.Endpoint(), Encrypted: true},
		{Name: "upper-case mode name", E: at(tlsSrv, conn.TLS{Mode: "VERIFY_IDENTITY", CA: certs.CA}), Encrypted: true},
		{Name: "preferred encrypts", E: at(tlsSrv, conn.TLS{}), Encrypted: true},
		{Name: "required", E: at(tlsSrv, conn.TLS{Mode: conn.ModeRequired}), Encrypted: true},
		{Name: "wrong CA", E: at(tlsSrv, conn.TLS{Mode: conn.ModeVerifyCA, CA: other.CA}),
			ErrHas: []string{"source ", "not signed by a CA in source.tls.ca (" + other.CA + ")"}},
		{Name: "name mismatch under verify-identity", E: at(named, conn.TLS{Mode: conn.ModeVerifyIdentity, CA: other.CA}),
			ErrHas: []string{"does not name \"127.0.0.1\"", "server_name", "verify-ca"}},
		{Name: "the same server under verify-ca", E: at(named, verifyCA), Encrypted: true},
		{Name: "the same server under its name", E: at(named, conn.TLS{Mode: conn.ModeVerifyIdentity, CA: other.CA, ServerName: "db.internal"}), Encrypted: true},
		{Name: "plaintext refused by require_secure_transport", E: at(tlsSrv, conn.TLS{Mode: conn.ModeDisabled}),
			ErrHas: []string{"plaintext", "require_secure_transport=ON", "source.tls.mode: verify-identity"}},
		{Name: "REQUIRE X509 without a client certificate", E: x509(conn.TLS{Mode: conn.ModeVerifyIdentity, CA: certs.CA}),
			ErrHas: []string{"requires a client certificate", "source.tls.cert"}},
		{Name: "REQUIRE X509 with one", E: x509(certs.ClientTLS()), Encrypted: true},
		{Name: "preferred falls back to plaintext", E: plain.Endpoint()},
		{Name: "required on a server without TLS", E: at(plain, conn.TLS{Mode: conn.ModeRequired}),
			ErrHas: []string{"does not offer TLS", "source.tls.mode is required"}},
	}
}
