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
	// holing: connections accepted now join dead, whose bytes are
	// dropped for good (Blackhole).
	holing bool
	dead   map[net.Conn]bool
	holed  int // connections accepted while holing
}

// Blackhole drops every byte, for good, of the connections open now and of
// those accepted until Resume, closing none: a route that died with the
// peer's state (a stateful firewall that forgot them, a failed-over NAT).
// Unlike Stall, nothing held is delivered later. Resume lets connections
// accepted after it through; the dropped ones stay dead.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holing = true
	for c := range p.conns {
		p.dead[c] = true
	}
}

// Blackholed is the number of connections accepted into the blackhole.
func (p *Proxy) Blackholed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holed
}

func (p *Proxy) isDead(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead[c]
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
	p.paused, p.stalled, p.holing = false, false, false
	p.mu.Unlock()
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]struct{}{}, dead: map[net.Conn]bool{}}
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
		if p.holing {
			p.dead[c] = true
		}
	}
	if p.holing {
		p.holed++
	}
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		// Over a dead route neither side learns that the other closed.
		if !p.isDead(src) {
			dst.Close()
		}
		src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.isStalled() {
			time.Sleep(10 * time.Millisecond) // hold the bytes, as a dead route does
		}
		if n > 0 && p.isDead(src) {
			n = 0 // dropped on the dead route
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
	clear(p.dead)
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
