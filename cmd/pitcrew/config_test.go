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

	"github.com/pitcrew/pitcrew/syncer"
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

// A config file that says nothing is the engine's defaults, whatever
// way it says nothing.
func TestConfigEmptyIsDefault(t *testing.T) {
	t.Setenv(envSourcePassword, "")
	t.Setenv(envTargetPassword, "")
	for _, body := range []string{"", "# nothing\n", "{}\n"} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		fc, err := loadConfig(path)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if got, want := fc.syncerConfig(), syncer.Default(); !reflect.DeepEqual(got, want) {
			t.Errorf("%q gives\n%+v\nwant syncer.Default()\n%+v", body, got, want)
		}
	}
}

// pitcrew.yaml shows every key with its default: what it says is what the
// engine would do with the key left out.
func TestSampleIsDefault(t *testing.T) {
	t.Setenv(envSourcePassword, "")
	t.Setenv(envTargetPassword, "")
	fc, err := loadConfig("../../pitcrew.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, want := fc.syncerConfig(), syncer.Default()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"channel", got.Channel, want.Channel},
		{"data_dir", filepath.Clean(got.DataDir), want.DataDir},
		{"progress_schema", got.ProgressSchema, want.ProgressSchema},
		{"progress_table", got.ProgressTable, want.ProgressTable},
		{"source", got.Source.Addr() + " " + got.Source.User, want.Source.Addr() + " " + want.Source.User},
		{"target", got.Target.Addr() + " " + got.Target.User, want.Target.Addr() + " " + want.Target.User},
		{"source.tls.mode", got.Source.TLS.Requires(), want.Source.TLS.Requires()},
		{"stream (server_id, start_from, start_gtid, retention_margin)", got.StreamConfig, want.StreamConfig},
		{"relay (relay, relay_quota_bytes)", got.RelayConfig, want.RelayConfig},
		{"apply (batch_txns, batch_rows, compact, lanes, parallel_triggers, queue_bytes)", got.ApplyConfig, want.ApplyConfig},
		{"route", got.Route.Validate() == nil && len(got.Route.Include)+len(got.Route.Exclude)+len(got.Route.RenameDatabases)+len(got.Route.RenameTables) == 0, true},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("pitcrew.yaml's %s is %+v; the default is %+v", f.name, f.got, f.want)
		}
	}
}
