package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/syncer"
)

// progress prints catch-up progress on stderr: a bar redrawn in place on a
// terminal, plain lines every few seconds otherwise.
type progress struct {
	w      io.Writer
	tty    bool
	start  time.Time
	last   syncer.Status
	lastAt time.Time
	rate   float64 // transactions per second, smoothed
	first  int64   // behind at the first reading, for the bar
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, start: time.Now(), lastAt: time.Now()}
}

func (p *progress) loop(s *syncer.Syncer, done <-chan struct{}) {
	every := 5 * time.Second
	if p.tty {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			p.print(s.Status())
		}
	}
}

func (p *progress) print(st syncer.Status) {
	now := time.Now()
	if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
		inst := float64(st.TxnsApplied-p.last.TxnsApplied) / dt
		if p.rate == 0 {
			p.rate = inst
		} else {
			p.rate = 0.7*p.rate + 0.3*inst
		}
	}
	p.last, p.lastAt = st, now
	if p.first == 0 || st.TransactionsBehind > p.first {
		p.first = st.TransactionsBehind
	}
	eta := "?"
	if p.rate > 0 {
		eta = (time.Duration(float64(st.TransactionsBehind)/p.rate) * time.Second).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s events %d, rows %d, txns %d, behind %d, %.0f txn/s, ETA %s",
		st.State, st.EventsRead, st.RowsApplied, st.TxnsApplied, st.TransactionsBehind, p.rate, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s %s", p.bar(st), line)
		return
	}
	fmt.Fprintln(p.w, "catchup:", line)
}

func (p *progress) bar(st syncer.Status) string {
	const width = 24
	frac := 1.0
	if p.first > 0 {
		frac = 1 - float64(st.TransactionsBehind)/float64(p.first)
	}
	n := int(frac * width)
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func (p *progress) final(st syncer.Status) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "catchup: %s after %s: %d transactions, %d rows applied; target at %q\n",
		st.State, time.Since(p.start).Round(time.Millisecond), st.TxnsApplied, st.RowsApplied, st.AppliedGTIDSet)
}

func (p *progress) clear() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
