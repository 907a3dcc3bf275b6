package infra

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/pitcrew/pitcrew/infra/awstest"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

const (
	srcAcct = "111111111111"
	tgtAcct = "222222222222"
)

// newModel is the story's starting point: the old account runs shop-db
// (encrypted with the AWS-managed key, as RDS does by default), a DNS name
// with a plain record on the old load balancer.
func newModel(t *testing.T) *awstest.Model {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	m := awstest.New()
	src := m.Account(srcAcct, "eu-west-1")
	src.Instances["shop-db"] = &awstest.Instance{ID: "shop-db", Status: "available", Engine: "mariadb", ParameterGroup: "shop-src",
		Host: "127.0.0.1", Port: 3306, BackupRetention: 7, KMSKey: "arn:aws:kms:eu-west-1:" + srcAcct + ":key/aws-rds-" + srcAcct}
	src.Params["shop-src"] = map[string]string{"binlog_format": "MIXED"}
	src.Records["ZSHOP"] = map[string]*awstest.Record{
		"shop.example.com. CNAME ": {Name: "shop.example.com.", Type: "CNAME", Value: "old-alb.eu-west-1.elb.amazonaws.com", TTL: 2},
	}
	tgt := m.Account(tgtAcct, "eu-west-1")
	tgt.Params["shop-tgt"] = map[string]string{"binlog_format": "ROW"}
	return m
}

// newPlan moves shop-db between the accounts; the databases are the
// throwaway servers (their ports; the host comes from the modelled
// instances' endpoints).
func newPlan(t *testing.T, srcPort, tgtPort int) *Plan {
	p := &Plan{
		Name: "shop-move", DataDir: t.TempDir(),
		Source: Side{Account: srcAcct, Region: "eu-west-1", Instance: "shop-db", Engine: "mariadb", ParameterGroup: "shop-src",
			VPC:      &VPC{ID: "vpc-src", CIDR: "10.0.0.0/16", RouteTables: []string{"rtb-src"}, SecurityGroups: []string{"sg-src"}},
			Database: conn.Endpoint{Port: srcPort}},
		Target: Side{Account: tgtAcct, Region: "eu-west-1", RoleARN: "arn:aws:iam::" + tgtAcct + ":role/pitcrew", Instance: "shop-db-new",
			Engine: "mariadb", InstanceClass: "db.t3.micro", ParameterGroup: "shop-tgt", SubnetGroup: "shop-new", SecurityGroups: []string{"sg-tgt"},
			VPC:      &VPC{ID: "vpc-tgt", CIDR: "10.1.0.0/16", RouteTables: []string{"rtb-tgt"}, SecurityGroups: []string{"sg-tgt"}},
			Database: conn.Endpoint{Port: tgtPort}},
		DNS: &DNS{HostedZoneID: "ZSHOP", Record: "shop.example.com", TTL: 1, Weights: []int64{50, 100}, StepWait: 20 * time.Millisecond,
			Old: LoadBalancer{DNSName: "old-alb.eu-west-1.elb.amazonaws.com", HostedZoneID: "Z32O12XQLNTSW2", Metric: "app/old-alb/1"},
			New: LoadBalancer{DNSName: "new-alb.eu-west-1.elb.amazonaws.com", HostedZoneID: "Z32O12XQLNTSW2", Metric: "app/new-alb/2"}},
		Options: Options{StartFrom: "beginning", PollInterval: 5 * time.Millisecond, Timeout: 90 * time.Second,
			QuietPeriod: 300 * time.Millisecond, RollbackWindow: 100 * time.Millisecond, BinlogRetentionHours: 72, Fence: FenceParameterGroup},
	}
	p.Default()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// runner wires the model in: real clients, no network, no backoff delay.
func runner(p *Plan, m *awstest.Model, out *syncBuffer) *Runner {
	return &Runner{
		Plan: p, Out: out, AWS: m.LoadOptions(srcAcct),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noDelay{} })
		},
	}
}

type noDelay struct{}

func (noDelay) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeRDSProcedures gives a MariaDB server RDS's configuration procedures,
// with the retention unset as on a fresh RDS instance.
func fakeRDSProcedures(t *testing.T, db *sql.DB) {
	t.Helper()
	unlogged(t, db,
		"CREATE TABLE mysql.rds_configuration (name VARCHAR(100) PRIMARY KEY, value VARCHAR(100), description VARCHAR(300))",
		"INSERT INTO mysql.rds_configuration VALUES ('binlog retention hours', NULL, 'binlog retention hours specifies the duration in hours before binary logs are automatically deleted.')",
		"CREATE PROCEDURE mysql.rds_show_configuration() SELECT name, value, description FROM mysql.rds_configuration",
		"CREATE PROCEDURE mysql.rds_set_configuration(IN n VARCHAR(100), IN v INT) UPDATE mysql.rds_configuration SET value = v WHERE name = n",
		// RDS's way to end another user's session (KILL needs SUPER there).
		"CREATE PROCEDURE mysql.rds_kill(IN thread BIGINT) KILL thread")
}

