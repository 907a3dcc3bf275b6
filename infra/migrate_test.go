package infra

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/infra/awstest"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The story, end to end: shop-db moves from one account to another while
// the application writes. AWS is the in-memory model behind real SDK
// clients; both databases are real MariaDB servers (the modelled
// instances' endpoints point at them). Every write is on both databases
// exactly once, the old side's resources are gone, and the requests match
// the golden file.
func TestMigrateAcrossAccounts(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	fakeRDSProcedures(t, srcDB)
	fakeRDSProcedures(t, tgtDB) // a restored RDS instance has them too
	appSchema(t, srcDB, tgtDB)

	m := newModel(t)
	m.Account(srcAcct, "").Requests = [][]float64{{12, 3}, {1}} // traffic drains, then no datapoints
	serveParameters(t, m, map[string]*sql.DB{srcAcct: srcDB, tgtAcct: tgtDB})
	p := newPlan(t, src.Port, tgt.Port)
	dir := t.TempDir()
	p.Options.Hook = hookScript(t, dir)

	w := startWriter(t, dir, src.Port, tgt.Port)
	out := &syncBuffer{}
	applyWhileWriting(t, runner(p, m, out), m, w, srcDB, tgtDB, out)
	var hours string
	if err := srcDB.QueryRow("SELECT value FROM mysql.rds_configuration WHERE name = 'binlog retention hours'").Scan(&hours); err != nil || hours != "72" {
		t.Errorf("binlog retention hours = %q (%v), want 72", hours, err)
	}

	srcAcc, tgtAcc := m.Account(srcAcct, ""), m.Account(tgtAcct, "")
	if srcAcc.Params["shop-src"]["binlog_format"] != "ROW" {
		t.Errorf("source parameter group binlog_format = %q, want ROW", srcAcc.Params["shop-src"]["binlog_format"])
	}
	if _, ok := srcAcc.Instances["shop-db"]; ok {
		t.Error("the old instance was not deleted")
	}
	if srcAcc.Snapshots[p.finalSnapshotID()] == nil {
		t.Error("no final snapshot of the old instance")
	}
	if srcAcc.Snapshots[p.sharedSnapshotID()] != nil {
		t.Error("the shared snapshot copy outlived its key")
	}
	if inst := tgtAcc.Instances["shop-db-new"]; inst == nil || inst.Status != "available" || inst.BackupRetention < 1 {
		t.Errorf("target instance: %+v, want available with backups on", inst)
	}
	for _, a := range []*awstest.Account{srcAcc, tgtAcc} {
		if len(a.Routes) != 0 || len(a.Rules) != 0 {
			t.Errorf("account %s: routes %v and rules %v left after take-down", a.ID, a.Routes, a.Rules)
		}
		for id, pc := range a.Peerings {
			if pc.Status != "deleted" {
				t.Errorf("peering %s is %s after take-down", id, pc.Status)
			}
		}
	}
	deleting := 0
	for _, k := range srcAcc.Keys {
		if !k.AWSManaged && k.State == "PendingDeletion" && k.DeletionDays == 30 {
			deleting++
		}
	}
	if deleting != 1 {
		t.Errorf("%d share keys scheduled for deletion, want 1", deleting)
	}
	recs := srcAcc.Records["ZSHOP"]
	if len(recs) != 2 || recs["shop.example.com. A pitcrew-new"].Weight != 100 || recs["shop.example.com. A pitcrew-old"].Weight != 0 {
		t.Errorf("DNS records after the move: %+v", recs)
	}
	if m.NetworkUsed != 0 {
		t.Errorf("%d requests reached the HTTP client", m.NetworkUsed)
	}
	for _, c := range m.Calls() {
		if strings.Contains(c.Body, "secret-") {
			t.Errorf("a secret reached a request body: %s %s", c.Operation, c.Body)
		}
	}
	calls := strings.NewReplacer("="+strconv.Itoa(src.Port)+"&", "=<source port>&", "="+strconv.Itoa(tgt.Port)+"&", "=<target port>&").
		Replace(awstest.Golden(m.Calls(), "GetMetricData"))
	golden(t, "across-accounts.golden", calls)
	assertNoSecrets(t, p.DataDir, out.String())
}

