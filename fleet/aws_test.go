package fleet

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/infra"
	"github.com/pitcrew/pitcrew/infra/awstest"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Four databases in two account pairs (orders and users from 111111111111
// to 222222222222, posts and contacts from 333333333333 to 444444444444),
// run through the network step against the account model: one KMS key and
// one peering (with its routes and ingress) per pair, each database's
// snapshot shared with its pair's key and its network step reusing the
// pair's peering. The four modelled source instances point at one real
// server (source-prep connects to it).
func TestFleetAWSPairs(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := testenv.New(t, testenv.Options{ServerID: 1})

	m := awstest.New()
	pairs := [][2]string{{"111111111111", "222222222222"}, {"333333333333", "444444444444"}}
	dbs := map[string]int{"orders": 0, "users": 0, "posts": 1, "contacts": 1}
	for i, pr := range pairs {
		src := m.Account(pr[0], "eu-west-1")
		m.Account(pr[1], "eu-west-1")
		for name, p := range dbs {
			if p == i {
				src.Instances[name+"-db"] = &awstest.Instance{ID: name + "-db", Status: "available", Engine: "mariadb", ParameterGroup: name + "-src",
					Host: "127.0.0.1", Port: int32(srv.Port), BackupRetention: 7, KMSKey: "arn:aws:kms:eu-west-1:" + pr[0] + ":key/aws-rds-" + pr[0]}
				src.Params[name+"-src"] = map[string]string{"binlog_format": "ROW"}
			}
		}
	}
	var y strings.Builder
	y.WriteString("name: estate\ndata_dir: " + t.TempDir() + "\nlimits: {copies: 1, cutovers: 2}\ndatabases:\n")
	for _, name := range []string{"orders", "users", "posts", "contacts"} {
		pr := pairs[dbs[name]]
		n := 10 * (dbs[name] + 1)
		fmt.Fprintf(&y, `  - name: %[1]s
    migration:
      source: {account: "%[2]s", region: eu-west-1, instance: %[1]s-db, engine: mariadb, parameter_group: %[1]s-src,
               vpc: {id: vpc-src%[4]d, cidr: 10.%[4]d.0.0/16, route_tables: [rtb-src%[4]d], security_groups: [sg-src%[4]d]},
               database: {port: %[5]d}}
      target: {account: "%[3]s", region: eu-west-1, role_arn: "arn:aws:iam::%[3]s:role/pitcrew", instance: %[1]s-db-new, engine: mariadb,
               instance_class: db.t3.micro, subnet_group: new, security_groups: [sg-tgt%[4]d],
               vpc: {id: vpc-tgt%[4]d, cidr: 10.%[6]d.0.0/16, route_tables: [rtb-tgt%[4]d], security_groups: [sg-tgt%[4]d]},
               database: {port: %[5]d}}
      options: {start_from: beginning, poll_interval: 5ms, timeout: 30s, binlog_retention_hours: 72}
`, name, pr[0], pr[1], n, srv.Port, n+1)
	}
	y.WriteString(`applications:
  - {name: shop, databases: [orders, users], hook: "true"}
  - {name: blog, databases: [posts], hook: "true"}
  - {name: crm, databases: [contacts], hook: "true"}
`)
	f, err := Parse([]byte(y.String()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	preview := &strings.Builder{}
	if err := f.Preview(preview); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pair estate-111111111111-222222222222: accounts 111111111111 -> 222222222222, databases orders, users",
		"kms:CreateAlias AliasName=alias/pitcrew-estate-333333333333-444444444444",
		"kms:DescribeKey KeyId=alias/pitcrew-estate-111111111111-222222222222 (refused when AWS-managed",
		"Filter tag:pitcrew:migration=estate-333333333333-444444444444 (the shared peering",
		"ec2:CreateRoute RouteTableId=rtb-src10 DestinationCidrBlock=10.11.0.0/16",
	} {
		if !strings.Contains(preview.String(), want) {
			t.Errorf("preview lacks %q", want)
		}
	}

	out := &lockedBuffer{}
	rn := &Runner{Fleet: f, Out: out, InProcess: true, Poll: 5 * time.Millisecond,
		AWS: func(p *infra.Plan) []func(*config.LoadOptions) error { return m.LoadOptions(p.Source.Account) },
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noDelay{} })
		}}
	stats, err := rn.Apply(t.Context(), "network")
	if err != nil {
		t.Fatalf("fleet apply --through network: %v\n%s", err, out)
	}
	if stats.PeakCopying != 1 {
		t.Errorf("peak copying %d, want 1 (limits.copies)", stats.PeakCopying)
	}
	for i, pr := range pairs {
		name := "estate-" + pr[0] + "-" + pr[1]
		src, tgt := m.Account(pr[0], ""), m.Account(pr[1], "")
		custom := 0
		for _, k := range src.Keys {
			if !k.AWSManaged {
				custom++
				if !strings.Contains(k.Policy, pr[1]) {
					t.Errorf("pair %s: the key's policy does not grant %s", name, pr[1])
				}
			}
		}
		if custom != 1 || src.Aliases["alias/pitcrew-"+name] == "" {
			t.Errorf("account %s: %d customer-managed keys (aliases %v), want 1 for the pair", pr[0], custom, src.Aliases)
		}
		active := 0
		for _, pc := range src.Peerings {
			if pc.Status == "active" {
				active++
			}
		}
		if len(src.Peerings) != 1 || active != 1 {
			t.Errorf("account %s: peerings %v, want one active for the pair", pr[0], src.Peerings)
		}
		n := 10 * (i + 1)
		if len(src.Routes) != 1 || len(tgt.Routes) != 1 || src.Routes[fmt.Sprintf("rtb-src%d 10.%d.0.0/16", n, n+1)] == "" {
			t.Errorf("pair %s: routes %v / %v, want one each way", name, src.Routes, tgt.Routes)
		}
		for _, a := range []*awstest.Account{src, tgt} {
			if len(a.Rules) != 1 {
				t.Errorf("account %s: %d ingress rules, want 1 (the pair's)", a.ID, len(a.Rules))
			}
		}
		keyID := src.Aliases["alias/pitcrew-"+name]
		for db, p := range dbs {
			if p != i {
				continue
			}
			s := src.Snapshots["pitcrew-"+db+"-shared"]
			if s == nil || !strings.HasSuffix(s.KMSKey, keyID) {
				t.Errorf("%s: shared snapshot %+v, want it encrypted with the pair's key %s", db, s, keyID)
			}
			st, err := (&infra.Runner{Plan: f.Database(db).PlanOf()}).Status()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st {
				if s.ID == "network" && (s.State != checkpoint.StepDone || s.Outputs["peering_id"] == "") {
					t.Errorf("%s: network step %s %v", db, s.State, s.Outputs)
				}
				if s.ID == "forward" && s.State != checkpoint.StepPending {
					t.Errorf("%s: forward is %s after --through network", db, s.State)
				}
			}
		}
	}
	if m.NetworkUsed != 0 {
		t.Errorf("%d requests reached the HTTP client", m.NetworkUsed)
	}
	golden(t, "aws-pairs.golden", strings.ReplaceAll(awstest.Golden(m.Calls()), "="+strconv.Itoa(srv.Port)+"&", "=<port>&"))

	// Resume changes nothing: no second key, peering or snapshot.
	before := len(m.Calls())
	if _, err := rn.Apply(t.Context(), "network"); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Calls()[before:] {
		if strings.HasPrefix(c.Operation, "Create") || strings.HasPrefix(c.Operation, "Copy") {
			t.Errorf("resume called %s", c.Operation)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("requests differ from %s (run with -update after checking):\n%s", path, got)
	}
}

type noDelay struct{}

func (noDelay) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
