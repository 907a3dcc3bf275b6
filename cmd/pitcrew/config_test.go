package main

import (
	"os"
	"testing"
	"time"
)

func TestDurationsTakeSeconds(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("channel: c\nretention_margin: 90\nlog_progress: 0.5\nhealth_max_lag: 2m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if fc.RetentionWarn != 90*time.Second || *fc.LogProgress != 500*time.Millisecond || *fc.HealthMaxLag != 2*time.Minute {
		t.Fatalf("durations read as %v, %v, %v", fc.RetentionWarn, *fc.LogProgress, *fc.HealthMaxLag)
	}
}