// assertNoSecrets scans every file under dir and the output for the
// model's secret keys.
func assertNoSecrets(t *testing.T, dir, output string) {
	t.Helper()
	if strings.Contains(output, "secret-") {
		t.Error("a secret reached the output")
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "secret-") {
			t.Errorf("a secret reached %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Rollback after traffic moved: DNS goes back to the old load balancer,
// the writes come back to the source, and the source has every write
// exactly once.
func TestMigrateRollbackAfterDNS(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	fakeRDSProcedures(t, srcDB)
	fakeRDSProcedures(t, tgtDB)
	appSchema(t, srcDB, tgtDB)
	m := newModel(t)
	serveParameters(t, m, map[string]*sql.DB{srcAcct: srcDB, tgtAcct: tgtDB})
	p := newPlan(t, src.Port, tgt.Port)
	dir := t.TempDir()
	p.Options.Hook = hookScript(t, dir)
	w := startWriter(t, dir, src.Port, tgt.Port)
	defer w.finish()
	out := &syncBuffer{}
	if err := runner(p, m, out).Apply(t.Context(), "dns", false); err != nil {
		t.Fatalf("apply through dns: %v\n%s", err, out)
	}
	recs := m.Account(srcAcct, "").Records["ZSHOP"]
	if recs["shop.example.com. A pitcrew-new"].Weight != 100 {
		t.Fatalf("traffic not on the new load balancer before the rollback: %+v", recs)
	}
	if err := runner(p, m, out).Rollback(t.Context()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	recs = m.Account(srcAcct, "").Records["ZSHOP"]
	if recs["shop.example.com. A pitcrew-new"].Weight != 0 || recs["shop.example.com. A pitcrew-old"].Weight != 100 {
		t.Errorf("DNS after the rollback: %+v, want all on the old load balancer", recs)
	}
	var lastOnTarget int64
	if err := tgtDB.QueryRow("SELECT COALESCE(MAX(seq), 0) FROM app.events WHERE node = 'target'").Scan(&lastOnTarget); err != nil {
		t.Fatal(err)
	}
	waitRows(t, srcDB, "node = 'source' AND seq > "+strconv.FormatInt(lastOnTarget, 10), 10)
	w.finish()
	assertExactlyOnce(t, srcDB, "old database after the rollback", w.acked)
	if _, err := runner(p, m, out).RollbackPreview(); err != nil {
		t.Errorf("rollback preview after a rollback: %v", err)
	}
	assertNoSecrets(t, p.DataDir, out.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./infra -run %s -update to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("requests differ from %s (go test ./infra -update rewrites it after review):\n%s", path, diff(string(want), got))
	}
}

func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "first difference at line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}

// The failure paths of the AWS steps, against one source server: a
// snapshot key that cannot be shared is refused before anything is
// copied; throttling is retried by the SDK's retryer; an apply killed
// between two calls resumes from the journal without repeating finished
// steps or creating anything twice.
func TestMigrateAWSFailures(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	srcDB := testenv.MustDB(t, src)
	fakeRDSProcedures(t, srcDB)

	t.Run("aws-managed key refused", func(t *testing.T) {
		m := newModel(t)
		p := newPlan(t, src.Port, 1)
		p.Source.KMSKey = "arn:aws:kms:eu-west-1:" + srcAcct + ":key/aws-rds-" + srcAcct
		err := runner(p, m, &syncBuffer{}).Apply(t.Context(), "network", false)
		if err == nil || !strings.Contains(err.Error(), "AWS-managed") || !strings.Contains(err.Error(), "cannot be shared") {
			t.Fatalf("err = %v, want the AWS-managed key refused", err)
		}
		if n := m.Count("CreateDBSnapshot") + m.Count("CopyDBSnapshot"); n != 0 {
			t.Errorf("%d snapshot calls made after the refusal", n)
		}
		p.Source.KMSKey = "alias/aws/rds"
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "AWS-managed") {
			t.Errorf("Validate of alias/aws/rds: %v", err)
		}
	})

	t.Run("throttling retried", func(t *testing.T) {
		m := newModel(t)
		m.Throttle["CreateDBSnapshot"] = 2
		m.Throttle["CreateVpcPeeringConnection"] = 1
		p := newPlan(t, src.Port, 1)
		if err := runner(p, m, &syncBuffer{}).Apply(t.Context(), "network", false); err != nil {
			t.Fatal(err)
		}
		if got := m.Count("CreateDBSnapshot"); got != 3 {
			t.Errorf("CreateDBSnapshot sent %d times, want 3 (2 throttled + 1)", got)
		}
		if got := len(m.Account(srcAcct, "").Snapshots); got != 2 {
			t.Errorf("%d snapshots in the source account, want 2 (manual + shared copy)", got)
		}
	})

	t.Run("interrupted and resumed", func(t *testing.T) {
		m := newModel(t)
		p := newPlan(t, src.Port, 1)
		for _, stopAt := range []string{"CreateKey", "CreateDBSnapshot", "CopyDBSnapshot", "AcceptVpcPeeringConnection"} {
			ctx, cancel := context.WithCancel(t.Context())
			m.After = func(op string) {
				if op == stopAt {
					cancel()
				}
			}
			err := runner(p, m, &syncBuffer{}).Apply(ctx, "network", false)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted after %s: err = %v, want context.Canceled", stopAt, err)
			}
		}
		m.After = nil
		out := &syncBuffer{}
		if err := runner(p, m, out).Apply(t.Context(), "network", false); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		for op, want := range map[string]int{"CreateKey": 1, "CreateAlias": 1, "DescribeDBParameters": 1, "RestoreDBInstanceFromDBSnapshot": 1, "CreateVpcPeeringConnection": 1} {
			if got := m.Count(op); got != want {
				t.Errorf("%s sent %d times across the interrupted runs, want %d", op, got, want)
			}
		}
		src, tgt := m.Account(srcAcct, ""), m.Account(tgtAcct, "")
		if len(src.Snapshots) != 2 || len(tgt.Snapshots) != 1 || len(tgt.Instances) != 1 || len(src.Peerings) != 1 {
			t.Errorf("resources after resume: %d/%d snapshots, %d instances, %d peerings; want 2/1, 1, 1", len(src.Snapshots), len(tgt.Snapshots), len(tgt.Instances), len(src.Peerings))
		}
		st, err := runner(p, m, &syncBuffer{}).Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st[:stepIndex("network")+1] {
			if s.State != checkpoint.StepDone {
				t.Errorf("step %s is %s after resume", s.ID, s.State)
			}
		}
		if st[0].Attempts != 1 {
			t.Errorf("source-prep ran %d times; finished steps must not be repeated", st[0].Attempts)
		}
	})
}
