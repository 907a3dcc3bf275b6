package syncer

import (
	"time"
)

// behindAfter is how far behind (seconds) a caught-up channel must fall
// before the log says so: under a steady workload the backlog flickers
// between 0 and a few transactions at every poll, and a line per flicker
// would bury the ones that matter.
const behindAfter = 10.0

// reporter writes the service's progress lines: one every
// Config.ProgressEvery while the channel applies or is behind, and one at
// each "caught up" / "fell behind" transition.
type reporter struct {
	every    time.Duration
	last     time.Time
	lastTxns int64
	known    bool // a transition line was written
	caughtUp bool
}

// observe is called at every poll of the source with the numbers the
// status shows.
func (s *Syncer) observe(r *reporter, now time.Time, txns, behind int64, lag, rate, eta float64) {
	log := s.cfg.Logger
	switch {
	case behind == 0 && (!r.known || !r.caughtUp):
		log.Info("caught up: the target has everything the source executed", "applied_txns", txns, "gtid", s.status.get().AppliedGTIDSet)
		r.known, r.caughtUp = true, true
	case behind > 0 && !r.known:
		log.Info("behind the source: catching up", "behind_txns", behind, "seconds_behind", round1(lag), "rate_tps", round1(rate), "eta", etaString(eta))
		r.known, r.caughtUp = true, false
	case behind > 0 && r.caughtUp && lag >= behindAfter:
		log.Warn("fell behind the source", "behind_txns", behind, "seconds_behind", round1(lag), "rate_tps", round1(rate), "eta", etaString(eta))
		r.caughtUp = false
	}
	if r.every <= 0 {
		return
	}
	if r.last.IsZero() {
		r.last, r.lastTxns = now, txns
		return
	}
	if now.Sub(r.last) < r.every {
		return
	}
	applied := txns - r.lastTxns
	if applied > 0 || behind > 0 {
		log.Info("progress", "applied_txns", applied, "interval", now.Sub(r.last).Round(time.Second).String(),
			"rate_tps", round1(rate), "behind_txns", behind, "seconds_behind", round1(lag), "eta", etaString(eta))
	}
	r.last, r.lastTxns = now, txns
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// etaString renders catch-up seconds: "0s" caught up, "unknown" without
// progress.
func etaString(secs float64) string {
	if secs < 0 {
		return "unknown"
	}
	return (time.Duration(secs) * time.Second).String()
}
