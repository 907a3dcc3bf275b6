package infra

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// account is one AWS account's service clients.
type account struct {
	role   string // source or target
	id     string
	region string
	rds    *rds.Client
	kms    *kms.Client
	ec2    *ec2.Client
	r53    *route53.Client
	cw     *cloudwatch.Client
}

func (a *account) where() string { return fmt.Sprintf("account %s (%s)", a.id, a.region) }

type clients struct{ source, target *account }

// cloud is the run's way to AWS: the plan's two accounts, their clients
// made on first use.
type cloud struct {
	plan    *Plan
	load    []func(*config.LoadOptions) error // Runner.AWS
	retryer func() aws.Retryer                // Runner.Retryer
	c       *clients
}

// awsClients loads credentials from the standard chain (profiles, env,
// SSO, instance roles) on first use: the preview never needs them. The
// target account is reached with its own profile or a role assumed with
// the source's credentials. Identities are checked against the plan, so a
// wrong profile fails before anything is changed.
func (cl *cloud) awsClients(ctx context.Context) (*clients, error) {
	if cl.c != nil {
		return cl.c, nil
	}
	p := cl.plan
	load := func(side *Side) (aws.Config, error) {
		opts := append([]func(*config.LoadOptions) error{config.WithRegion(side.Region)}, cl.load...)
		if side.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(side.Profile))
		}
		if cl.retryer != nil {
			opts = append(opts, config.WithRetryer(cl.retryer))
		}
		return config.LoadDefaultConfig(ctx, opts...)
	}
	srcCfg, err := load(&p.Source)
	if err != nil {
		return nil, fmt.Errorf("loading AWS credentials for the source account: %w (set source.profile or the standard AWS environment)", err)
	}
	tgtCfg, err := load(&p.Target)
	if err != nil {
		return nil, fmt.Errorf("loading AWS credentials for the target account: %w (set target.profile or target.role_arn)", err)
	}
	if p.Target.RoleARN != "" {
		prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(srcCfg), p.Target.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "pitcrew-" + p.Name
		})
		tgtCfg.Credentials = aws.NewCredentialsCache(prov)
	}
	c := &clients{source: newAccount("source", p.Source, srcCfg), target: newAccount("target", p.Target, tgtCfg)}
	for _, a := range []struct {
		role string
		cfg  aws.Config
		want string
	}{{"source", srcCfg, p.Source.Account}, {"target", tgtCfg, p.Target.Account}} {
		id, err := sts.NewFromConfig(a.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, fmt.Errorf("checking the %s account's credentials: %w", a.role, err)
		}
		if aws.ToString(id.Account) != a.want {
			return nil, fmt.Errorf("the %s credentials belong to account %s, the plan says %s: fix %s.profile / %s.role_arn", a.role, aws.ToString(id.Account), a.want, a.role, a.role)
		}
	}
	cl.c = c
	return c, nil
}

func newAccount(role string, s Side, cfg aws.Config) *account {
	return &account{
		role: role, id: s.Account, region: s.Region,
		rds: rds.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg),
		r53: route53.NewFromConfig(cfg), cw: cloudwatch.NewFromConfig(cfg),
	}
}

// isCode tells whether err is an AWS API error with one of the codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

// waitDelays sets a waiter's polling to the plan's interval.
func (cl *cloud) waitDelays() (time.Duration, time.Duration) {
	return cl.plan.Options.PollInterval, 4 * cl.plan.Options.PollInterval
}

// Names of what the runbook creates: derived from the plan, so a resumed
// step (and the preview) knows them without asking AWS.
func (p *Plan) snapshotID() string       { return "pitcrew-" + p.Name + "-source" }
func (p *Plan) sharedSnapshotID() string { return "pitcrew-" + p.Name + "-shared" }
func (p *Plan) targetSnapshotID() string { return "pitcrew-" + p.Name + "-target" }
func (p *Plan) finalSnapshotID() string  { return "pitcrew-" + p.Name + "-final" }
func (p *Plan) keyAlias() string         { return "alias/pitcrew-" + p.Name }
func (p *Plan) sharedSnapshotARN() string {
	return fmt.Sprintf("arn:aws:rds:%s:%s:snapshot:%s", p.Source.Region, p.Source.Account, p.sharedSnapshotID())
}

// tagKey marks everything the runbook creates, so take-down finds it.
const tagKey = "pitcrew:migration"
