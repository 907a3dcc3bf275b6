package syncer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The service's log tells the story at a glance: behind, progress lines
// while catching up, one "caught up", no line for a flicker of backlog
// under steady load, "fell behind" when the lag grows, silence when idle.
func TestReporterLines(t *testing.T) {
	var buf bytes.Buffer
	s := &Syncer{cfg: Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))}}
	r := reporter{every: 10 * time.Second}
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at     time.Duration
		txns   int64
		behind int64
		lag    float64
		want   string // substring of the new output; "" = nothing new
	}{
		{0, 0, 5000, 120, "behind the source: catching up"},
		{2 * time.Second, 1000, 4000, 100, ""},
		{12 * time.Second, 5000, 0, 0, "caught up"},
		{14 * time.Second, 5010, 3, 0.5, ""},             // a flicker
		{24 * time.Second, 6000, 2, 0.4, "msg=progress"}, // applying: a progress line
		{26 * time.Second, 6000, 400, 12, "fell behind"},
		{36 * time.Second, 6000, 0, 0, "caught up"},
		{60 * time.Second, 6000, 0, 0, ""}, // idle: no progress line
	}
	for _, st := range steps {
		before := buf.Len()
		s.observe(&r, t0.Add(st.at), st.txns, st.behind, st.lag, 100, 40)
		got := buf.String()[before:]
		if st.want == "" && got != "" || st.want != "" && !strings.Contains(got, st.want) {
			t.Errorf("at %s: logged %q, want %q", st.at, got, st.want)
		}
	}
}
