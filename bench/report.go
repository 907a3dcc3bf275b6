package bench

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is everything one `pitcrew bench all` measured.
type Report struct {
	Started time.Time       `json:"started"`
	Host    string          `json:"host"`
	Smoke   bool            `json:"smoke,omitempty"` // tiny sizes: the numbers mean nothing
	Catchup []CatchupResult `json:"catchup,omitempty"`
	Lag     []LagResult     `json:"lag,omitempty"`
	Memory  []MemoryResult  `json:"memory,omitempty"`
	Decode  []DecodeResult  `json:"decode,omitempty"`
}

// Line is one row of the summary: a median over rounds, and its ratio to
// the reference measured in the same run.
type Line struct {
	Section, Name string
	Value         float64
	Unit          string
	Ratio         float64 // value / reference; 0 when none
	Reference     string
	// Warning marks a line that qualifies the others (a run too short, a
	// rate not reached): shown in the table, not charted.
	Warning bool `json:"warning,omitempty"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Summary reduces the rounds to medians with ratios: catch-up against the
// native single-threaded replica and the best native setting (and, for
// inserts, the ingest ceiling); lag against native; decode against
// mariadb-binlog.
func (r *Report) Summary() []Line {
	var out []Line
	groups := map[string]map[string][]float64{}
	var order []string
	for _, c := range r.Catchup {
		if c.Note != "" && !strings.HasPrefix(c.Contender, ceilingName) {
			continue
		}
		key := c.Workload
		if groups[key] == nil {
			groups[key] = map[string][]float64{}
			order = append(order, key)
		}
		v := c.TxnsPerS
		if strings.HasPrefix(c.Contender, ceilingName) {
			v = c.RowsPerS
		}
		groups[key][c.Contender] = append(groups[key][c.Contender], v)
	}
	for _, w := range order {
		g := groups[w]
		single := median(g["native single-threaded"])
		best, bestName := single, "native single-threaded"
		for name, xs := range g {
			if strings.HasPrefix(name, "native parallel") && median(xs) > best {
				best, bestName = median(xs), name
			}
		}
		ceiling := 0.0
		for name, xs := range g {
			if strings.HasPrefix(name, ceilingName) {
				ceiling = max(ceiling, median(xs))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(g)) {
			v := median(g[name])
			l := Line{Section: "catch-up " + w, Name: name, Value: v, Unit: "tx/s"}
			if strings.HasPrefix(name, ceilingName) {
				l.Unit = "rows/s"
			}
			if strings.HasPrefix(name, "pitcrew") {
				out = append(out, Line{Section: l.Section, Name: name + " vs native single", Value: v, Unit: "tx/s", Ratio: ratio(v, single), Reference: "native single-threaded"})
				l.Name, l.Ratio, l.Reference = name+" vs best native", ratio(v, best), bestName
				if ceiling > 0 {
					rows := v * float64(rowsPerTxn(w))
					out = append(out, Line{Section: l.Section, Name: name + " vs ingest ceiling", Value: rows, Unit: "rows/s", Ratio: ratio(rows, ceiling), Reference: "best ingest ceiling"})
				}
			}
			out = append(out, l)
		}
		if on, off := g[defaultsName], g[relayOffName]; len(on) > 0 && len(off) > 0 {
			// What the purge protection costs: the defaults against the
			// same run without the relay (1.00 = free).
			out = append(out, Line{Section: "catch-up " + w, Name: defaultsName + " vs relay off", Value: median(on), Unit: "tx/s",
				Ratio: ratio(median(on), median(off)), Reference: relayOffName})
		}
		out = append(out, r.cpuLines(w)...)
	}
	type lagKey struct {
		rate int
		name string
	}
	p50, p99, cores, achieved := map[lagKey][]float64{}, map[lagKey][]float64{}, map[lagKey][]float64{}, map[lagKey][]float64{}
	var keys []lagKey
	for _, l := range r.Lag {
		if l.Samples == 0 {
			continue
		}
		k := lagKey{l.Rate, l.Contender}
		if _, ok := p50[k]; !ok {
			keys = append(keys, k)
		}
		p50[k], p99[k], cores[k] = append(p50[k], l.P50), append(p99[k], l.P99), append(cores[k], l.PitcrewCores)
		achieved[k] = append(achieved[k], l.Achieved)
	}
	for _, k := range keys {
		sec := fmt.Sprintf("lag at %d tx/s", k.rate)
		native := lagKey{k.rate, "native single-threaded"}
		if a := median(achieved[k]); a < 0.9*float64(k.rate) && !r.Smoke {
			// The writers fell short: the lag was measured at a lower rate.
			out = append(out, Line{Section: sec, Name: k.name + ": source rate reached (short of the target rate)", Value: a, Unit: "tx/s", Warning: true})
		}
		l50 := Line{Section: sec, Name: k.name + " p50", Value: median(p50[k]), Unit: "ms"}
		l99 := Line{Section: sec, Name: k.name + " p99", Value: median(p99[k]), Unit: "ms"}
		if k != native {
			l99.Ratio, l99.Reference = ratio(median(p99[k]), median(p99[native])), "native p99"
			out = append(out, l50, l99, Line{Section: sec, Name: k.name + " CPU", Value: median(cores[k]), Unit: "cores"})
			continue
		}
		out = append(out, l50, l99)
	}
	for _, m := range r.Memory {
		name := fmt.Sprintf("pitcrew peak RSS, backlog %d", m.Backlog)
		if m.HugeRows > 0 {
			name = fmt.Sprintf("pitcrew peak RSS, one txn of %d rows", m.HugeRows)
			if m.RelayOff {
				name += ", relay off"
			}
		}
		out = append(out, Line{Section: "memory", Name: name, Value: float64(m.PeakRSS) / (1 << 20), Unit: "MiB"})
	}
	dec := map[string][]float64{}
	var dnames []string
	for _, d := range r.Decode {
		if d.Note != "" {
			continue
		}
		if _, ok := dec[d.Contender]; !ok {
			dnames = append(dnames, d.Contender)
		}
		dec[d.Contender] = append(dec[d.Contender], d.MBPerS)
	}
	for _, n := range dnames {
		l := Line{Section: "decode", Name: n, Value: median(dec[n]), Unit: "MB/s"}
		if strings.HasPrefix(n, "pitcrew") {
			for _, o := range dnames {
				if !strings.HasPrefix(o, "pitcrew") {
					out = append(out, Line{Section: "decode", Name: n + " vs " + o, Value: l.Value, Unit: "MB/s", Ratio: ratio(l.Value, median(dec[o])), Reference: o})
				}
			}
		}
		out = append(out, l)
	}
	return out
}

// cpuLines are one workload's CPU per source transaction, median over
// rounds: pitcrew's own (this process), and the target server's for every
// contender (what a user's target instance feels), with pitcrew's against
// the native single-threaded replica's. A run shorter than 10 s is
// flagged: start-up dominates it.
func (r *Report) cpuLines(workload string) []Line {
	own, server, secs := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	var names []string
	for _, c := range r.Catchup {
		if c.Workload != workload || c.Note != "" || c.TxnsPerS == 0 {
			continue
		}
		n := c.TxnsPerS * c.Seconds
		if _, ok := server[c.Contender]; !ok {
			names = append(names, c.Contender)
		}
		own[c.Contender] = append(own[c.Contender], 1e6*c.PitcrewCPU/n)
		server[c.Contender] = append(server[c.Contender], 1e6*c.ServerCPU/n)
		secs[c.Contender] = append(secs[c.Contender], c.Seconds)
	}
	sec := "catch-up " + workload
	var out []Line
	nativeServer := median(server["native single-threaded"])
	for _, name := range names {
		l := Line{Section: sec, Name: name + ": target server CPU per txn", Value: median(server[name]), Unit: "us/txn"}
		if strings.HasPrefix(name, "pitcrew") {
			l.Ratio, l.Reference = ratio(l.Value, nativeServer), "native single-threaded's"
			out = append(out, Line{Section: sec, Name: name + ": pitcrew CPU per txn", Value: median(own[name]), Unit: "us/txn"})
		}
		out = append(out, l)
		if strings.HasPrefix(name, "native") && median(secs[name]) < 10 && !r.Smoke {
			out = append(out, Line{Section: sec, Name: name + ": run shorter than 10 s (start-up dominates; raise --txns)", Value: median(secs[name]), Unit: "s", Warning: true})
		}
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteTable prints the summary.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%-22s %-64s %12s %-7s %7s  %s\n", "SECTION", "MEASURE (median of rounds)", "VALUE", "UNIT", "RATIO", "AGAINST")
	for _, l := range r.Summary() {
		ratio := ""
		if l.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", l.Ratio)
		}
		fmt.Fprintf(w, "%-22s %-64s %12.1f %-7s %7s  %s\n", l.Section, l.Name, l.Value, l.Unit, ratio, l.Reference)
	}
}

// WriteHTML writes a self-contained page with SVG charts: median catch-up
// throughput, catch-up progress over time, the lag distributions, peak
// memory and decode speed. Each chart holds one unit (tx/s and rows/s, ms
// and cores never share a scale), and every contender has its bar,
// pitcrew's included (its ratios are in the table).
func (r *Report) WriteHTML(w io.Writer) error {
	var charts []template.HTML
	type chartKey struct{ section, unit string }
	groups := map[chartKey][]Line{}
	seen := map[string]bool{}
	var order []chartKey
	lines := r.Summary()
	for _, l := range lines {
		if l.Warning {
			continue
		}
		name, _, ratioLine := strings.Cut(l.Name, " vs ")
		if ratioLine && l.Unit == "rows/s" {
			name += " (as rows/s)"
		}
		id := l.Section + "\x00" + name + "\x00" + l.Unit
		if seen[id] {
			continue // one bar per contender: its ratios are the table's
		}
		seen[id] = true
		k := chartKey{l.Section, l.Unit}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		l.Name = name
		groups[k] = append(groups[k], l)
	}
	for _, k := range order {
		charts = append(charts, bars(k.section+" ("+k.unit+")", groups[k]))
	}
	if c := progressChart(r.Catchup); c != "" {
		charts = append(charts, c)
	}
	if c := lagChart(r.Lag); c != "" {
		charts = append(charts, c)
	}
	return page.Execute(w, map[string]any{"R": r, "Lines": lines, "Charts": charts})
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"f": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"ratio": func(v float64) string {
		if v == 0 {
			return ""
		}
		return fmt.Sprintf("%.2fx", v)
	},
}).Parse(`<!doctype html><html><head><meta charset="utf-8"><title>pitcrew bench</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}td:first-child{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}svg{margin:1em 0;display:block}</style></head><body>
<h1>pitcrew bench</h1>{{if .R.Smoke}}<p style="background:#fde2e2;padding:6px 10px"><b>Smoke run</b> (--smoke): tiny sizes that keep the harness working; these numbers mean nothing.</p>{{end}}<p>{{.R.Started.Format "2006-01-02 15:04 MST"}} on {{.R.Host}}. Medians over rounds; ratios against contenders measured in the same run.</p>
<table><tr><th>section</th><th>measure</th><th>value</th><th>unit</th><th>ratio</th><th>against</th></tr>
{{range .Lines}}<tr{{if .Warning}} style="background:#fde2e2"{{end}}><td>{{.Section}}</td><td>{{.Name}}</td><td class="n">{{f .Value}}</td><td>{{.Unit}}</td><td class="n">{{ratio .Ratio}}</td><td>{{.Reference}}</td></tr>{{end}}</table>
{{range .Charts}}{{.}}{{end}}</body></html>
`))

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"}

// bars is a horizontal bar chart of one section.
func bars(title string, lines []Line) template.HTML {
	const width, left, row = 900, 420, 24
	maxV := 0.0
	for _, l := range lines {
		maxV = math.Max(maxV, l.Value)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" font-weight="bold">%s</text>`, width, 30+row*len(lines), template.HTMLEscapeString(title))
	for i, l := range lines {
		y := 28 + i*row
		wv := 0.0
		if maxV > 0 {
			wv = (width - left - 120) * l.Value / maxV
		}
		fmt.Fprintf(&b, `<text x="0" y="%d">%s</text><rect x="%d" y="%d" width="%.0f" height="16" fill="%s"/><text x="%.0f" y="%d">%.1f %s</text>`,
			y+13, template.HTMLEscapeString(l.Name), left, y, wv, palette[i%len(palette)], float64(left)+wv+6, y+13, l.Value, l.Unit)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineChart draws series of (x, y) points: axes with ticks and labels,
// the legend beside the plot (never over the curves).
func lineChart(title, xLabel, yLabel string, names []string, series [][][2]float64) template.HTML {
	const width, height, left, top, legend = 980, 340, 70, 30, 280
	const plotW, plotH = width - left - legend - 20, height - top - 40
	maxX, maxY := 0.0, 0.0
	for _, s := range series {
		for _, p := range s {
			maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	if maxX == 0 || maxY == 0 {
		return ""
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY)
	x := func(v float64) float64 { return left + plotW*v/maxX }
	y := func(v float64) float64 { return top + plotH - plotH*v/maxY }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" font-size="12"><text x="0" y="16" font-weight="bold" font-size="14">%s</text>`, width, height+10, template.HTMLEscapeString(title))
	for i := 0; i <= 5; i++ {
		xv, yv := maxX*float64(i)/5, maxY*float64(i)/5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			x(xv), top, x(xv), top+plotH, x(xv), top+plotH+16, tick(xv))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, y(yv), left+plotW, y(yv), left-6, y(yv)+4, tick(yv))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`, left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, left+plotW/2, top+plotH+34, template.HTMLEscapeString(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`, top+plotH/2, template.HTMLEscapeString(yLabel))
	for i, s := range series {
		var pts []string
		for _, p := range s {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		color := palette[i%len(palette)]
		ly := top + 10 + 18*i
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/><text x="%d" y="%d">%s</text>`,
			color, strings.Join(pts, " "), left+plotW+16, ly, left+plotW+36, ly, color, left+plotW+42, ly+4, template.HTMLEscapeString(names[i]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so ticks at
// fifths are round numbers.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// tick prints an axis value briefly: 12k, 1.5M, 0.4.
func tick(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// progressChart is transactions applied over time in round 1 of the first
// workload that has a replica's progress, per contender.
func progressChart(rs []CatchupResult) template.HTML {
	workload := ""
	for _, r := range rs {
		if len(r.Series) > 1 && r.Note == "" {
			workload = r.Workload
			break
		}
	}
	var names []string
	var series [][][2]float64
	for _, r := range rs {
		if r.Round == 1 && r.Workload == workload && len(r.Series) > 1 {
			names, series = append(names, r.Contender), append(series, r.Series)
		}
	}
	return lineChart("catch-up progress ("+workload+", round 1)", "seconds", "transactions applied", names, series)
}

// lagChart is the cumulative distribution of heartbeat lag per contender
// and rate (all rounds pooled).
func lagChart(ls []LagResult) template.HTML {
	pooled := map[string][]float64{}
	var names []string
	for _, l := range ls {
		k := fmt.Sprintf("%s @ %d tx/s", l.Contender, l.Rate)
		if _, ok := pooled[k]; !ok {
			names = append(names, k)
		}
		pooled[k] = append(pooled[k], l.LagsMS...)
	}
	var series [][][2]float64
	for _, n := range names {
		xs := slices.Clone(pooled[n])
		slices.Sort(xs)
		var s [][2]float64
		for i, x := range xs {
			// A heartbeat's age read a hair below zero is the clocks'
			// granularity, not a lag: drawn at the origin.
			s = append(s, [2]float64{max(0, x), 100 * float64(i+1) / float64(len(xs))})
		}
		series = append(series, s)
	}
	return lineChart("heartbeat lag distribution (CDF)", "lag ms", "% of heartbeats", names, series)
}
