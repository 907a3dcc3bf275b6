// Package infra is the migration runbook as code: the move of a database
// from one AWS account (or server) to another as an ordered list of steps
// that can be previewed without credentials, run, resumed after a crash at
// any point, and rolled back until take-down.
//
// Invariants:
//   - every step is idempotent: "already exists" is success, and what a step
//     creates is journaled (checkpoint.Step.Outputs) right after the call
//     that created it, so a resumed step finds it instead of creating twice;
//   - a step that finished is never run again by resume;
//   - nothing secret reaches the journal, a log line or the plan preview;
//   - take-down, the one step that cannot be undone, runs only when its
//     guards hold (quiet period, reverse channel drained, rollback window
//     closed).
package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/syncer"
)

// Plan is migration.yaml. examples/migration.yaml documents every key.
type Plan struct {
	Name    string  `yaml:"name"`     // names snapshots, keys, tags and the journal
	DataDir string  `yaml:"data_dir"` // journal and channel checkpoints; default ./pitcrew-migrate
	Source  Side    `yaml:"source"`
	Target  Side    `yaml:"target"`
	DNS     *DNS    `yaml:"dns"` // nil: no DNS step (the application is moved by the hook)
	Options Options `yaml:"options"`

	// The console of a running apply/resume/rollback (see README, Console).
	// Not part of the plan's digest: moving the console is no change of plan.
	HTTPAddr        string `yaml:"http_addr" json:"-"`         // default 127.0.0.1:9307; "off" disables
	ConsoleToken    string `yaml:"console_token" json:"-"`     // or PITCREW_CONSOLE_TOKEN
	ConsoleReadOpen bool   `yaml:"console_read_open" json:"-"` // read-only view without the token
}

// Side is one end of the move: an AWS account with an RDS instance, or
// (without account) just a database server.
type Side struct {
	Account        string   `yaml:"account"`         // 12-digit AWS account id; empty: no AWS for this side
	Region         string   `yaml:"region"`          // e.g. eu-west-1
	Profile        string   `yaml:"profile"`         // shared-config profile; empty: the default chain
	RoleARN        string   `yaml:"role_arn"`        // target only: role assumed with the source's credentials
	Instance       string   `yaml:"instance"`        // RDS DB instance identifier
	Engine         string   `yaml:"engine"`          // mysql or mariadb; default mysql
	ParameterGroup string   `yaml:"parameter_group"` // custom DB parameter group (GTID settings go here)
	InstanceClass  string   `yaml:"instance_class"`  // target: class of the restored instance
	SubnetGroup    string   `yaml:"subnet_group"`    // target: DB subnet group for the restore
	SecurityGroups []string `yaml:"security_groups"` // target: VPC security groups for the restore
	KMSKey         string   `yaml:"kms_key"`         // source: a customer-managed key to share with (default: pitcrew creates one); target: key for its own copy (default: the account's aws/rds)
	VPC            *VPC     `yaml:"vpc"`             // nil: no peering (same network)

	Database conn.Endpoint `yaml:"database"` // how pitcrew connects; host defaults to the instance's endpoint
}

// VPC is one side's network.
type VPC struct {
	ID             string   `yaml:"id"`
	CIDR           string   `yaml:"cidr"`
	RouteTables    []string `yaml:"route_tables"`
	SecurityGroups []string `yaml:"security_groups"` // the database's groups: ingress from the peer CIDR is added
	// SharedPeering names the migration (a fleet's account pair) whose
	// peering this one uses: the network step only waits for it to be
	// active, and take-down leaves it, its routes and rules to their owner.
	SharedPeering string `yaml:"shared_peering"`
}

// DNS is the Route 53 move from the old load balancer to the new one.
type DNS struct {
	Account      string        `yaml:"account"` // "source" or "target": whose account holds the zone; default source
	HostedZoneID string        `yaml:"hosted_zone_id"`
	Record       string        `yaml:"record"` // e.g. shop.example.com.
	TTL          int64         `yaml:"ttl"`    // lowered TTL during the move; default 60
	Old          LoadBalancer  `yaml:"old"`
	New          LoadBalancer  `yaml:"new"`
	Weights      []int64       `yaml:"weights"`   // percent to the new one, in steps; default 10, 50, 100
	StepWait     time.Duration `yaml:"step_wait"` // between weight steps; default 10m
}

