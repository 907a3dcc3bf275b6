package console

import (
	"net"
	"net/http"
	"time"
)

// HTTPServer is an HTTP server on an address of its own: the one set-up of the
// console (with /metrics, /status...) and of the fleet view.
type HTTPServer struct {
	l   net.Listener
	srv *http.Server
}

// Listen binds addr. The handler comes with Serve, once the address is
// known (the console checks requests' origin against it).
func Listen(addr string) (*HTTPServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &HTTPServer{l: l}, nil
}

// Addr is the address bound (a port of 0 chosen).
func (s *HTTPServer) Addr() net.Addr { return s.l.Addr() }

// URL is the server's base URL, http://host:port/.
func (s *HTTPServer) URL() string { return "http://" + s.l.Addr().String() + "/" }

// Serve serves h in the background until Close; a client has 5s to send a
// request's headers.
func (s *HTTPServer) Serve(h http.Handler) {
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(s.l) }()
}

// Close stops serving (or, before Serve, releases the address).
func (s *HTTPServer) Close() error {
	if s.srv != nil {
		return s.srv.Close()
	}
	return s.l.Close()
}
