package bench

import (
	"context"
	"database/sql"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/infra"
)

// CutoverResult is one cut-over as the application felt it and as the
// databases ended. Times are seconds since the application started.
type CutoverResult struct {
	Run      int    `json:"run"`
	Fence    string `json:"fence"`
	Order    string `json:"order"`
	Rollback bool   `json:"rollback"`
	Note     string `json:"note,omitempty"`

	Writes         int   `json:"writes"`
	Failed         int   `json:"failed_writes"` // given up after RetryFor
	InsertsAcked   int   `json:"inserts_acknowledged"`
	UpdatesAcked   int64 `json:"updates_acknowledged"`
	LostInserts    int   `json:"lost_inserts"`
	LostUpdates    int64 `json:"lost_updates"`
	Duplicates     int   `json:"duplicate_inserts"`
	ExtraUpdates   int64 `json:"extra_updates"`  // applied more often than acknowledged or possibly landed
	Unacknowledged int   `json:"unacknowledged"` // inserts present whose answer was lost (allowed)
	ReadMisses     int   `json:"read_after_write_misses"`
	ExactlyOnce    bool  `json:"exactly_once"`
	NodesEqual     bool  `json:"nodes_equal"` // after take-down

	P50             float64        `json:"p50_ms"` // over every write of the run
	P99             float64        `json:"p99_ms"`
	MaxMS           float64        `json:"max_ms"`
	LongestStallMS  float64        `json:"longest_stall_ms"`  // the longest any one write waited (retries included), up to a rollback
	RollbackStallMS float64        `json:"rollback_stall_ms"` // the same from the rollback on
	LongestGapMS    float64        `json:"longest_gap_ms"`    // the longest time no write was acknowledged
	BothWritableMS  float64        `json:"both_writable_ms"`  // the app's view: first ack on the new side to last on the old
	JournalStallMS  float64        `json:"journal_stall_ms"`  // fence to release, as migrate journaled it
	FenceMS         float64        `json:"fence_ms"`          // the fence statement(s)
	DrainMS         float64        `json:"drain_ms"`          // fence up to the forward channel holding the source's set
	ReleaseMS       float64        `json:"release_ms"`        // the hook
	JournalBothMS   float64        `json:"journal_both_ms"`   // both writable, as the journal says
	LagAtFence      string         `json:"lag_at_fence"`      // forward behind when the fence was up
	CutoverAt       float64        `json:"cutover_at"`        // migrate's cut-over began (guardrails)
	Steps           []Mark         `json:"steps"`             // the cut-over's sub-steps
	RollbackAt      float64        `json:"rollback_at,omitempty"`
	RollbackDone    float64        `json:"rollback_done,omitempty"`
	TakeDownAt      float64        `json:"take_down_done,omitempty"`
	Switches        []float64      `json:"switches"`  // when the app's pool moved
	Conflicts       map[string]int `json:"conflicts"` // "node outcome" -> count
	Errors          map[string]int `json:"refused_attempts"`
	PerSecond       []Second       `json:"per_second"` // from the fence: second 0 begins with it
	Buckets         []Second       `json:"buckets_100ms"`
	Around          []Point        `json:"around_switch"` // every write begun from 100 ms before the fence to 300 ms after the release
}

// Point is one write near the switch.
type Point struct {
	At      float64 `json:"at"`
	Latency float64 `json:"ms"`
	Node    string  `json:"node"`
	OK      bool    `json:"ok"`
}

// zero is the fence: the charts' and the per-second table's time origin.
func (r CutoverResult) zero() float64 {
	for _, m := range r.Steps {
		if m.Name == "fence" {
			return m.At
		}
	}
	return r.CutoverAt
}

// window is the switch, from 100 ms before the first of the fence and
// the hook to 300 ms after the last of the release and the drain.
func (r CutoverResult) window() (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range r.Steps {
		if m.Name != "guardrails" {
			lo, hi = min(lo, m.At), max(hi, m.At)
		}
	}
	if math.IsInf(lo, 0) {
		return r.CutoverAt, r.CutoverAt + 1
	}
	return lo - 0.1, hi + 0.3
}

// Mark is a sub-step of the cut-over on the time axis.
type Mark struct {
	Name string  `json:"name"`
	At   float64 `json:"at"`
}

