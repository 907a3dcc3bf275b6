package binlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// The binlog stream gets the same TLS as the SQL driver (the cases of
// testenv.TLSCases, which internal/conn runs for the driver): each good
// case streams a transaction, each bad one fails at the start with the
// cause in one line and no secret.
func TestTLSModesStream(t *testing.T) {
	for _, c := range testenv.TLSCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := make(chan *txn.Txn, 16)
			done := make(chan error, 1)
			go func() {
				done <- Stream(ctx, Config{Source: c.E, Flavor: gtid.MariaDB, ServerID: 91}, gtid.Empty(gtid.MariaDB), out, nil)
			}()
			if len(c.ErrHas) > 0 {
				var err error
				select {
				case err = <-done:
				case <-out:
					t.Fatalf("streamed; want an error saying %q", c.ErrHas)
				}
				msg := err.Error()
				t.Logf("error: %s", msg)
				for _, want := range append(c.ErrHas, c.E.String()) {
					if !strings.Contains(msg, want) {
						t.Errorf("error lacks %q", want)
					}
				}
				if strings.Contains(msg, testenv.TLSSecret) || strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, "\n") {
					t.Errorf("error holds a secret or spans lines")
				}
				return
			}
			// Every server's binlog starts with its own setup
			// transactions (mysql.* tables, users): one is enough.
			select {
			case tx := <-out:
				t.Logf("streamed %s", tx.GTID)
			case err := <-done:
				t.Fatalf("stream ended: %v", err)
			case <-ctx.Done():
				t.Fatal("no transaction within 20s")
			}
		})
	}
}

// A path that swallows packets after the TCP connect (the proxy holds
// every byte) fails the stream's start within the connect timeout, with
// a retryable error that says so, instead of holding the handshake for as
// long as the route stays dead.
func TestStreamConnectDeadline(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	proxy, err := testenv.NewProxy(src.Endpoint().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ep := src.Endpoint()
	ep.Port = proxy.Port()
	proxy.Stall()
	defer proxy.Resume()
	start := time.Now()
	err = Stream(context.Background(), Config{Source: ep, Flavor: gtid.MariaDB, ServerID: 92, ConnectTimeout: 2 * time.Second},
		gtid.Empty(gtid.MariaDB), make(chan *txn.Txn), nil)
	took := time.Since(start)
	t.Logf("after %s: %v", took.Round(10*time.Millisecond), err)
	if err == nil || !conn.Retryable(err) || !strings.Contains(err.Error(), "did not complete the connect within 2s (TCP, TLS and login handshakes") {
		t.Fatalf("got %v; want a retryable connect timeout", err)
	}
	if took > 4*time.Second {
		t.Fatalf("the start took %s; want about the 2s connect timeout", took)
	}
}
