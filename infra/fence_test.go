package infra

import (
	"bytes"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/infra/awstest"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"gopkg.in/yaml.v3"
)

// A plan is refused before anything runs when its fence cannot work where
// it runs: SET GLOBAL read_only on RDS, a parameter group without AWS.
func TestPlanFenceChoice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(p *Plan)
		want  string // "" = valid
		empty bool
	}{
		{"read_only on RDS", func(p *Plan) { p.Options.Fence = FenceReadOnly }, "which RDS refuses (no SUPER): set options.fence: parameter_group", false},
		{"parameter_group on RDS", func(p *Plan) { p.Options.Fence = FenceParameterGroup }, "", false},
		{"lock_users without users", func(p *Plan) { p.Options.Fence, p.Options.AppUsers = FenceLockUsers, nil }, "needs options.app_users", false},
		{"parameter_group without AWS", func(p *Plan) {
			p.Options.Fence = FenceParameterGroup
			p.Source.Account, p.Target.Account, p.DNS, p.Source.VPC, p.Target.VPC = "", "", nil, nil, nil
			p.Source.Database.Host, p.Target.Database.Host = "a", "b"
		}, "needs source.account and target.account", false},
		{"unknown order", func(p *Plan) { p.Options.CutoverOrder = "app-first" }, `options.cutover_order "app-first": use fence-first or both-writable`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := examplePlan(t)
			if tc.name == "parameter_group on RDS" { // also the default of a plan with accounts
				p.Options.Fence = ""
				p.Default()
				if p.Options.Fence != FenceParameterGroup {
					t.Errorf("default fence of an RDS plan: %s", p.Options.Fence)
				}
			}
			tc.edit(p)
			err := p.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// examplePlan reads examples/migration.yaml as the command does (unknown
// keys refused), with its defaults.
func examplePlan(t *testing.T) *Plan {
	t.Helper()
	b, err := os.ReadFile("../examples/migration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p Plan
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	p.Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	return &p
}

// exampleModel is the example's two accounts: shop-db on its custom group,
// the target's group, the zone with a plain record on the old ALB.
func exampleModel(t *testing.T, p *Plan) *awstest.Model {
	m := newModel(t)
	src := m.Account(p.Source.Account, p.Source.Region)
	delete(src.Instances, "shop-db")
	src.Instances[p.Source.Instance] = &awstest.Instance{ID: p.Source.Instance, Status: "available", Engine: "mariadb", ParameterGroup: p.Source.ParameterGroup,
		Host: "127.0.0.1", Port: 3306, BackupRetention: 7, KMSKey: "arn:aws:kms:eu-west-1:" + srcAcct + ":key/aws-rds-" + srcAcct}
	src.Params[p.Source.ParameterGroup] = map[string]string{"binlog_format": "ROW"}
	src.Records = map[string]map[string]*awstest.Record{p.DNS.HostedZoneID: {
		p.DNS.Record + " CNAME ": {Name: p.DNS.Record, Type: "CNAME", Value: p.DNS.Old.DNSName, TTL: 1},
	}}
	m.Account(p.Target.Account, p.Target.Region).Params[p.Target.ParameterGroup] = map[string]string{"binlog_format": "ROW"}
	return m
}

// rdsLike starts a MariaDB that behaves as RDS where the fence is
// concerned: the mysql.rds_* procedures, and a master user without SUPER
// (SET GLOBAL read_only, sql_log_bin and KILL of others refused).
func rdsLike(t *testing.T, id uint32, certs *testenv.Certs) (*testenv.Server, *sql.DB) {
	s := testenv.New(t, testenv.Options{ServerID: id, TLS: certs, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=" + itoa64(int64(id))}})
	db := testenv.MustDB(t, s)
	fakeRDSProcedures(t, db)
	rdsUser(t, db, "pitcrew", "pitcrew-pw")
	return s, db
}

// The shipped example, as it is, moves shop-db between the accounts of the
// model with RDS-like servers behind both instances: its fence
// (lock_users) locks the application's accounts on the old database only,
// ends their sessions through mysql.rds_kill, and the application, moved
// by the hook once the target holds every acknowledged write, writes on
// the new database (not locked out: the fence statements never crossed).
// What the example cannot name here (ports, the test CA, timings, an
// empty target instead of a restored one) is set by the test.
func TestMigrateExampleOnRDS(t *testing.T) {
	certs := testenv.NewTestCerts(t)
	src, srcDB := rdsLike(t, 1, certs)
	tgt, tgtDB := rdsLike(t, 2, certs)
	appSchema(t, srcDB, tgtDB)

	p := examplePlan(t)
	if p.Options.Fence != FenceLockUsers || p.Options.CutoverOrder != OrderFenceFirst || p.Source.Database.TLS.Mode != conn.ModeVerifyIdentity {
		t.Fatalf("the example's fence/order/tls changed: %s %s %s", p.Options.Fence, p.Options.CutoverOrder, p.Source.Database.TLS.Mode)
	}
	m := exampleModel(t, p)
	m.Account(p.Source.Account, "").Requests = [][]float64{{5}, {}}
	dir := t.TempDir()
	p.DataDir = t.TempDir()
	p.Source.Engine, p.Target.Engine = "mariadb", "mariadb"
	p.Source.Profile = "" // the model's credentials, no shared config
	for _, s := range []struct {
		side *Side
		port int
	}{{&p.Source, src.Port}, {&p.Target, tgt.Port}} {
		s.side.Database.Port, s.side.Database.Password = s.port, "pitcrew-pw"
		s.side.Database.TLS = certs.ClientTLS()
	}
	p.DNS.StepWait = 20 * time.Millisecond
	o := &p.Options
	o.StartFrom, o.Hook = "beginning", hookScript(t, dir)
	o.PollInterval, o.Timeout, o.QuietPeriod, o.RollbackWindow = 5*time.Millisecond, 90*time.Second, 300*time.Millisecond, 100*time.Millisecond
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}

	// Take-down waits until the old side has no client sessions but
	// pitcrew's: the test's own pool must not keep one.
	srcDB.SetMaxIdleConns(0)
	w := startWriterAs(t, "shop_app", dir, src.Port, tgt.Port)
	out := &syncBuffer{}
	applyWhileWriting(t, runner(p, m, out), m, w, srcDB, tgtDB, out)
	for _, e := range w.errors {
		if strings.Contains(e.Error(), "on target") {
			t.Errorf("the application failed on the new database: %v", e)
		}
	}
	if !locked(t, srcDB, "shop_app") || locked(t, tgtDB, "shop_app") {
		t.Errorf("shop_app locked on the old database %v, on the new %v; want locked only on the old", locked(t, srcDB, "shop_app"), locked(t, tgtDB, "shop_app"))
	}
	if locked(t, srcDB, "app") {
		t.Error("the fence locked a user not in app_users")
	}
	var ro int
	if err := srcDB.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
		t.Errorf("source read_only = %d (%v); lock_users must not need it", ro, err)
	}
	var hours sql.NullString
	if err := tgtDB.QueryRow("SELECT value FROM mysql.rds_configuration WHERE name = 'binlog retention hours'").Scan(&hours); err != nil || hours.String != "72" {
		t.Errorf("target binlog retention hours = %v (%v), want 72 (set before the cut-over)", hours, err)
	}
	st, err := runner(p, m, &syncBuffer{}).Status()
	if err != nil {
		t.Fatal(err)
	}
	ct := ReadCutoverTimes(st[stepIndex("cutover")].Outputs)
	stall, ok := ct.Stall()
	if !ok || ct.Fenced.After(ct.Move) || ct.Drained.After(ct.Move) || ct.Conflicts != "0" {
		t.Errorf("cut-over sub-steps %+v: want fence, drain, then release, no conflicts", ct)
	}
	t.Logf("cut-over: %s (stall %s)", ct, stall)
	assertNoSecrets(t, p.DataDir, out.String())
}

func locked(t *testing.T, db *sql.DB, user string) bool {
	t.Helper()
	var name, create string
	if err := db.QueryRow("SHOW CREATE USER '" + user + "'@'%'").Scan(&create); err != nil {
		if err := db.QueryRow("SHOW CREATE USER '"+user+"'@'%'").Scan(&name, &create); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Contains(create, "ACCOUNT LOCK")
}

// On an RDS-like server the guardrails refuse a fence that would not
// work, before anything moves: SET GLOBAL read_only (refused there), and
// lock_users naming a user with no account; the source is left as it was.
func TestMigrateFenceGuardrails(t *testing.T) {
	src, srcDB := rdsLike(t, 1, nil)
	tgt, tgtDB := rdsLike(t, 2, nil)
	appSchema(t, srcDB, tgtDB)
	for _, tc := range []struct {
		name  string
		fence string
		users []string
		want  []string
	}{
		{"read_only on RDS", FenceReadOnly, nil, []string{"the source is RDS (procedures mysql.rds_kill", "refuses SET GLOBAL read_only", "parameter_group", "lock_users", "the target is RDS"}},
		{"lock_users, an unknown user", FenceLockUsers, []string{"app", "shop_ap"}, []string{"options.app_users shop_ap has no account on the source", "has no account on the target"}},
		{"lock_users, pitcrew itself", FenceLockUsers, []string{"pitcrew"}, []string{"the fence would lock pitcrew out"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{
				Name: "guarded", DataDir: t.TempDir(),
				Source: Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: src.Port, User: "pitcrew", Password: "pitcrew-pw"}},
				Target: Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: tgt.Port, User: "pitcrew", Password: "pitcrew-pw"}},
				Options: Options{StartFrom: "beginning", Hook: "true", Fence: tc.fence, AppUsers: tc.users, PollInterval: 5 * time.Millisecond, Timeout: 30 * time.Second,
					BinlogRetentionHours: 24},
			}
			p.Default()
			testenv.Exec(t, srcDB, "CALL mysql.rds_set_configuration('binlog retention hours', 24)")
			testenv.Exec(t, tgtDB, "CALL mysql.rds_set_configuration('binlog retention hours', 24)")
			out := &syncBuffer{}
			err := (&Runner{Plan: p, Out: out}).Apply(t.Context(), "cutover", false)
			if err == nil {
				t.Fatalf("cut-over ran\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err lacks %q:\n%v", w, err)
				}
			}
			if locked(t, srcDB, "app") {
				t.Error("a refused cut-over locked the application's account")
			}
			st, err := (&Runner{Plan: p}).Status()
			if err != nil {
				t.Fatal(err)
			}
			if cut := st[stepIndex("cutover")]; cut.State != checkpoint.StepFailed || cut.Outputs["reverse_start"] != "" || cut.Outputs["at_fence"] != "" {
				t.Errorf("cutover: %s %v; want failed before the reverse channel and the fence", cut.State, cut.Outputs)
			}
		})
	}
	t.Run("target purges its binlogs", func(t *testing.T) {
		testenv.Exec(t, tgtDB, "CALL mysql.rds_set_configuration('binlog retention hours', NULL)")
		p := &Plan{
			Name: "purging", DataDir: t.TempDir(),
			Source:  Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: src.Port, User: "pitcrew", Password: "pitcrew-pw"}},
			Target:  Side{Database: conn.Endpoint{Host: "127.0.0.1", Port: tgt.Port, User: "pitcrew", Password: "pitcrew-pw"}},
			Options: Options{StartFrom: "beginning", Hook: "true", Fence: FenceLockUsers, AppUsers: []string{"app"}, PollInterval: 5 * time.Millisecond, Timeout: 30 * time.Second},
		}
		p.Default()
		err := (&Runner{Plan: p, Out: &syncBuffer{}}).Apply(t.Context(), "cutover", false)
		if err == nil || !strings.Contains(err.Error(), "'binlog retention hours' is NULL") || !strings.Contains(err.Error(), "CALL mysql.rds_set_configuration('binlog retention hours', 24)") {
			t.Errorf("err = %v, want the target's retention refused with the call that fixes it", err)
		}
	})
}