// Second is the writes begun in one slice of time.
type Second struct {
	At     float64 `json:"at"`
	Writes int     `json:"writes"`
	Failed int     `json:"failed"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

func (r *CutoverResult) steps(c infra.CutoverTimes, t0 time.Time) {
	at := func(t time.Time) float64 { return t.Sub(t0).Seconds() }
	for _, m := range []struct {
		name string
		t    time.Time
	}{{"guardrails", c.Guardrails}, {"fence", c.Fence}, {"fenced", c.Fenced}, {"drained", c.Drained}, {"hook", c.Move}, {"released", c.Moved}} {
		if !m.t.IsZero() {
			r.Steps = append(r.Steps, Mark{m.name, at(m.t)})
		}
	}
	slices.SortStableFunc(r.Steps, func(a, b Mark) int { return cmpFloat(a.At, b.At) })
	d := func(a, b time.Time) float64 {
		if a.IsZero() || b.IsZero() {
			return 0
		}
		return ms64(b.Sub(a))
	}
	r.FenceMS, r.DrainMS, r.ReleaseMS = d(c.Fence, c.Fenced), d(c.Fenced, c.Drained), d(c.Move, c.Moved)
	if s, ok := c.Stall(); ok {
		r.JournalStallMS = ms64(s)
	}
	if b, ok := c.BothWritable(); ok {
		r.JournalBothMS = ms64(b)
	}
	r.LagAtFence = c.LagAtFence
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *CutoverResult) readLedger(ctx context.Context, db *sql.DB, node string) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_pitcrew' AND TABLE_NAME = 'conflicts'").Scan(&n); err != nil || n == 0 {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT CONCAT(tbl, ' ', op, ' ', outcome), COUNT(*) FROM _pitcrew.conflicts GROUP BY 1")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var c int
		if err := rows.Scan(&k, &c); err != nil {
			return err
		}
		if r.Conflicts == nil {
			r.Conflicts = map[string]int{}
		}
		r.Conflicts["on "+node+": "+k] += c
	}
	return rows.Err()
}

// ConflictCount is every conflict of the run, both nodes.
func (r CutoverResult) ConflictCount() int {
	n := 0
	for _, c := range r.Conflicts {
		n += c
	}
	return n
}

// summarize computes the latency figures from the writes.
func (a *app) summarize(r *CutoverResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r.Errors, r.Switches = a.errs, a.switches
	r.Writes, r.ReadMisses = len(a.writes), a.rawMiss
	ws := slices.Clone(a.writes)
	slices.SortFunc(ws, func(x, y write) int { return cmpFloat(x.At, y.At) })
	var lat []float64
	lastAck := 0.0
	firstNew, lastOld := math.Inf(1), math.Inf(-1)
	var acks []float64
	for _, w := range ws {
		lat = append(lat, w.Latency)
		if r.Rollback && w.At >= r.RollbackAt {
			r.RollbackStallMS = max(r.RollbackStallMS, w.Latency)
		} else {
			r.LongestStallMS = max(r.LongestStallMS, w.Latency)
		}
		if !w.OK {
			r.Failed++
			continue
		}
		done := w.At + w.Latency/1000
		acks = append(acks, done)
		if w.Node == "target" {
			firstNew = min(firstNew, done)
		} else if !r.Rollback || done < r.RollbackAt {
			lastOld = max(lastOld, done)
		}
	}
	slices.Sort(acks)
	for _, t := range acks {
		if lastAck > 0 {
			r.LongestGapMS = max(r.LongestGapMS, (t-lastAck)*1000)
		}
		lastAck = t
	}
	if lastOld > firstNew {
		r.BothWritableMS = (lastOld - firstNew) * 1000
	}
	// The source stays writable until the fence is up, whether or not the
	// application's last write there was acknowledged that late.
	r.BothWritableMS = max(r.BothWritableMS, r.JournalBothMS)
	r.P50, r.P99, r.MaxMS = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1)
	z := r.zero()
	r.PerSecond = timeSlices(ws, 1, z)
	r.Buckets = timeSlices(ws, 0.1, z)
	lo, hi := r.window()
	for _, w := range ws {
		if w.At >= lo && w.At <= hi {
			r.Around = append(r.Around, Point{At: w.At, Latency: w.Latency, Node: w.Node, OK: w.OK})
		}
	}
}

// timeSlices groups the writes by when they began, width seconds a slice,
// the slices aligned on zero.
func timeSlices(ws []write, width, zero float64) []Second {
	by := map[int][]write{}
	for _, w := range ws {
		k := int(math.Floor((w.At - zero) / width))
		by[k] = append(by[k], w)
	}
	var out []Second
	for _, k := range slices.Sorted(maps.Keys(by)) {
		s := Second{At: zero + float64(k)*width, Writes: len(by[k])}
		var lat []float64
		for _, w := range by[k] {
			lat = append(lat, w.Latency)
			if !w.OK {
				s.Failed++
			}
		}
		s.P50, s.P99, s.Max = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1)
		out = append(out, s)
	}
	return out
}

// Line is the run in one line for the log.
func (r CutoverResult) Line() string {
	if r.Note != "" && r.Writes == 0 {
		return "FAILED: " + r.Note
	}
	s := fmt.Sprintf("%d writes (%d inserts, %d updates acknowledged): lost %d inserts %d updates, %d failed, exactly once %v, nodes equal %v; stall %.0f ms (fence %.1f, drain %.1f, hook %.1f ms; lag at fence %s), both writable %.0f ms, %d conflicts",
		r.Writes, r.InsertsAcked, r.UpdatesAcked, r.LostInserts, r.LostUpdates, r.Failed, r.ExactlyOnce, r.NodesEqual,
		r.LongestStallMS, r.FenceMS, r.DrainMS, r.ReleaseMS, r.LagAtFence, r.BothWritableMS, r.ConflictCount())
	if r.Rollback {
		s += fmt.Sprintf("; rollback stall %.0f ms", r.RollbackStallMS)
	}
	if r.Note != "" {
		s += "; " + r.Note
	}
	return s
}

// WriteCutoverTable prints one line per run and the totals.
func WriteCutoverTable(w io.Writer, rs []CutoverResult) {
	fmt.Fprintf(w, "%-3s %-10s %-13s %-8s %6s %5s %5s %6s %5s %5s %8s %8s %8s %8s %8s %8s %6s %5s %7s\n",
		"RUN", "FENCE", "ORDER", "ROLLBACK", "WRITES", "LOSTI", "LOSTU", "FAILED", "ONCE", "EQUAL", "P50MS", "P99MS", "STALLMS", "FENCEMS", "DRAINMS", "HOOKMS", "BOTHMS", "CONFL", "RAWMISS")
	for _, r := range rs {
		eq := fmt.Sprint(r.NodesEqual)
		if r.Rollback {
			eq = "-"
		}
		fmt.Fprintf(w, "%-3d %-10s %-13s %-8v %6d %5d %5d %6d %5v %5s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %6.0f %5d %7d\n",
			r.Run, r.Fence, r.Order, r.Rollback, r.Writes, r.LostInserts, r.LostUpdates, r.Failed, r.ExactlyOnce, eq,
			r.P50, r.P99, r.LongestStallMS, r.FenceMS, r.DrainMS, r.ReleaseMS, r.BothWritableMS, r.ConflictCount(), r.ReadMisses)
		if r.Note != "" {
			fmt.Fprintf(w, "    note: %s\n", firstLine(r.Note))
		}
	}
	var stalls []float64
	lost, failed := int64(0), 0
	for _, r := range rs {
		stalls = append(stalls, r.LongestStallMS)
		lost += int64(r.LostInserts) + r.LostUpdates
		failed += r.Failed
	}
	if len(rs) > 1 {
		fmt.Fprintf(w, "%d runs: %d acknowledged writes lost, %d failed; longest stall median %.0f ms, max %.0f ms\n",
			len(rs), lost, failed, median(stalls), quantile(stalls, 1))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// WriteCutoverHTML writes the report: per run, the write latency over
// time (p50 and max per 100 ms, failed writes marked) with the cut-over's
// sub-steps as vertical lines, and the per-second table across the switch.
func WriteCutoverHTML(w io.Writer, rs []CutoverResult) error {
	type run struct {
		R           CutoverResult
		Chart, Zoom template.HTML
		Near        []Second
		Zero        float64
	}
	var runs []run
	for _, r := range rs {
		var near []Second
		z := r.zero()
		for _, s := range r.PerSecond {
			if s.At >= z-2.5 && s.At <= z+3.5 {
				near = append(near, s)
			}
		}
		runs = append(runs, run{R: r, Chart: latencyChart(r), Zoom: zoomChart(r), Near: near, Zero: z})
	}
	return cutoverPage.Execute(w, map[string]any{"Runs": runs, "Table": tableText(rs)})
}

func tableText(rs []CutoverResult) string {
	var b strings.Builder
	WriteCutoverTable(&b, rs)
	return b.String()
}

// logAxis maps milliseconds to a log scale between 0.1 ms and a power
// of ten at or above hi.
func logAxis(hi float64, top, bottom float64) (func(float64) float64, []float64) {
	maxY := math.Pow(10, math.Ceil(math.Log10(max(hi, 10))))
	const minY = 0.1
	var ticks []float64
	for v := minY; v <= maxY*1.001; v *= 10 {
		ticks = append(ticks, v)
	}
	return func(v float64) float64 {
		v = max(v, minY)
		return top + (bottom-top)*(1-(math.Log10(v)-math.Log10(minY))/(math.Log10(maxY)-math.Log10(minY)))
	}, ticks
}

const chartW, chartH, chartL, chartT, chartB = 1000.0, 300.0, 60.0, 30.0, 40.0

func chartFrame(b *strings.Builder, title string, y func(float64) float64, ticks []float64) {
	fmt.Fprintf(b, `<svg width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg" font-size="12"><text x="0" y="14" font-weight="bold">%s</text>`, chartW, chartH, template.HTMLEscapeString(title))
	for _, v := range ticks {
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%g ms</text>`, chartL, y(v), chartW-20, y(v), chartL-4, y(v)+4, v)
	}
}

// marks draws the sub-steps as dashed lines, their names staggered in
// rows so that close ones stay readable.
func marks(b *strings.Builder, ms []Mark, x func(float64) float64, lo, hi float64) {
	slices.SortStableFunc(ms, func(a, b Mark) int { return cmpFloat(a.At, b.At) })
	lastEnd := []float64{-1e9, -1e9, -1e9, -1e9, -1e9, -1e9}
	for _, m := range ms {
		if m.At < lo || m.At > hi {
			continue
		}
		mx := x(m.At)
		row := 0
		for row < len(lastEnd)-1 && lastEnd[row] > mx {
			row++
		}
		lastEnd[row] = mx + 7*float64(len(m.Name)) + 8
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999" stroke-dasharray="3,3"/><text x="%.1f" y="%.0f" fill="#444">%s</text>`,
			mx, chartT+float64(row)*13, mx, chartH-chartB, mx+3, chartT+10+float64(row)*13, template.HTMLEscapeString(m.Name))
	}
}

