package mariadb

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Certs are PEM files of a throwaway certificate authority, a server
// certificate it signed and a client certificate it signed, for servers
// started with TLS (Options.TLS) and for the clients that reach them.
type Certs struct {
	Dir        string
	CA         string // ca.pem
	ServerCert string // server.pem
	ServerKey  string // server-key.pem
	ClientCert string // client.pem (CN pitcrew-client)
	ClientKey  string // client-key.pem
	Names      []string
}

// CertsIn names the files NewCerts wrote into dir (default names), without
// generating anything.
func CertsIn(dir string) *Certs {
	return &Certs{Dir: dir, CA: filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"), Names: DefaultNames}
}

// DefaultNames are what the server certificate names by default.
var DefaultNames = []string{"127.0.0.1", "localhost"}

// NewCerts writes a CA, a server certificate for names (addresses become
// IP SANs, others DNS SANs; default DefaultNames) and a client certificate
// into dir.
func NewCerts(dir string, names ...string) (*Certs, error) {
	if len(names) == 0 {
		names = DefaultNames
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := CertsIn(dir)
	c.Names = names
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pitcrew test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	if err := writePEM(c.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, sans []string, certPath, keyPath string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		for _, n := range sans {
			if ip := net.ParseIP(n); ip != nil {
				tpl.IPAddresses = append(tpl.IPAddresses, ip)
			} else {
				tpl.DNSNames = append(tpl.DNSNames, n)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyPath, "PRIVATE KEY", kb)
	}
	if err := leaf(2, names[0], x509.ExtKeyUsageServerAuth, names, c.ServerCert, c.ServerKey); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	if err := leaf(3, "pitcrew-client", x509.ExtKeyUsageClientAuth, nil, c.ClientCert, c.ClientKey); err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return c, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// ClientTLS is how a client reaches a server with these certificates on
// 127.0.0.1: verify-identity against the CA (with server_name set to the
// certificate's first name when it does not name 127.0.0.1), presenting
// the client certificate.
func (c *Certs) ClientTLS() conn.TLS {
	t := conn.TLS{Mode: conn.ModeVerifyIdentity, CA: c.CA, Cert: c.ClientCert, Key: c.ClientKey}
	if !slices.Contains(c.Names, "127.0.0.1") {
		t.ServerName = c.Names[0]
	}
	return t
}

// serverArgs are the mariadbd options that serve TLS with these
// certificates and, with requireSecure, refuse plaintext connections over
// TCP.
func (c *Certs) serverArgs(requireSecure bool) []string {
	args := []string{"--ssl-ca=" + c.CA, "--ssl-cert=" + c.ServerCert, "--ssl-key=" + c.ServerKey}
	if requireSecure {
		args = append(args, "--require-secure-transport=ON")
	}
	return args
}
