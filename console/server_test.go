package console

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestHTTPServer(t *testing.T) {
	hs, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hs.URL(), "http://127.0.0.1:") || !strings.HasSuffix(hs.URL(), "/") {
		t.Fatalf("URL %q", hs.URL())
	}
	hs.Serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "here") }))
	resp, err := http.Get(hs.URL())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "here" {
		t.Fatalf("served %q", b)
	}
	hs.Close()
	if _, err := http.Get(hs.URL()); err == nil {
		t.Fatal("still serving after Close")
	}

	// Closed before it serves: the address is free again.
	hs, err = Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := hs.Addr().String()
	hs.Close()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address still held after Close: %v", err)
	}
	l.Close()
}