func (r CutoverResult) allMarks() []Mark {
	ms := append([]Mark(nil), r.Steps...)
	for _, s := range r.Switches {
		ms = append(ms, Mark{"app moved", s})
	}
	if r.Rollback {
		ms = append(ms, Mark{"rollback", r.RollbackAt}, Mark{"rolled back", r.RollbackDone})
	}
	return ms
}

// latencyChart: p50 and max write latency per 100 ms over the run, on a
// log scale, seconds from the fence, the sub-steps marked.
func latencyChart(r CutoverResult) template.HTML {
	if len(r.Buckets) == 0 {
		return ""
	}
	z := r.zero()
	x0, x1 := z-2.5, r.Buckets[len(r.Buckets)-1].At+0.1
	x1 = min(x1, z+4)
	if r.Rollback {
		x1 = max(x1, min(r.RollbackDone+1.5, r.Buckets[len(r.Buckets)-1].At+0.1))
	}
	hi := 0.0
	for _, bk := range r.Buckets {
		if bk.At >= x0 && bk.At <= x1 {
			hi = max(hi, bk.Max)
		}
	}
	y, ticks := logAxis(hi, chartT+40, chartH-chartB)
	x := func(t float64) float64 { return chartL + (chartW-chartL-20)*(t-x0)/(x1-x0) }
	var b strings.Builder
	chartFrame(&b, "write latency per 100 ms (log scale)", y, ticks)
	for t := math.Ceil(x0 - z); t <= x1-z; t++ {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%+.0fs</text>`, x(z+t), chartH-chartB+16, t)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">seconds from the fence</text>`, chartW/2-60, chartH-6)
	ms := []Mark{}
	for _, m := range r.allMarks() {
		if m.Name == "guardrails" || m.Name == "rollback" || m.Name == "rolled back" || m.Name == "fence" {
			ms = append(ms, m)
		}
	}
	marks(&b, ms, x, x0, x1)
	for i, series := range []struct {
		name string
		v    func(Second) float64
	}{{"max", func(s Second) float64 { return s.Max }}, {"p50", func(s Second) float64 { return s.P50 }}} {
		var pts []string
		for _, bk := range r.Buckets {
			if bk.At >= x0 && bk.At <= x1 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(bk.At+0.05), y(series.v(bk))))
			}
		}
		color := palette[i]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/><text x="%.0f" y="%.0f" fill="%s">%s per 100 ms</text>`,
			color, strings.Join(pts, " "), chartL+10, chartT+14*float64(i+1), color, series.name)
	}
	for _, bk := range r.Buckets {
		if bk.Failed > 0 && bk.At >= x0 && bk.At <= x1 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="4" fill="#e15759"><title>%d failed</title></circle>`, x(bk.At+0.05), chartH-chartB-4, bk.Failed)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// zoomChart: every write around the switch as a dot (when it began, how
