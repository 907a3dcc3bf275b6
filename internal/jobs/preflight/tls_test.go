package preflight

import (
	"context"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// preflight reports per connection whether it is encrypted, with the TLS
// version and cipher the server reports; an unencrypted connection that
// crosses hosts is a WARN, a required mode the server cannot serve a FAIL
// with the fix.
func TestPreflightTLS(t *testing.T) {
	certs := testenv.NewTestCerts(t)
	tlsSrv := testenv.New(t, testenv.Options{ServerID: 1, TLS: certs})
	plain := testenv.New(t, testenv.Options{ServerID: 2})
	ctx := context.Background()
	line := func(rs []Result, side string) Result {
		t.Helper()
		for _, r := range rs {
			if r.Side == side && r.Check == "tls" {
				return r
			}
		}
		t.Fatalf("no tls line for %s in %+v", side, rs)
		return Result{}
	}

	rs := Run(ctx, Config{Source: tlsSrv.Endpoint(), Target: plain.Endpoint(), ServerID: 99})
	if r := line(rs, "source"); r.Level != Pass || !strings.Contains(r.Detail, "encrypted: TLSv1.") || !strings.Contains(r.Detail, "binlog stream") {
		t.Errorf("source: %+v", r)
	}
	if r := line(rs, "target"); r.Level != Pass || !strings.Contains(r.Detail, "unencrypted") || !strings.Contains(r.Detail, "on this host") {
		t.Errorf("target on loopback: %+v", r)
	}

	// The same unencrypted session, as if the server were another host.
	db := testenv.MustDB(t, plain)
	far := plain.Endpoint()
	far.Host = "db.internal.example"
	r := &report{}
	checkTLS(ctx, r, "target", far, db)
	if got := r.rs[0]; got.Level != Warn || !strings.Contains(got.Detail, "across the network to db.internal.example") || !strings.Contains(got.Fix, "enable it") {
		t.Errorf("unencrypted across hosts: %+v", got)
	}

	req := plain.Endpoint()
	req.TLS = conn.TLS{Mode: conn.ModeRequired}
	rs = Run(ctx, Config{Source: tlsSrv.Endpoint(), Target: req, ServerID: 99})
	if !Failed(rs) {
		t.Fatal("required on a server without TLS did not fail")
	}
	if r := line(rs, "target"); r.Level != Fail || !strings.Contains(r.Detail, "does not offer TLS") || !strings.Contains(r.Fix, "enable TLS on the server") {
		t.Errorf("required without TLS: %+v", r)
	}
}
