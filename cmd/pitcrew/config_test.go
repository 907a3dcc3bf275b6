package main

import (
	"fmt"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"os"
	"path/filepath"
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

// Endpoints written as the mysql tools take them: the source from an
// option file that names its unix socket, the target as a DSN.
func TestEndpointsFromOptionFileSocketAndDSN(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	if err := workload.New(srcDB, "shop", 3).Run(t.Context(), 50); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cnf := filepath.Join(dir, "source.cnf")
	se, te := src.Endpoint(), tgt.Endpoint()
	if err := os.WriteFile(cnf, []byte(fmt.Sprintf("[client]\nuser = %s\npassword = %q\nsocket = %s\nport = 1 # nothing listens there: only the socket works\n", se.User, se.Password, src.Socket())), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pitcrew.yaml")
	body := fmt.Sprintf("channel: test\nsource:\n  defaults_file: %s\ntarget:\n  dsn: %q\ndata_dir: %s\nhttp_addr: \"off\"\n",
		cnf, fmt.Sprintf("mysql://%s:%s@%s", te.User, te.Password, te.Addr()), filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI("catchup", "--config", cfg, "--start-from", "beginning")
	if code != 0 {
		t.Fatalf("catchup: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, se.Password) && se.Password != "" {
		t.Error("a password from the option file reached the output")
	}
	var want, got int
	srcDB.QueryRow("SELECT COUNT(*) FROM shop.events").Scan(&want)
	tgtDB.QueryRow("SELECT COUNT(*) FROM shop.events").Scan(&got)
	if want == 0 || got != want {
		t.Fatalf("events: source %d, target %d", want, got)
	}
}
