package syncer

import (
	"strings"
	"testing"
	"time"
)

func TestHealthyAndReady(t *testing.T) {
	st := func(state string, lag float64) Status {
		return Status{Channel: "c", State: state, SecondsBehind: lag, LastError: "boom: fix it"}
	}
	for _, c := range []struct {
		st      Status
		max     time.Duration
		healthy bool
		ready   bool
		says    string
	}{
		{st(StateStreaming, 0), time.Minute, true, true, "c streaming 0s behind"},
		{st(StateCaughtUp, 0), 0, true, true, ""},
		{st(StateStarting, 0), time.Minute, true, false, ""},
		{st(StateRetrying, 3), time.Minute, true, false, ""},
		{st(StateStreaming, 61), time.Minute, false, true, "over health_max_lag 1m0s"},
		{st(StateStreaming, 3600), 0, true, true, ""},
		{st(StateFailed, 0), time.Minute, false, false, "boom: fix it"},
		{st(StateStopped, 0), time.Minute, false, false, "no longer applies"},
	} {
		ok, text := Healthy([]Status{c.st}, HealthOptions{MaxLag: c.max})
		if ok != c.healthy || !strings.Contains(text, c.says) {
			t.Errorf("%s lag %.0f max %s: healthy %v %q", c.st.State, c.st.SecondsBehind, c.max, ok, text)
		}
		if r, _ := Ready([]Status{c.st}); r != c.ready {
			t.Errorf("%s: ready %v", c.st.State, r)
		}
	}
}