// LoadBalancer is an alias target of the weighted record.
type LoadBalancer struct {
	DNSName      string `yaml:"dns_name"`
	HostedZoneID string `yaml:"hosted_zone_id"` // the load balancer's canonical zone
	Metric       string `yaml:"metric_name"`    // CloudWatch LoadBalancer dimension, e.g. app/old-alb/50dc6c495c0c9188
}

// Options tune the run.
type Options struct {
	BinlogRetentionHours int           `yaml:"binlog_retention_hours"` // default: sized from restore_estimate (3x, at least 24)
	RestoreEstimate      time.Duration `yaml:"restore_estimate"`       // snapshot+copies+restore; default 8h
	StartFrom            string        `yaml:"start_from"`             // forward channel's first start; default target
	StartGTID            string        `yaml:"start_gtid"`
	MaxLag               time.Duration `yaml:"max_lag"`          // cut-over guardrail; default 5s
	LongTransaction      time.Duration `yaml:"long_transaction"` // cut-over guardrail; default 60s
	QuietPeriod          time.Duration `yaml:"quiet_period"`     // no traffic, no clients, before take-down; default 72h
	RollbackWindow       time.Duration `yaml:"rollback_window"`  // after cut-over; default = quiet_period
	PollInterval         time.Duration `yaml:"poll_interval"`    // AWS waiters and checks; default 30s
	Timeout              time.Duration `yaml:"timeout"`          // per wait; default 2h
	Hook                 string        `yaml:"hook"`             // run as: hook cutover|rollback; empty: wait for 'pitcrew migrate confirm'
	Fence                string        `yaml:"fence"`            // read_only (default; with accounts parameter_group), parameter_group or lock_users
	AppUsers             []string      `yaml:"app_users"`        // with fence lock_users
	CutoverOrder         string        `yaml:"cutover_order"`    // fence-first (default) or both-writable
	FinalSnapshot        *bool         `yaml:"final_snapshot"`   // take-down keeps one; default true
	KeyDeletionDays      int32         `yaml:"key_deletion_days"`
	ServerID             uint32        `yaml:"server_id"` // forward channel; reverse is +1; default syncer.DefaultServerID (4207)
	// AcceptObjectDifferences lets the cut-over go on when verify --objects
	// finds differences (printed); default false: they refuse it.
	AcceptObjectDifferences bool `yaml:"accept_object_differences"`
}

// Default fills the documented defaults.
func (p *Plan) Default() {
	if p.DataDir == "" {
		p.DataDir = "pitcrew-migrate"
	}
	for _, s := range []*Side{&p.Source, &p.Target} {
		if s.Engine == "" {
			s.Engine = "mysql"
		}
		if s.Database.Port == 0 {
			s.Database.Port = 3306
		}
		if s.Database.User == "" {
			s.Database.User = "root"
		}
	}
	o := &p.Options
	if o.RestoreEstimate == 0 {
		o.RestoreEstimate = 8 * time.Hour
	}
	if o.BinlogRetentionHours == 0 {
		o.BinlogRetentionHours = max(24, int(3*o.RestoreEstimate.Hours()+0.999))
	}
	if o.StartFrom == "" && o.StartGTID == "" {
		o.StartFrom = "target"
	}
	if o.MaxLag == 0 {
		o.MaxLag = 5 * time.Second
	}
	if o.LongTransaction == 0 {
		o.LongTransaction = time.Minute
	}
	if o.QuietPeriod == 0 {
		o.QuietPeriod = 72 * time.Hour
	}
	if o.RollbackWindow == 0 {
		o.RollbackWindow = o.QuietPeriod
	}
	if o.PollInterval == 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Hour
	}
	if o.Fence == "" {
		o.Fence = FenceReadOnly
		if p.aws() { // RDS refuses SET GLOBAL read_only
			o.Fence = FenceParameterGroup
		}
	}
	if o.CutoverOrder == "" {
		o.CutoverOrder = OrderFenceFirst
	}
	if o.FinalSnapshot == nil {
		t := true
		o.FinalSnapshot = &t
	}
	if o.KeyDeletionDays == 0 {
		o.KeyDeletionDays = 30
	}
	if o.ServerID == 0 {
		o.ServerID = syncer.DefaultServerID
	}
	if d := p.DNS; d != nil {
		if d.Account == "" {
			d.Account = "source"
		}
		if d.TTL == 0 {
			d.TTL = 60
		}
		if len(d.Weights) == 0 {
			d.Weights = []int64{10, 50, 100}
		}
		if d.StepWait == 0 {
			d.StepWait = 10 * time.Minute
		}
	}
}