// The journal's sub-steps read back as migrate status prints them: the
// application's stall runs from the fence to its release (fence-first);
// with both-writable it moved before the fence, stalled not at all, and
// both sides took writes until the fence was up.
func TestCutoverTimes(t *testing.T) {
	at := func(ms int) string {
		return time.Unix(100, int64(ms)*int64(time.Millisecond)).UTC().Format(time.RFC3339Nano)
	}
	first := ReadCutoverTimes(map[string]string{"at_guardrails": at(0), "at_fence": at(100), "source_fenced": at(101), "at_drained": at(131),
		"at_move": at(131), "app_moved": at(140), "lag_at_fence": "12 txns, 3ms", "conflicts": "0"})
	if s, ok := first.Stall(); !ok || s != 40*time.Millisecond {
		t.Errorf("fence-first stall %s %v, want 40ms", s, ok)
	}
	if b, _ := first.BothWritable(); b != 0 {
		t.Errorf("fence-first both writable %s", b)
	}
	want := "guardrails 100.0ms, fence 1.0ms (forward 12 txns, 3ms behind), drain 30.0ms, release 9.0ms, application stalled 40.0ms, both writable 0.0ms, conflicts 0"
	if got := first.String(); got != want {
		t.Errorf("status line\n got %s\nwant %s", got, want)
	}
	both := ReadCutoverTimes(map[string]string{"at_guardrails": at(0), "at_move": at(50), "app_moved": at(60), "at_fence": at(60), "source_fenced": at(61), "at_drained": at(70), "conflicts": "3"})
	if s, _ := both.Stall(); s != 0 {
		t.Errorf("both-writable stall %s, want 0", s)
	}
	if b, _ := both.BothWritable(); b != 11*time.Millisecond {
		t.Errorf("both-writable window %s, want 11ms", b)
	}
}
