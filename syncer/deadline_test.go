package syncer_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/syncer"
)

// The story: the path to the source was blackholed; the watchdog ended the
// stream after three missed heartbeats, then the reconnect sat 27.7 s in
// the handshake, on a connection the dead route swallowed, because nothing
// bounded a connect after its TCP dial. Now every connect has a deadline:
// the channel is streaming again within the watchdog's window plus one
// connect timeout (and the restart's backoff) once a route exists.
func TestBlackholedSourceRecoversWithinWatchdogPlusConnectTimeout(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB := testenv.MustDB(t, src)
	proxy, err := testenv.NewProxy(src.Endpoint().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	heartbeat, connectTimeout := 500*time.Millisecond, 2*time.Second
	if os.Getenv("PITCREW_TEST_NO_CONNECT_DEADLINE") != "" {
		connectTimeout = time.Hour // as before: the test must fail
	}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) {
		c.Source.Port = proxy.Port()
		c.StartFrom = syncer.StartBeginning
		c.Heartbeat, c.ConnectTimeout = heartbeat, connectTimeout
		c.RestartBackoffMax = 500 * time.Millisecond
	})
	testenv.Exec(t, srcDB, "CREATE DATABASE bh", "CREATE TABLE bh.t (id INT PRIMARY KEY)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, syncer.RunOptions{}) }()
	waitApplied(t, s, srcDB, 30*time.Second)

	proxy.Blackhole()
	start := time.Now()
	// The watchdog ends the stream; the old stream's session kill (on a new
	// connection, in the background) and the reconnect walk into the
	// blackhole.
	for proxy.Blackholed() < 2 {
		if time.Since(start) > 30*time.Second {
			t.Fatal("no reconnect within 30s of the blackhole")
		}
		time.Sleep(20 * time.Millisecond)
	}
	reconnectAt := time.Since(start)
	// A route exists again for new connections; the one in the blackhole
	// never gets an answer.
	proxy.Resume()
	for i := range 5 {
		testenv.Exec(t, srcDB, fmt.Sprintf("INSERT INTO bh.t VALUES (%d)", i))
	}
	waitApplied(t, s, srcDB, 60*time.Second)
	took := time.Since(start)
	window := 3*heartbeat + connectTimeout
	t.Logf("reconnect into the blackhole after %s; streaming again after %s (watchdog window + connect timeout = %s, plus two restart backoffs of 500ms)",
		reconnectAt.Round(10*time.Millisecond), took.Round(10*time.Millisecond), window)
	// The watchdog checks once per heartbeat (up to one more period to
	// notice), and two restarts wait their backoff (500ms each here).
	if limit := window + heartbeat + 2*500*time.Millisecond + time.Second; took > limit {
		t.Fatalf("recovered after %s; want within %s", took, limit)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}
