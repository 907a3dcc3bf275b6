package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pitcrew/pitcrew/syncer"
)

func TestProgressFitsTheTerminal(t *testing.T) {
	for _, width := range []int{40, 80, 200} {
		var buf bytes.Buffer
		p := &progress{line: &liveLine{w: &buf, tty: true, width: width}, start: time.Now().Add(-90 * time.Second)}
		p.print(syncer.Status{State: "catching-up", TxnsApplied: 123456, RowsApplied: 987654, TransactionsBehind: 4567})
		out := buf.String()
		line := strings.TrimSuffix(strings.TrimPrefix(out, "\r"), "\033[K")
		if n := utf8.RuneCountInString(line); n > width-1 {
			t.Errorf("width %d: line of %d columns wraps: %q", width, n, line)
		}
		if width >= 80 && !strings.Contains(line, "%") {
			t.Errorf("width %d: no percent in %q", width, line)
		}
	}
}

func TestProgressInALogFileHasNoEscapes(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)                                        // not a terminal
	p.samples = []sample{{time.Now().Add(-2 * time.Second), 500}} // applying for 2 s
	p.print(syncer.Status{State: "catching-up", TxnsApplied: 1000, TransactionsBehind: 1000})
	p.print(syncer.Status{State: "catching-up", TxnsApplied: 1500, TransactionsBehind: 500})
	p.final(syncer.Status{State: "caught-up", TxnsApplied: 2000})
	out := buf.String()
	if strings.ContainsAny(out, "\r\033") {
		t.Fatalf("escape codes written to a non-terminal: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], " 50% ") || !strings.Contains(lines[1], "elapsed") {
		t.Fatalf("want three plain lines, the second at 50%% with elapsed and ETA:\n%s", out)
	}
	if strings.Contains(lines[1], "ETA ?") {
		t.Errorf("an ETA is known once a rate is: %q", lines[1])
	}
}

func TestKeyText(t *testing.T) {
	for _, c := range []struct {
		key  map[string]string
		want string
	}{
		{map[string]string{"id": "20"}, "id=20"},
		{map[string]string{"b": "x y", "a": "1"}, "a=1 b='x y'"},
		{map[string]string{"k": "it's"}, "k='it''s'"},
		{map[string]string{"k": ""}, "k=''"},
		{map[string]string{"k": "a'b c"}, "k='a''b c'"},
	} {
		if got := keyText(c.key); got != c.want {
			t.Errorf("keyText(%v) = %q, want %q", c.key, got, c.want)
		}
	}
}

// Before anything is applied (connecting, starting) the ETA is unknown,
// not hours long; once applying, it is the backlog over the recent rate.
func TestProgressETAFromTheFirstApply(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	t0 := time.Now().Add(-10 * time.Second)
	p.samples = []sample{{t0, 0}} // a reading 10 s ago, nothing applied then
	p.print(syncer.Status{State: "streaming", TxnsApplied: 0, TransactionsBehind: 1000})
	if !strings.Contains(buf.String(), "ETA ?") {
		t.Errorf("nothing applied yet: %q", buf.String())
	}
	buf.Reset()
	p.samples = []sample{{time.Now().Add(-2 * time.Second), 0}}
	p.print(syncer.Status{State: "streaming", TxnsApplied: 200, TransactionsBehind: 800})
	if !strings.Contains(buf.String(), "100 txn/s") || !strings.Contains(buf.String(), "ETA 8s") {
		t.Errorf("200 applied in 2 s, 800 behind: %q", buf.String())
	}
}