// Cut-over orders (options.cutover_order).
const (
	// OrderFenceFirst (default): fence the source, drain the forward
	// channel to its exact executed set, then release the application.
	OrderFenceFirst = "fence-first"
	// OrderBothWritable: move the application first, fence after; both
	// sides take writes in between, and a row written on both is a
	// conflict (resolved source-wins) that may lose an update.
	OrderBothWritable = "both-writable"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// Validate checks everything that needs no AWS and no database: the plan
// preview runs it, so a bad plan is refused before anything is touched.
func (p *Plan) Validate() error {
	var pr problems
	if !nameRE.MatchString(p.Name) {
		pr.bad("name %q: use 1-40 lowercase letters, digits or '-', starting with a letter (it names snapshots and keys)", p.Name)
	}
	p.validateSides(&pr)
	p.validateAccounts(&pr)
	if p.DNS != nil {
		p.validateDNS(&pr)
	}
	p.Options.validate(&pr, p.aws())
	return errors.Join(pr...)
}

// problems collects what Validate finds, in order.
type problems []error

func (pr *problems) bad(format string, a ...any) { *pr = append(*pr, fmt.Errorf(format, a...)) }
func (pr *problems) add(err error)               { *pr = append(*pr, err) }

// validateSides: each side's engine, and where it is (account or host).
func (p *Plan) validateSides(pr *problems) {
	for _, s := range []struct {
		role string
		side *Side
	}{{"source", &p.Source}, {"target", &p.Target}} {
		if s.side.Engine != "mysql" && s.side.Engine != "mariadb" {
			pr.bad("%s.engine %q: use mysql or mariadb", s.role, s.side.Engine)
		}
		if s.side.Account != "" {
			if !accountRE.MatchString(s.side.Account) {
				pr.bad("%s.account %q: use the 12-digit AWS account id", s.role, s.side.Account)
			}
			if s.side.Region == "" {
				pr.bad("%s.region is missing: set the AWS region, e.g. eu-west-1", s.role)
			}
			if s.side.Instance == "" {
				pr.bad("%s.instance is missing: set the RDS DB instance identifier", s.role)
			}
		} else if s.side.Database.Host == "" {
			pr.bad("%s has neither account nor database.host: set one so pitcrew knows where the database is", s.role)
		}
		// database.tls: the same keys as a config's source/target.tls; every
		// connection of the runbook (channels, guardrails, fence) uses it.
		if err := s.side.Database.TLS.Validate(s.role + ".database"); err != nil {
			pr.add(err)
		}
	}
}

// validateAccounts: the two accounts, the restore, the network.
func (p *Plan) validateAccounts(pr *problems) {
	if p.Target.RoleARN != "" && p.Target.Profile != "" {
		pr.bad("target has both role_arn and profile: use one way to reach the target account")
	}
	if p.aws() && p.Source.Account == p.Target.Account {
		pr.bad("source.account and target.account are both %s: this runbook moves between accounts; for one account restore the snapshot directly", p.Source.Account)
	}
	if p.aws() {
		if p.Target.InstanceClass == "" {
			pr.bad("target.instance_class is missing: set the class of the restored instance, e.g. db.r6g.large")
		}
		if isAWSManagedAlias(p.Source.KMSKey) {
			pr.bad("source.kms_key %s is AWS-managed: its policy cannot grant account %s, so a snapshot encrypted with it cannot be shared; leave kms_key empty (pitcrew creates a customer-managed key) or name a customer-managed key", p.Source.KMSKey, p.Target.Account)
		}
	} else if p.Source.Account != "" || p.Target.Account != "" {
		pr.bad("only one side has an account: set source.account and target.account for an AWS move, or neither for a server-to-server move")
	}
	if p.Source.VPC != nil || p.Target.VPC != nil {
		if p.Source.VPC == nil || p.Target.VPC == nil {
			pr.bad("only one side has a vpc: set both for peering, or neither")
		} else if err := checkCIDRs(p.Source.VPC.CIDR, p.Target.VPC.CIDR); err != nil {
			pr.add(err)
		}
	}
}

// validateDNS: the Route 53 step.
func (p *Plan) validateDNS(pr *problems) {
	d := p.DNS
	if !p.aws() {
		pr.bad("dns needs source.account and target.account (Route 53 and CloudWatch live there)")
	}
	if d.Account != "source" && d.Account != "target" {
		pr.bad("dns.account %q: use source or target (whose account holds the hosted zone)", d.Account)
	}
	if d.HostedZoneID == "" || d.Record == "" {
		pr.bad("dns.hosted_zone_id and dns.record are required for the DNS step")
	}
	if d.Old.DNSName == "" || d.New.DNSName == "" || d.Old.HostedZoneID == "" || d.New.HostedZoneID == "" {
		pr.bad("dns.old and dns.new need dns_name and hosted_zone_id (the load balancers' canonical zone)")
	}
	if d.Old.Metric == "" {
		pr.bad("dns.old.metric_name is missing: set the old load balancer's CloudWatch name (app/NAME/ID), used to see traffic drain")
	}
	last := int64(-1)
	for _, w := range d.Weights {
		if w <= last || w > 100 {
			pr.bad("dns.weights %v: use increasing percentages up to 100", d.Weights)
			break
		}
		last = w
	}
	if last != 100 {
		pr.bad("dns.weights %v: the last step must be 100", d.Weights)
	}
}

// validate: the options (aws: the plan moves between accounts).
func (o *Options) validate(pr *problems, aws bool) {
	switch o.Fence {
	case FenceReadOnly:
		// RDS refuses SET GLOBAL read_only (no SUPER); a side on RDS says
		// so by its account here, and by its server at the guardrails.
		if aws {
			pr.bad("options.fence read_only runs SET GLOBAL read_only, which RDS refuses (no SUPER): set options.fence: parameter_group (read_only through each side's DB parameter group) or lock_users (with options.app_users)")
		}
	case FenceParameterGroup:
		if !aws {
			pr.bad("options.fence parameter_group sets read_only in an RDS DB parameter group: it needs source.account and target.account; for servers of your own use read_only or lock_users")
		}
	case FenceLockUsers:
	default:
		pr.bad("options.fence %q: use read_only, parameter_group (RDS) or lock_users", o.Fence)
	}
	if o.CutoverOrder != OrderFenceFirst && o.CutoverOrder != OrderBothWritable {
		pr.bad("options.cutover_order %q: use fence-first or both-writable", o.CutoverOrder)
	}
	if o.Fence == FenceLockUsers && len(o.AppUsers) == 0 {
		pr.bad("options.fence lock_users needs options.app_users: the application's database users to lock")
	}
	if o.BinlogRetentionHours < 1 || o.BinlogRetentionHours > 2160 {
		pr.bad("options.binlog_retention_hours %d: use 1-2160 (RDS's limit)", o.BinlogRetentionHours)
	}
	if o.KeyDeletionDays < 7 || o.KeyDeletionDays > 30 {
		pr.bad("options.key_deletion_days %d: KMS allows 7-30", o.KeyDeletionDays)
	}
	switch o.StartFrom {
	case "target", "now", "beginning", "gtid", "":
	default:
		pr.bad("options.start_from %q: use target, now, beginning or gtid", o.StartFrom)
	}
}

// aws tells whether the plan moves between AWS accounts.
func (p *Plan) aws() bool { return p.Source.Account != "" && p.Target.Account != "" }

func isAWSManagedAlias(k string) bool {
	return strings.HasPrefix(k, "alias/aws/") || strings.Contains(k, ":alias/aws/")
}

// checkCIDRs refuses overlapping networks: peering cannot route them.
func checkCIDRs(a, b string) error {
	pa, err := netip.ParsePrefix(a)
	if err != nil {
		return fmt.Errorf("source.vpc.cidr %q is not a CIDR block (e.g. 10.0.0.0/16)", a)
	}
	pb, err := netip.ParsePrefix(b)
	if err != nil {
		return fmt.Errorf("target.vpc.cidr %q is not a CIDR block (e.g. 10.1.0.0/16)", b)
	}
	if pa.Overlaps(pb) {
		return fmt.Errorf("source.vpc.cidr %s overlaps target.vpc.cidr %s: VPC peering cannot route overlapping networks; give the target VPC a disjoint range", a, b)
	}
	return nil
}

// Digest identifies the plan's content (passwords excluded), so resume can
// tell when the plan changed under a journal.
func (p *Plan) Digest() string {
	c := *p
	c.Source.Database.Password, c.Target.Database.Password = "", ""
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