// long it waited), coloured by the side that acknowledged it, with each
// sub-step of the cut-over marked.
func zoomChart(r CutoverResult) template.HTML {
	if len(r.Around) == 0 {
		return ""
	}
	x0, x1 := r.window()
	z := r.zero()
	hi := 0.0
	for _, p := range r.Around {
		hi = max(hi, p.Latency)
	}
	y, ticks := logAxis(hi, chartT+80, chartH-chartB)
	x := func(t float64) float64 { return chartL + (chartW-chartL-20)*(t-x0)/(x1-x0) }
	var b strings.Builder
	chartFrame(&b, "each write around the switch: when it began, how long it waited (log scale)", y, ticks)
	step := 0.05
	if x1-x0 > 2 {
		step = 0.5
	}
	for t := math.Ceil((x0-z)/step) * step; t <= x1-z; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%+.0f</text>`, x(z+t), chartH-chartB+16, t*1000)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">milliseconds from the fence</text>`, chartW/2-80, chartH-6)
	marks(&b, r.allMarks(), x, x0, x1)
	colors := map[string]string{"source": palette[0], "target": palette[1]}
	for _, p := range r.Around {
		c := colors[p.Node]
		if !p.OK {
			c = "#e15759"
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>`, x(p.At), y(p.Latency), c)
	}
	for i, l := range []struct{ name, color string }{{"acknowledged by the source", palette[0]}, {"acknowledged by the target", palette[1]}, {"failed", "#e15759"}} {
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.0f" r="4" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`, chartW-230, chartT+6+14*float64(i), l.color, chartW-222, chartT+10+14*float64(i), l.name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var cutoverPage = template.Must(template.New("cutover").Funcs(template.FuncMap{
	"f":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"s":   func(v float64) string { return fmt.Sprintf("%+.0f", v) },
	"sub": func(a, b float64) float64 { return a - b },
}).Parse(`<!doctype html><html><head><meta charset="utf-8"><title>pitcrew bench cutover</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;font-variant-numeric:tabular-nums}th{text-align:left}pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}.bad{color:#c00;font-weight:bold}.ok{color:#070}</style></head><body>
<h1>pitcrew bench cutover</h1>
<p>The local migrate runbook (forward, cut-over, take-down or rollback) on throwaway servers while an application writes: inserts (each read back at once) and increments of hot rows, retried while refused, its connection pool moved by the runbook's hook. Lost = acknowledged but not on the database the application ends on.</p>
<pre>{{.Table}}</pre>
{{range .Runs}}<h2>run {{.R.Run}}: fence {{.R.Fence}}, {{.R.Order}}{{if .R.Rollback}}, rolled back{{end}}</h2>
<p>{{if or .R.LostInserts .R.LostUpdates .R.Failed}}<span class="bad">{{.R.LostInserts}} inserts and {{.R.LostUpdates}} updates lost, {{.R.Failed}} writes failed</span>{{else}}<span class="ok">nothing lost, no write failed</span>{{end}};
longest stall {{f .R.LongestStallMS}} ms{{if .R.Rollback}} (rollback: {{f .R.RollbackStallMS}} ms){{end}} (cut-over: fence {{f .R.FenceMS}} ms, drain {{f .R.DrainMS}} ms, hook {{f .R.ReleaseMS}} ms; forward {{.R.LagAtFence}} behind at the fence);
both sides written {{f .R.BothWritableMS}} ms; conflicts: {{range $k, $v := .R.Conflicts}}{{$k}} {{$v}}; {{else}}none{{end}}
{{if .R.Note}}<br><span class="bad">{{.R.Note}}</span>{{end}}</p>
{{.Chart}}
{{.Zoom}}
<p>Per second from the fence (second 0 begins with it):</p>
<table><tr><th>second</th><th>writes</th><th>failed</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>
{{$c := .Zero}}{{range .Near}}<tr><td>{{s (sub .At $c)}}</td><td>{{.Writes}}</td><td>{{.Failed}}</td><td>{{f .P50}}</td><td>{{f .P99}}</td><td>{{f .Max}}</td></tr>{{end}}</table>
{{end}}</body></html>
`))
