package syncer

import (
	"testing"
	"time"
)

func TestAssessRetention(t *testing.T) {
	h := time.Hour
	cases := []struct {
		name   string
		in     retentionInput
		atRisk bool
	}{
		{"never purged", retentionInput{RetentionHours: 0, Behind: 1e6, Rate: 1, Margin: h}, false},
		{"caught up", retentionInput{RetentionHours: -1, Behind: 0, Margin: h}, false},
		{"RDS NULL with a backlog", retentionInput{RetentionHours: -1, Behind: 10, Rate: 1000, Margin: h}, true},
		{"plenty of time", retentionInput{RetentionHours: 168, Behind: 3600, Rate: 100, OldestAge: h, Margin: h}, false},
		{"catch-up outlasts retention", retentionInput{RetentionHours: 24, Behind: 1e6, Rate: 10, OldestAge: 20 * h, Margin: h}, true},
		{"inside the margin", retentionInput{RetentionHours: 2, Behind: 3600, Rate: 1, OldestAge: 0, Margin: 90 * time.Minute}, true},
		{"no progress yet", retentionInput{RetentionHours: 168, Behind: 5, Rate: 0, Margin: h}, true},
	}
	for _, c := range cases {
		v := assessRetention(c.in)
		if v.AtRisk != c.atRisk {
			t.Errorf("%s: at risk %v (%+v), want %v", c.name, v.AtRisk, v, c.atRisk)
		}
		if v.AtRisk && v.Message == "" {
			t.Errorf("%s: at risk without a message", c.name)
		}
	}
	v := assessRetention(retentionInput{RetentionHours: 24, Behind: 3600, Rate: 1, OldestAge: 20 * h, Margin: h})
	if v.ExpiresIn != 4*h || v.CatchUpIn != h {
		t.Errorf("estimates: %+v", v)
	}
}
