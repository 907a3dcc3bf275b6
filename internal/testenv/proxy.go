package testenv

import (
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy on a loopback port in front of a server, for cutting
// connections at chosen moments (a network fault injected from outside the
// engine, not a failpoint inside it).
type Proxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	paused  bool // refuse connections (closed at once), as a network outage would
	stalled bool // forward nothing, close nothing: a peer gone without a FIN
}

// Stall stops forwarding on every connection without closing any, as a
// peer that vanished (power loss, a dropped route) looks from this side:
// reads just wait. Resume ends it.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *Proxy) isStalled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled
}

// Pause cuts every connection and refuses new ones until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	p.Cut()
}

// Resume accepts connections again and ends a stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused, p.stalled = false, false
	p.mu.Unlock()
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	return p, nil
}

// Port is the proxy's listening port.
func (p *Proxy) Port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.isStalled() {
			time.Sleep(10 * time.Millisecond) // hold the bytes, as a dead route does
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every open connection through the proxy, as a network failure
// would; new connections are accepted again at once.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	return n / 2
}

// Conns is the number of connections open through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.l.Close()
	p.Cut()
}
