package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/pitcrew/pitcrew/syncer"
)

// liveLine is one line of progress on stderr: on a terminal it is redrawn
// in place and cut to the terminal's width (a line longer than the terminal
// wraps, and the next redraw leaves the wrapped part behind); anywhere else
// (a log file, a pipe) it is a plain line every few seconds, with no
// carriage returns or escape codes.
type liveLine struct {
	w     io.Writer
	tty   bool
	width int
	every time.Duration
	last  time.Time
	shown bool
}

func newLiveLine(w io.Writer) *liveLine {
	l := &liveLine{w: w, every: 5 * time.Second}
	if f, ok := w.(*os.File); ok && isTTY(f) {
		l.tty, l.every, l.width = true, 300*time.Millisecond, termWidth(f)
	}
	return l
}

// termWidth is the terminal's width in columns; $COLUMNS, then 80, when the
// terminal does not say.
func termWidth(f *os.File) int {
	if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		return int(ws.Col)
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

// due reports whether a new line should be shown now.
func (l *liveLine) due() bool { return time.Since(l.last) >= l.every }

// show prints s: redrawn in place on a terminal, a new line elsewhere.
func (l *liveLine) show(s string) {
	l.last = time.Now()
	if !l.tty {
		fmt.Fprintln(l.w, s)
		return
	}
	fmt.Fprintf(l.w, "\r%s\033[K", fit(s, l.width-1))
	l.shown = true
}

// clear removes a redrawn line before the final one is printed.
func (l *liveLine) clear() {
	if l.tty && l.shown {
		fmt.Fprint(l.w, "\r\033[K")
		l.shown = false
	}
}

// fit cuts s to n columns (runes; progress lines are ASCII but table names
// need not be).
func fit(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "~"
}

// progress prints catch-up progress: a bar with percent, elapsed and ETA
// on a terminal, plain lines every few seconds otherwise.
type progress struct {
	line      *liveLine
	start     time.Time
	rate      float64 // transactions per second over the last few seconds
	rateKnown bool    // the samples span at least a second
	first     int64   // the largest backlog seen, for the bar
	// samples of (time, applied) over the last rateWindow, from the first
	// reading at which something was applied (the connect and the start
	// before it would make the first ETA hours long).
	samples []sample
}

type sample struct {
	at      time.Time
	applied int64
}

const rateWindow = 5 * time.Second

func newProgress(w io.Writer) *progress {
	return &progress{line: newLiveLine(w), start: time.Now()}
}

func (p *progress) loop(s *syncer.Syncer, done <-chan struct{}) {
	t := time.NewTicker(p.line.every)
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
	if len(p.samples) == 1 && p.samples[0].applied == st.TxnsApplied {
		p.samples = p.samples[:0] // nothing applied yet: no rate to measure from
	}
	p.samples = append(p.samples, sample{now, st.TxnsApplied})
	for len(p.samples) > 2 && now.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	p.rate, p.rateKnown = 0, false
	if old := p.samples[0]; now.Sub(old.at) >= time.Second {
		p.rate, p.rateKnown = float64(st.TxnsApplied-old.applied)/now.Sub(old.at).Seconds(), true
	}
	if st.TransactionsBehind > p.first {
		p.first = st.TransactionsBehind
	}
	p.line.show(p.text(st, now))
}

// text is one progress line. The ETA is the backlog over the recent rate
// while behind ("?" until a rate is known), and the bar and percent are of
// the largest backlog seen, so both stay true when the source outruns us.
// On a terminal the line fits its width: the bar goes first when narrow,
// the totals are left out when they do not fit whole.
func (p *progress) text(st syncer.Status, now time.Time) string {
	eta := "?"
	switch {
	case st.TransactionsBehind == 0:
		eta = "0s"
	case p.rate > 0:
		eta = time.Duration(float64(st.TransactionsBehind) / p.rate * float64(time.Second)).Round(time.Second).String()
	}
	frac := 1.0
	if p.first > 0 {
		frac = 1 - float64(st.TransactionsBehind)/float64(p.first)
	}
	frac = max(0, min(1, frac))
	elapsed := now.Sub(p.start).Round(time.Second)
	state := ""
	if st.State != syncer.StateStreaming {
		state = " " + string(st.State) + ","
	}
	rate := "? txn/s" // still measuring
	if p.rateKnown {
		rate = fmt.Sprintf("%.0f txn/s", p.rate)
	}
	head := fmt.Sprintf("%3.0f%%%s behind %d txns, %s, elapsed %s, ETA %s",
		frac*100, state, st.TransactionsBehind, rate, elapsed, eta)
	tail := fmt.Sprintf(", applied %d txns %d rows", st.TxnsApplied, st.RowsApplied)
	if !p.line.tty {
		return "catchup: " + head + tail
	}
	// A bar of a steady width (10 columns, 20 on a wide terminal) when the
	// figures that matter fit beside it; the totals come last and are the
	// first to be cut.
	n := 10
	if p.line.width >= 120 {
		n = 20
	}
	line := head
	if p.line.width-1 >= len(head)+n+3 {
		fill := int(frac * float64(n))
		line = "[" + strings.Repeat("#", fill) + strings.Repeat(".", n-fill) + "] " + head
	}
	if len(line)+len(tail) <= p.line.width-1 {
		line += tail // whole or not at all
	}
	return line
}

func (p *progress) final(st syncer.Status) {
	p.line.clear()
	fmt.Fprintf(p.line.w, "catchup: %s after %s: %d transactions, %d rows applied; target at %q\n",
		st.State, time.Since(p.start).Round(time.Millisecond), st.TxnsApplied, st.RowsApplied, st.AppliedGTIDSet)
}

func (p *progress) clear() { p.line.clear() }
