package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"gopkg.in/yaml.v3"
)

var metricName = regexp.MustCompile(`\bpitcrew_[a-z0-9_]+`)

// deployExprs returns every PromQL expression of the Grafana dashboard and
// the alerting rules, by file.
func deployExprs(t *testing.T) map[string][]string {
	t.Helper()
	root := filepath.Join("..", "..", "deploy")
	out := map[string][]string{}
	b, err := os.ReadFile(filepath.Join(root, "grafana", "pitcrew.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/pitcrew.json: %v", err)
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out["grafana"] = append(out["grafana"], tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			out["grafana"] = append(out["grafana"], q)
		}
	}
	b, err = os.ReadFile(filepath.Join(root, "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yaml: %v", err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %q needs expr, labels.severity and annotations.summary", r.Alert)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alert %q: for %q: %v", r.Alert, r.For, err)
			}
			out["alerts"] = append(out["alerts"], r.Expr)
		}
	}
	for _, want := range []string{"PitcrewChannelStopped", "PitcrewLagHigh", "PitcrewRetentionAtRisk", "PitcrewConflictsParked", "PitcrewRelayNearQuota"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alerts.yaml lacks %s", want)
		}
	}
	return out
}

// exported parses a /metrics scrape into its metric families and types.
func exported(scrape string) map[string]string {
	types := map[string]string{}
	for _, line := range strings.Split(scrape, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

// Every metric the Grafana dashboard and the alerting rules name is one a
// running `pitcrew bidi sync` exports (with a parked conflict, so the
// conflict series exist too): a renamed metric cannot leave a dashboard
// panel empty or an alert silent.
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	exprs := deployExprs(t)
	testenv.Require(t)
	bin := buildBinary(t)
	a := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	b := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	adb, bdb := testenv.MustDB(t, a), testenv.MustDB(t, b)
	for _, db := range []*sql.DB{adb, bdb} {
		testenv.Exec(t, db, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)", "INSERT INTO app.t VALUES (1, 'one')")
	}
	addr := freeAddr(t)
	cfg := writeBidiConfig(t, a.Endpoint(), b.Endpoint(), "conflicts:", "  default: park", "http_addr: "+addr)
	logs := &logBuffer{}
	cmd := exec.Command(bin, "bidi", "sync", "--config", cfg, "--start-from", "now")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	waitListening(t, addr, logs)
	within(t, 30*time.Second, "both channels ready", func() bool { return strings.HasPrefix(get(t, "http://"+addr+"/readyz"), "ok") })
	c, err := bdb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	testenvExecConn(t, c, "SET SESSION sql_log_bin = 0", "UPDATE app.t SET v = 'local-b' WHERE id = 1")
	c.Close()
	testenv.Exec(t, adb, "UPDATE app.t SET v = 'from-a' WHERE id = 1")
	var scrape string
	within(t, 20*time.Second, "the parked conflict in /metrics", func() bool {
		scrape = get(t, "http://"+addr+"/metrics")
		return strings.Contains(scrape, `pitcrew_conflicts_parked{node="b"} 1`)
	})
	types := exported(scrape)
	for file, list := range exprs {
		for _, e := range list {
			for _, name := range metricName.FindAllString(e, -1) {
				base := name
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(name, suf); ok && types[s] == "histogram" {
						base = s
					}
				}
				if _, ok := types[base]; !ok {
					t.Errorf("%s uses %s, which pitcrew does not export (in %q)", file, name, e)
				}
			}
		}
	}
	// The metrics the issue asks for, with their types.
	for name, typ := range map[string]string{
		"pitcrew_build_info": "gauge", "pitcrew_channel_state": "gauge", "pitcrew_apply_duration_seconds": "histogram",
		"pitcrew_last_applied_source_commit_timestamp_seconds": "gauge", "pitcrew_relay_bytes": "gauge",
		"pitcrew_relay_quota_bytes": "gauge", "pitcrew_seconds_behind_source": "gauge", "pitcrew_conflicts_total": "counter",
	} {
		if types[name] != typ {
			t.Errorf("%s: type %q, want %s", name, types[name], typ)
		}
	}
	if !strings.Contains(scrape, `pitcrew_channel_state{channel="a-b",state="streaming"} 1`) {
		t.Errorf("/metrics does not say a-b is streaming")
	}
}
