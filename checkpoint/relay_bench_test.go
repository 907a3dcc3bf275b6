package checkpoint

import (
	"context"
	"fmt"
	"testing"
)

// The relay's own cost per transaction of a write_only backlog (six events,
// about 350 bytes), appended one per group (the spool when the stream is
// the slower side) and read back in order.
var benchEvents = [][]byte{make([]byte, 42), make([]byte, 60), make([]byte, 70), make([]byte, 80), make([]byte, 70), make([]byte, 31)}

func benchRelay(b *testing.B, n int) (*Relay, func()) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	r, err := s.Relay("c", 0)
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		g := fmt.Sprintf("0-1-%d", i)
		if _, err := r.Append(context.Background(), g, []byte("fde"), benchEvents, Position{Flavor: "mariadb", GTIDSet: g}, nil); err != nil {
			b.Fatal(err)
		}
	}
	return r, func() { s.Close() }
}

func BenchmarkRelayAppend(b *testing.B) {
	r, done := benchRelay(b, 0)
	defer done()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.Append(context.Background(), "0-1-1", []byte("fde"), benchEvents, Position{Flavor: "mariadb", GTIDSet: "0-1-1"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRelayRead(b *testing.B) {
	r, done := benchRelay(b, b.N)
	defer done()
	b.ReportAllocs()
	b.ResetTimer()
	for seq := uint64(1); seq <= uint64(b.N); seq++ {
		e, err := r.Read(seq)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Release(seq, e.End); err != nil {
			b.Fatal(err)
		}
	}
}
