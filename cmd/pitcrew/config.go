package main

import (
	"errors"
	"fmt"
	"github.com/pitcrew/pitcrew/checkpoint"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/syncer"
	"gopkg.in/yaml.v3"
)

// fileConfig is pitcrew.yaml. Every field is documented in README.md
// ("Configuration"); keep the two in step. A key left out takes the
// engine's default (syncer.Default; pitcrew.yaml shows each one, and
// TestSampleIsDefault holds it to them); the defaults of the keys only this
// layer reads are noted here.
type fileConfig struct {
	Channel        string         `yaml:"channel"`
	Source         conn.Endpoint  `yaml:"source"` // conn.Endpoint.Default: host 127.0.0.1, port 3306, user root
	Target         conn.Endpoint  `yaml:"target"` // same defaults
	ServerID       uint32         `yaml:"server_id"`
	DataDir        string         `yaml:"data_dir"`
	HTTPAddr       string         `yaml:"http_addr"` // default 127.0.0.1:9307; "off" disables
	ProgressSchema string         `yaml:"progress_schema"`
	ProgressTable  string         `yaml:"progress_table"`
	StartFrom      string         `yaml:"start_from"` // first start only
	StartGTID      string         `yaml:"start_gtid"` // first start only
	BatchTxns      int            `yaml:"batch_txns"`
	BatchRows      int            `yaml:"batch_rows"`
	Compact        *bool          `yaml:"compact"` // absent: true
	Lanes          int            `yaml:"lanes"`   // 0: syncer.DefaultLanes (half the CPUs, 1 to 8)
	ParallelTrig   bool           `yaml:"parallel_triggers"`
	QueueBytes     int64          `yaml:"queue_bytes"`
	RetentionWarn  time.Duration  `yaml:"retention_margin"`
	Relay          *bool          `yaml:"relay"` // absent: true
	RelayQuota     int64          `yaml:"relay_quota_bytes"`
	LogLevel       string         `yaml:"log_level"`         // debug|info|warn|error, default info
	LogFormat      string         `yaml:"log_format"`        // text|json, default text
	LogProgress    *time.Duration `yaml:"log_progress"`      // sync: a progress line this often; default 30s, 0 off
	HealthMaxLag   *time.Duration `yaml:"health_max_lag"`    // /healthz unhealthy beyond this lag; default 5m, 0 off
	ConsoleToken   string         `yaml:"console_token"`     // or PITCREW_CONSOLE_TOKEN; needed beyond loopback and for actions
	ConsoleRead    bool           `yaml:"console_read_open"` // let anyone who reaches http_addr read the console without the token

	// Route filters and renames databases and tables.
	Route route.Rules `yaml:"route"`

	// Bidirectional mode (`pitcrew bidi ...`): nodes instead of source and
	// target, conflict policies, and per-channel first-start options.
	Nodes     []nodeConfig             `yaml:"nodes"`
	Conflicts *conflict.Rules          `yaml:"conflicts"`
	Channels  map[string]channelConfig `yaml:"channels"`
}

// nodeConfig is one node of a bidirectional set.
type nodeConfig struct {
	Name          string `yaml:"name"`
	conn.Endpoint `yaml:",inline"`
}

// channelConfig overrides the first-start options for one channel
// ("a-b" is from node a to node b).
type channelConfig struct {
	StartFrom string `yaml:"start_from"`
	StartGTID string `yaml:"start_gtid"`
}

const defaultHTTPAddr = "127.0.0.1:9307"

// Environment variables that override the file (so passwords need not be
// written down).
const (
	envSourcePassword = "PITCREW_SOURCE_PASSWORD"
	envTargetPassword = "PITCREW_TARGET_PASSWORD"
	envConsoleToken   = "PITCREW_CONSOLE_TOKEN"
)

// loadConfig reads path; unknown keys are an error naming the key and line.
func loadConfig(path string) (fileConfig, error) {
	var fc fileConfig
	err := loadYAML(path, "config", &fc, "--config FILE", "README.md, Configuration")
	return fc, err
}

// loadYAML decodes a YAML file strictly into out: unknown keys, at any
// depth, are an error naming the key and its line. what names the file in
// errors; hint says how to pass it; doc where every key is documented.
func loadYAML(path, what string, out any, hint, doc string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s file %s not found: pass %s (%s shows every key)", what, path, hint, doc)
		}
		return fmt.Errorf("reading %s: %w", what, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fmt.Errorf("%s %s is not valid YAML: %s", what, path, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if len(root.Content) > 0 {
		if err := checkKeys(root.Content[0], reflect.TypeOf(out).Elem(), ""); err != nil {
			return fmt.Errorf("%s %s: %w (%s lists every key)", what, path, err, doc)
		}
	}
	if len(root.Content) == 0 {
		return nil
	}
	// Decoded from the checked tree: checkKeys refused unknown keys at any
	// depth and made plain numbers of seconds durations.
	if err := root.Decode(out); err != nil {
		return fmt.Errorf("%s %s: %s", what, path, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if err := resolveEndpoints(reflect.ValueOf(out), ""); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// checkKeys walks a mapping node against a struct's yaml tags.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string) error {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("line %d: %s must be a mapping of keys to values", n.Line, strings.TrimSuffix(prefix, ".")+"(top level)")
	}
	fields := map[string]reflect.Type{}
	yamlFields(t, fields)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("unknown key %q at line %d: remove it or fix its spelling", prefix+k.Value, k.Line)
		}
		if err := checkValue(v, ft, prefix+k.Value); err != nil {
			return err
		}
	}
	return nil
}

