package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
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

// The sample pitcrew.yaml loads, names every key the config has, and is
// the README's Configuration block (one text, two places).
func TestSampleConfig(t *testing.T) {
	body, err := os.ReadFile("../../pitcrew.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig("../../pitcrew.yaml"); err != nil {
		t.Fatalf("the sample does not load: %v", err)
	}
	fields := map[string]reflect.Type{}
	yamlFields(reflect.TypeOf(fileConfig{}), fields)
	for k := range fields {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).Match(body) {
			t.Errorf("key %q is not in pitcrew.yaml", k)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sample, _ := strings.Cut(string(body), "\nchannel:")
	if !strings.Contains(string(readme), "\nchannel:"+sample) {
		t.Error("pitcrew.yaml and README.md's Configuration block differ: keep them the same")
	}
}
