package binlog

import (
	"context"
	"net"
	"time"
)

// dialer bounds the connect time so an unreachable source fails fast.
func dialer(ctx context.Context, network, address string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, network, address)
}
