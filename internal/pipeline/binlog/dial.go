package binlog

import (
	"context"
	"net"
	"sync"
	"time"
)

// connectDeadline dials the source and puts a deadline on everything the
// connection does until streaming: go-mysql bounds only the dial (and, with
// ReadTimeout, which we do not use, each read), so a route that swallows
// packets after the TCP connect (the source gone behind a stateful
// firewall, a blackholed path) would hold the handshake, the replica
// registration or the dump request for as long as TCP retries. Once the
// stream has started, the watchdog (three missed heartbeats) takes over
// and the deadline is lifted.
type connectDeadline struct {
	timeout time.Duration
	mu      sync.Mutex
	conn    net.Conn // the last dialled: the stream's, until Close dials for its KILL
}

func (d *connectDeadline) dial(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second}
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	// Every connection gets the deadline, also the one go-mysql's Close
	// opens to kill our session on the source.
	if err := c.SetDeadline(time.Now().Add(d.timeout)); err != nil {
		c.Close()
		return nil, err
	}
	d.mu.Lock()
	d.conn = c
	d.mu.Unlock()
	return c, nil
}

// streaming lifts the deadline of the stream's connection.
func (d *connectDeadline) streaming() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		_ = d.conn.SetDeadline(time.Time{})
	}
}
