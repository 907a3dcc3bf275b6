package infra

import (
	"slices"
	"strings"
	"testing"
)

func TestGTIDRungs(t *testing.T) {
	for cur, want := range map[string][]string{
		"OFF":            {"OFF_PERMISSIVE", "ON_PERMISSIVE", "ON"},
		"off_permissive": {"ON_PERMISSIVE", "ON"},
		"ON_PERMISSIVE":  {"ON"},
		"ON":             {},
	} {
		if got := gtidRungs(cur); !slices.Equal(got, want) {
			t.Errorf("gtidRungs(%s) = %v, want %v", cur, got, want)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	base := func() *Plan {
		p := newPlan(t, 3306, 3307)
		return p
	}
	for name, tc := range map[string]struct {
		edit func(*Plan)
		want string
	}{
		"overlap":        {func(p *Plan) { p.Target.VPC.CIDR = "10.0.5.0/24" }, "overlaps"},
		"bad cidr":       {func(p *Plan) { p.Source.VPC.CIDR = "10.0.0.0" }, "not a CIDR"},
		"same account":   {func(p *Plan) { p.Target.Account = p.Source.Account }, "both 111111111111"},
		"one account":    {func(p *Plan) { p.Target.Account = "" }, "only one side has an account"},
		"aws key":        {func(p *Plan) { p.Source.KMSKey = "arn:aws:kms:eu-west-1:111111111111:alias/aws/rds" }, "AWS-managed"},
		"name":           {func(p *Plan) { p.Name = "Shop_Move" }, "lowercase"},
		"role + profile": {func(p *Plan) { p.Target.Profile = "x" }, "both role_arn and profile"},
		"lock no users":  {func(p *Plan) { p.Options.Fence = FenceLockUsers }, "app_users"},
		"weights":        {func(p *Plan) { p.DNS.Weights = []int64{50, 20, 100} }, "increasing"},
	} {
		p := base()
		tc.edit(p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if err := base().Validate(); err != nil {
		t.Errorf("the test plan is invalid: %v", err)
	}
}
