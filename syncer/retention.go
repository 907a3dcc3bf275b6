package syncer

import (
	"fmt"
	"math"
	"time"
)

// retentionInput is what the guard weighs: how long the source keeps
// binlogs, how far behind the channel is, how fast it applies, and how old
// the oldest binlog it still needs is (approximated by the commit time of
// the last applied transaction: the next one it needs was committed after).
type retentionInput struct {
	RetentionHours float64       // < 0: purged as soon as possible (RDS NULL); 0: never by age
	Behind         int64         // transactions
	Rate           float64       // applied transactions per second (recent)
	OldestAge      time.Duration // age of the oldest binlog still needed
	Margin         time.Duration // warn below this
}

// retentionVerdict is the guard's estimate.
type retentionVerdict struct {
	AtRisk    bool
	ExpiresIn time.Duration // until the oldest needed binlog may be purged; -1: never
	CatchUpIn time.Duration // until the backlog is applied; -1: unknown (no progress)
	Message   string
}

// assessRetention estimates whether the channel will catch up before the
// source purges a binlog it still needs. Pure: the syncer feeds it numbers.
func assessRetention(in retentionInput) retentionVerdict {
	v := retentionVerdict{ExpiresIn: -1, CatchUpIn: 0}
	if in.Behind > 0 {
		v.CatchUpIn = -1
		if in.Rate > 0 {
			v.CatchUpIn = time.Duration(float64(in.Behind) / in.Rate * float64(time.Second))
		}
	}
	switch {
	case in.RetentionHours == 0:
		return v // never purged by age
	case in.RetentionHours < 0:
		v.ExpiresIn = 0
	default:
		v.ExpiresIn = max(0, time.Duration(in.RetentionHours*float64(time.Hour))-in.OldestAge)
	}
	if in.Behind == 0 {
		return v
	}
	margin := time.Duration(math.MaxInt64)
	if v.CatchUpIn >= 0 {
		margin = v.ExpiresIn - v.CatchUpIn
	}
	if v.CatchUpIn < 0 || margin < in.Margin {
		v.AtRisk = true
		catchUp := "unknown (no progress yet)"
		if v.CatchUpIn >= 0 {
			catchUp = v.CatchUpIn.Round(time.Second).String()
		}
		expires := "any moment (retention: purge as soon as possible)"
		if in.RetentionHours > 0 {
			expires = "in " + v.ExpiresIn.Round(time.Second).String()
		}
		v.Message = fmt.Sprintf("binlog retention at risk: %d transactions behind, catch-up in %s, but the oldest binlog still needed may be purged %s; raise the source's retention (RDS: CALL mysql.rds_set_configuration('binlog retention hours', 168)) or speed up apply",
			in.Behind, catchUp, expires)
	}
	return v
}