// resolveEndpoints fills every endpoint in v (at any depth) from its dsn
// and defaults_file; name is the key path for errors.
func resolveEndpoints(v reflect.Value, name string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return resolveEndpoints(v.Elem(), name)
		}
	case reflect.Struct:
		if e, ok := v.Addr().Interface().(*conn.Endpoint); ok {
			return e.Resolve(strings.TrimSuffix(name, "."))
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if key == "-" {
				continue
			}
			prefix := name
			if key != "" {
				prefix += key + "."
			}
			if err := resolveEndpoints(v.Field(i), prefix); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := resolveEndpoints(v.Index(i), fmt.Sprintf("%s[%d].", strings.TrimSuffix(name, "."), i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			if err := resolveEndpoints(e, fmt.Sprintf("%s%v.", name, k.Interface())); err != nil {
				return err
			}
			v.SetMapIndex(k, e)
		}
	}
	return nil
}

// checkDuration accepts a duration as Go writes it (90s, 5m, 1h30m) or a
// plain number of seconds (5, 0.5), rewriting the latter in place; anything
// else is refused naming the key and the units.
func checkDuration(v *yaml.Node, name string) error {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return nil
	}
	if secs, err := strconv.ParseFloat(v.Value, 64); err == nil {
		v.Value, v.Tag, v.Style = time.Duration(secs*float64(time.Second)).String(), "!!str", 0
		return nil
	}
	if _, err := time.ParseDuration(v.Value); err != nil {
		return fmt.Errorf("line %d: %s: %q is not a duration: write a number of seconds (30) or a number with a unit (500ms, 90s, 5m, 1h30m; units ns, us, ms, s, m, h)", v.Line, name, v.Value)
	}
	return nil
}

// yamlFields collects a struct's keys, with inline structs' keys.
func yamlFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if strings.Contains(f.Tag.Get("yaml"), ",inline") {
			yamlFields(f.Type, fields)
			continue
		}
		if tag[0] != "" && tag[0] != "-" {
			fields[tag[0]] = f.Type
		}
	}
}

// checkValue descends into structs, lists of structs and maps of structs.
func checkValue(v *yaml.Node, t reflect.Type, name string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(time.Duration(0)) {
		return checkDuration(v, name)
	}
	switch t.Kind() {
	case reflect.Struct:
		return checkKeys(v, t, name+".")
	case reflect.Slice:
		if v.Kind == yaml.SequenceNode {
			for i, item := range v.Content {
				if err := checkValue(item, t.Elem(), fmt.Sprintf("%s[%d]", name, i)); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if v.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(v.Content); i += 2 {
				if err := checkValue(v.Content[i+1], t.Elem(), name+"."+v.Content[i].Value); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// stoppedChannel loads a channel's config and opens its data dir, which
// only a stopped channel lets go of; why says what a running one would
// get wrong.
func stoppedChannel(path, why string) (syncer.Config, *checkpoint.Store, error) {
	fc, err := loadConfig(path)
	if err != nil {
		return syncer.Config{}, nil, err
	}
	cfg := fc.syncerConfig()
	store, err := checkpoint.Open(cfg.DataDir)
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: stop pitcrew for this channel first (%s)", err, why)
	}
	return cfg, store, nil
}

// syncerConfig applies environment overrides and builds the engine config,
// with the engine's defaults (syncer.Default) for the keys left out.
func (fc fileConfig) syncerConfig() syncer.Config {
	if p, ok := os.LookupEnv(envSourcePassword); ok {
		fc.Source.Password = p
	}
	if p, ok := os.LookupEnv(envTargetPassword); ok {
		fc.Target.Password = p
	}
	cfg := syncer.Config{
		Channel: fc.Channel, Source: fc.Source, Target: fc.Target, DataDir: fc.DataDir,
		ProgressSchema: fc.ProgressSchema, ProgressTable: fc.ProgressTable,
		StreamConfig: syncer.StreamConfig{
			ServerID: fc.ServerID, StartFrom: fc.StartFrom, StartGTID: fc.StartGTID,
			RetentionMargin: fc.RetentionWarn,
		},
		RelayConfig: syncer.RelayConfig{
			NoRelay:    fc.Relay != nil && !*fc.Relay,
			RelayQuota: fc.RelayQuota,
		},
		ApplyConfig: syncer.ApplyConfig{
			BatchTxns: fc.BatchTxns, BatchRows: fc.BatchRows,
			Lanes:            fc.Lanes,
			ParallelTriggers: fc.ParallelTrig,
			NoCompact:        fc.Compact != nil && !*fc.Compact,
			QueueBytes:       fc.QueueBytes,
		},
		Route: fc.Route,
	}
	cfg.Default()
	return cfg
}

func (fc fileConfig) httpAddr() string {
	switch fc.HTTPAddr {
	case "":
		return defaultHTTPAddr
	case "off":
		return ""
	}
	return fc.HTTPAddr
}

// logProgress is how often `sync` logs its progress.
func (fc fileConfig) logProgress() time.Duration {
	if fc.LogProgress == nil {
		return 30 * time.Second
	}
	return *fc.LogProgress
}

// healthMaxLag is the lag beyond which /healthz says unhealthy.
func (fc fileConfig) healthMaxLag() time.Duration {
	if fc.HealthMaxLag == nil {
		return 5 * time.Minute
	}
	return *fc.HealthMaxLag
}

// consoleToken is the console's token; the environment wins.
func (fc fileConfig) consoleToken() string {
	if t, ok := os.LookupEnv(envConsoleToken); ok {
		return t
	}
	return fc.ConsoleToken
}