// unlogged runs statements on one session with the binlog off: what they
// create stays on this server.
func unlogged(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range append(append([]string{"SET sql_log_bin = 0"}, stmts...), "SET sql_log_bin = 1") { // the connection goes back to the pool
		if _, err := c.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// serveParameters applies the read_only a ModifyDBParameterGroup call sets
// to the real server behind the account's instance, as RDS applies a
// dynamic parameter.
func serveParameters(t *testing.T, m *awstest.Model, dbs map[string]*sql.DB) {
	m.OnParameter = func(p awstest.Parameter) {
		if db := dbs[p.Account]; db != nil && p.Name == "read_only" {
			if _, err := db.Exec("SET GLOBAL read_only = " + p.Value); err != nil {
				t.Errorf("applying read_only=%s: %v", p.Value, err)
			}
		}
	}
}

// rdsUser creates the account RDS gives its master user: everything but
// SUPER and what was split from it, so SET GLOBAL read_only, sql_log_bin
// and KILL of another user's session are refused.
func rdsUser(t *testing.T, db *sql.DB, user, password string) {
	t.Helper()
	unlogged(t, db,
		"CREATE USER '"+user+"'@'%' IDENTIFIED BY '"+password+"'",
		"GRANT ALL ON *.* TO '"+user+"'@'%' WITH GRANT OPTION",
		"REVOKE SUPER, READ_ONLY ADMIN, BINLOG ADMIN, CONNECTION ADMIN ON *.* FROM '"+user+"'@'%'")
}

// appSchema is the application's table on the source, with users of its
// own that are not replicated (sql_log_bin=0): app and shop_app (the
// example plan's app_users).
func appSchema(t *testing.T, dbs ...*sql.DB) {
	t.Helper()
	for _, db := range dbs {
		unlogged(t, db, "CREATE USER 'app'@'%' IDENTIFIED BY 'app'", "GRANT ALL ON app.* TO 'app'@'%'",
			"CREATE USER 'shop_app'@'%' IDENTIFIED BY 'app'", "GRANT ALL ON app.* TO 'shop_app'@'%'")
	}
	testenv.Exec(t, dbs[0], "CREATE DATABASE app",
		"CREATE TABLE app.events (id BIGINT AUTO_INCREMENT PRIMARY KEY, seq BIGINT NOT NULL, node VARCHAR(10) NOT NULL, UNIQUE KEY (seq))")
}

// writer is the application: one insert after another into whichever
// database it was moved to (by the hook's files), each acknowledged seq
// recorded.
type writer struct {
	user   string // default app
	dir    string
	ports  map[string]int
	stop   atomic.Bool
	done   chan struct{}
	acked  []int64
	errors []error
}

func startWriter(t *testing.T, dir string, srcPort, tgtPort int) *writer {
	return startWriterAs(t, "app", dir, srcPort, tgtPort)
}

func startWriterAs(t *testing.T, user, dir string, srcPort, tgtPort int) *writer {
	w := &writer{user: user, dir: dir, ports: map[string]int{"source": srcPort, "target": tgtPort}, done: make(chan struct{})}
	go w.run(t)
	return w
}

func (w *writer) open(node string) *sql.DB {
	db, _ := conn.Open(conn.Endpoint{Host: "127.0.0.1", Port: w.ports[node], User: w.user, Password: "app"})
	return db
}

func (w *writer) where() string {
	if _, err := os.Stat(filepath.Join(w.dir, "moved-cutover")); err == nil {
		return "target"
	}
	return "source"
}

func (w *writer) run(t *testing.T) {
	defer close(w.done)
	node := w.where()
	db := w.open(node)
	defer func() { db.Close() }()
	for seq := int64(1); !w.stop.Load(); seq++ {
		if n := w.where(); n != node {
			db.Close() // no session of ours stays on the old side
			node, db = n, w.open(n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := db.ExecContext(ctx, "INSERT INTO app.events (seq, node) VALUES (?, ?)", seq, node)
		cancel()
		if err != nil {
			w.errors = append(w.errors, fmt.Errorf("seq %d on %s: %w", seq, node, err))
			time.Sleep(time.Millisecond) // fenced: the application retries
			continue
		}
		w.acked = append(w.acked, seq)
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *writer) finish() {
	w.stop.Store(true)
	<-w.done
}

// hookScript moves the writer: it leaves a file per phase.
func hookScript(t *testing.T, dir string) string {
	path := filepath.Join(dir, "move-app.sh")
	script := "#!/bin/sh\nset -e\nrm -f " + dir + "/moved-*\ntouch " + dir + "/moved-\"$1\"\necho \"application moved ($1)\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertExactlyOnce checks every acknowledged write is on the database
// once, and nothing else is.
func assertExactlyOnce(t *testing.T, db *sql.DB, name string, acked []int64) {
	t.Helper()
	rows, err := db.Query("SELECT seq FROM app.events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[int64]int{}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seen[s]++
	}
	want := map[int64]bool{}
	for _, s := range acked {
		want[s] = true
		if seen[s] != 1 {
			t.Errorf("%s: acknowledged write seq %d present %d times", name, s, seen[s])
		}
	}
	for s, n := range seen {
		if !want[s] {
			t.Errorf("%s: seq %d present %d times but never acknowledged", name, s, n)
		}
	}
}

// applyWhileWriting runs the whole plan while w writes, stops w once the
// traffic moves (the first DNS change: the application is on the target by
// then), and checks that every acknowledged write is on both databases
// exactly once and that writes reached the target.
func applyWhileWriting(t *testing.T, rn *Runner, m *awstest.Model, w *writer, srcDB, tgtDB *sql.DB, out *syncBuffer) {
	t.Helper()
	var once sync.Once
	m.After = func(op string) {
		if op == "ChangeResourceRecordSets" {
			once.Do(w.finish)
		}
	}
	if err := rn.Apply(t.Context(), "", false); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	w.finish()
	t.Logf("%d writes acknowledged, %d refused at the fence\n%s", len(w.acked), len(w.errors), out)
	assertExactlyOnce(t, srcDB, "old database", w.acked)
	assertExactlyOnce(t, tgtDB, "new database", w.acked)
	var onTarget int
	if err := tgtDB.QueryRow("SELECT COUNT(*) FROM app.events WHERE node = 'target'").Scan(&onTarget); err != nil || onTarget == 0 {
		t.Errorf("no write reached the target after the cut-over (%d, %v)", onTarget, err)
	}
}
