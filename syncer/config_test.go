package syncer

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// The defaults, written out: a change to one is a change of behaviour that
// pitcrew.yaml and README.md must show too.
func TestConfigDefault(t *testing.T) {
	c := Default()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Channel", c.Channel, "main"},
		{"Source", c.Source, conn.Endpoint{Host: "127.0.0.1", Port: 3306, User: "root"}},
		{"Target", c.Target, conn.Endpoint{Host: "127.0.0.1", Port: 3306, User: "root"}},
		{"DataDir", c.DataDir, "pitcrew-data"},
		{"ProgressSchema", c.ProgressSchema, "_pitcrew"},
		{"ProgressTable", c.ProgressTable, "progress"},
		{"ServerID", c.ServerID, uint32(4207)},
		{"StartFrom", c.StartFrom, StartNone},
		{"StartGTID", c.StartGTID, ""},
		{"Heartbeat", c.Heartbeat, time.Duration(0)},           // the binlog reader's
		{"ConnectTimeout", c.ConnectTimeout, time.Duration(0)}, // conn.ConnectTimeout
		{"RetentionMargin", c.RetentionMargin, time.Hour},
		{"NoRelay", c.NoRelay, false},
		{"RelayQuota", c.RelayQuota, int64(4 << 30)},
		{"PartBytes", c.PartBytes, 4 << 20},
		{"BatchTxns", c.BatchTxns, 1000},
		{"BatchRows", c.BatchRows, 20000},
		{"Lanes", c.Lanes, DefaultLanes()},
		{"ParallelTriggers", c.ParallelTriggers, false},
		{"LazyBytes", c.LazyBytes, 16 << 20},
		{"NoCompact", c.NoCompact, false},
		{"QueueBytes", c.QueueBytes, int64(64 << 20)},
		{"Echo", c.Echo, []string(nil)},
		{"Conflicts", c.Conflicts, (*conflict.Rules)(nil)},
		{"ProgressEvery", c.ProgressEvery, time.Duration(0)},
		{"RestartBackoffMax", c.RestartBackoffMax, 30 * time.Second},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if c.Logger == nil {
		t.Error("no default logger")
	}
	if n := DefaultLanes(); n < 1 || n > 8 {
		t.Errorf("DefaultLanes = %d, want 1 to 8", n)
	}
	if err := c.Validate(); err == nil || err.Error() != "source and target are the same server (127.0.0.1:3306): point target at another server" {
		t.Errorf("the defaults' one refusal: %v", err)
	}

	// Default fills only what is zero.
	set := Config{Channel: "c", DataDir: "d", StreamConfig: StreamConfig{ServerID: 9},
		ApplyConfig: ApplyConfig{Lanes: 3, BatchRows: 5}, RelayConfig: RelayConfig{RelayQuota: 7}}
	set.Default()
	if set.Channel != "c" || set.DataDir != "d" || set.ServerID != 9 || set.Lanes != 3 || set.BatchRows != 5 || set.RelayQuota != 7 || set.BatchTxns != 1000 {
		t.Errorf("Default overwrote a value: %+v", set)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func(mod func(*Config)) Config {
		c := Default()
		c.Target.Port = 3307
		mod(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"the defaults, two servers", func(*Config) {}, ""},
		{"channel name", func(c *Config) { c.Channel = "a b" }, `channel name "a b" is invalid: use 1-64 letters, digits, '_' or '-'`},
		{"source port", func(c *Config) { c.Source.Port = 70000 }, "source.port 70000 is out of range: use 1-65535"},
		{"target host", func(c *Config) { c.Target.Host = "" }, "target.host is empty: set the server's host name or address"},
		{"one server", func(c *Config) { c.Target.Port = 3306 }, "source and target are the same server (127.0.0.1:3306): point target at another server"},
		{"start gtid with start from", func(c *Config) { c.StartFrom, c.StartGTID = StartNow, "0-1-1" }, "--start-gtid given together with --start-from now: use one of them"},
		{"start from unknown", func(c *Config) { c.StartFrom = "yesterday" }, `start_from "yesterday" is unknown: use target, now, beginning, or give --start-gtid`},
		{"start gtid", func(c *Config) { c.StartFrom, c.StartGTID = StartGTID, "0-1-1" }, ""},
		{"lanes zero", func(c *Config) { c.Lanes = 0 }, "lanes 0 is out of range: use 1 (serial) to 64"},
		{"lanes 65", func(c *Config) { c.Lanes = 65 }, "lanes 65 is out of range: use 1 (serial) to 64"},
		{"batch rows", func(c *Config) { c.BatchRows = 0 }, "batch_txns and batch_rows must be at least 1"},
		{"batch txns", func(c *Config) { c.BatchTxns = -1 }, "batch_txns and batch_rows must be at least 1"},
		{"start before lanes", func(c *Config) { c.StartFrom, c.Lanes = "x", 0 }, `start_from "x" is unknown: use target, now, beginning, or give --start-gtid`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid(tc.mod)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// MeshConfigs: what `pitcrew bidi` and infra's migration channels share.
func TestConfigMesh(t *testing.T) {
	chans, err := conflict.Mesh([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := conn.Endpoint{Host: "a", Port: 1}, conn.Endpoint{Host: "b", Port: 2}
	base := Default()
	base.DataDir, base.ServerID, base.Lanes = "d", 100, 3
	got := MeshConfigs(base, map[string]conn.Endpoint{"a": a, "b": b}, chans)
	if len(got) != 2 {
		t.Fatalf("%d configs", len(got))
	}
	for i, want := range []struct {
		name     string
		src, tgt conn.Endpoint
	}{{"a-b", a, b}, {"b-a", b, a}} {
		c := got[i]
		if c.Channel != want.name || c.Source != want.src || c.Target != want.tgt || c.ServerID != 100+uint32(i) ||
			c.DataDir != filepath.Join("d", want.name) || !reflect.DeepEqual(c.Echo, chans[i].Echo) || c.Lanes != 3 {
			t.Errorf("channel %d: %+v", i, c)
		}
		if c.Conflicts == nil || c.Conflicts.Default != conflict.SourceWins {
			t.Errorf("channel %d: conflicts %+v, want source-wins", i, c.Conflicts)
		}
	}
	base.Conflicts = &conflict.Rules{Default: conflict.TargetWins}
	if got := MeshConfigs(base, nil, chans); got[1].Conflicts != base.Conflicts {
		t.Errorf("the base's rules were not kept: %+v", got[1].Conflicts)
	}
}
