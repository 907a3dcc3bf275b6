package infra

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

var stepNetwork = step{
	id:    "network",
	title: "VPC peering (request, accept), routes both ways, security-group ingress for the databases",
	skip: func(p *Plan) string {
		if why := needsAWS(p); why != "" {
			return why
		}
		if p.Source.VPC == nil {
			return "no source.vpc/target.vpc: the networks already reach each other"
		}
		return ""
	},
	actions: func(p *Plan) []Action {
		s, t := p.Source.VPC, p.Target.VPC
		a := []Action{
			{srcWhere(p), fmt.Sprintf("ec2:DescribeVpcPeeringConnections Filter tag:%s=%s (reused when it exists)", tagKey, p.Name)},
			{srcWhere(p), fmt.Sprintf("ec2:CreateVpcPeeringConnection VpcId=%s PeerVpcId=%s PeerOwnerId=%s PeerRegion=%s", s.ID, t.ID, p.Target.Account, p.Target.Region)},
			{tgtWhere(p), "ec2:AcceptVpcPeeringConnection VpcPeeringConnectionId=<peering>; wait until active"},
		}
		if s.SharedPeering != "" {
			a = []Action{{srcWhere(p), fmt.Sprintf("ec2:DescribeVpcPeeringConnections Filter tag:%s=%s (the shared peering; refused when missing); wait until active", tagKey, s.SharedPeering)}}
		}
		for _, rt := range s.RouteTables {
			a = append(a, Action{srcWhere(p), fmt.Sprintf("ec2:CreateRoute RouteTableId=%s DestinationCidrBlock=%s VpcPeeringConnectionId=<peering>", rt, t.CIDR)})
		}
		for _, rt := range t.RouteTables {
			a = append(a, Action{tgtWhere(p), fmt.Sprintf("ec2:CreateRoute RouteTableId=%s DestinationCidrBlock=%s VpcPeeringConnectionId=<peering>", rt, s.CIDR)})
		}
		for _, g := range s.SecurityGroups {
			a = append(a, Action{srcWhere(p), fmt.Sprintf("ec2:AuthorizeSecurityGroupIngress GroupId=%s tcp/%d from %s (tagged %s)", g, p.Source.Database.Port, t.CIDR, tagKey)})
		}
		for _, g := range t.SecurityGroups {
			a = append(a, Action{tgtWhere(p), fmt.Sprintf("ec2:AuthorizeSecurityGroupIngress GroupId=%s tcp/%d from %s (tagged %s)", g, p.Target.Database.Port, s.CIDR, tagKey)})
		}
		return a
	},
	run: func(ctx context.Context, r *run) error { return r.cloudStep().network(ctx) },
}

func tagSpec(rt ec2types.ResourceType, name string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{{Key: aws.String(tagKey), Value: aws.String(name)}}}}
}

func (r cloudStep) network(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	id, err := r.peering(ctx, c)
	if err != nil {
		return err
	}
	if err := r.record("peering_id", id); err != nil {
		return err
	}
	if err := r.awaitPeering(ctx, c, id); err != nil {
		return err
	}
	if err := createRoutes(ctx, c, r.p, id); err != nil {
		return err
	}
	return r.allowIngress(ctx, c)
}

// peering is the peering of this migration (or the shared one): the
// journal's, one found by its tag, or one requested now.
func (r cloudStep) peering(ctx context.Context, c *clients) (string, error) {
	s, t := r.p.Source.VPC, r.p.Target.VPC
	id := r.output("peering_id")
	if id == "" {
		owner := r.p.Name
		if s.SharedPeering != "" {
			owner = s.SharedPeering
		}
		var err error
		if id, err = findPeering(ctx, c.source, owner); err != nil {
			return "", err
		}
		if id == "" && s.SharedPeering != "" {
			return "", fmt.Errorf("no peering tagged %s=%s in account %s: source.vpc.shared_peering names a peering that does not exist; run 'pitcrew fleet apply' (it makes one per account pair) or clear shared_peering", tagKey, s.SharedPeering, r.p.Source.Account)
		}
	}
	if id == "" {
		out, err := c.source.ec2.CreateVpcPeeringConnection(ctx, &ec2.CreateVpcPeeringConnectionInput{
			VpcId: aws.String(s.ID), PeerVpcId: aws.String(t.ID), PeerOwnerId: aws.String(r.p.Target.Account), PeerRegion: aws.String(r.p.Target.Region),
			TagSpecifications: tagSpec(ec2types.ResourceTypeVpcPeeringConnection, r.p.Name),
		})
		if err != nil {
			return "", fmt.Errorf("ec2:CreateVpcPeeringConnection %s -> %s: %w", s.ID, t.ID, err)
		}
		id = aws.ToString(out.VpcPeeringConnection.VpcPeeringConnectionId)
		r.say("requested peering %s", id)
	}
	return id, nil
}

// awaitPeering accepts the peering in the target account and waits until
// it is active; a failed one is forgotten (resume requests a new one).
func (r cloudStep) awaitPeering(ctx context.Context, c *clients, id string) error {
	return r.poll(ctx, "peering "+id+" to become active", func(ctx context.Context) (bool, error) {
		out, err := c.target.ec2.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{VpcPeeringConnectionIds: []string{id}})
		if err != nil {
			return false, fmt.Errorf("ec2:DescribeVpcPeeringConnections %s: %w", id, err)
		}
		if len(out.VpcPeeringConnections) == 0 || out.VpcPeeringConnections[0].Status == nil {
			return false, nil
		}
		switch code := out.VpcPeeringConnections[0].Status.Code; code {
		case ec2types.VpcPeeringConnectionStateReasonCodeActive:
			return true, nil
		case ec2types.VpcPeeringConnectionStateReasonCodePendingAcceptance:
			if _, err := c.target.ec2.AcceptVpcPeeringConnection(ctx, &ec2.AcceptVpcPeeringConnectionInput{VpcPeeringConnectionId: aws.String(id)}); err != nil {
				return false, fmt.Errorf("ec2:AcceptVpcPeeringConnection %s in account %s: %w", id, r.p.Target.Account, err)
			}
			r.say("accepted peering %s in account %s", id, r.p.Target.Account)
			return false, nil
		case ec2types.VpcPeeringConnectionStateReasonCodeInitiatingRequest, ec2types.VpcPeeringConnectionStateReasonCodeProvisioning:
			return false, nil
		default:
			if err := r.record("peering_id", ""); err != nil {
				return false, err
			}
			return false, fmt.Errorf("peering %s is %s (%s): resume requests a new one; check the VPC ids and the target account first", id, code, aws.ToString(out.VpcPeeringConnections[0].Status.Message))
		}
	})
}

// createRoutes routes each side's tables to the other's CIDR through the
// peering.
func createRoutes(ctx context.Context, c *clients, p *Plan, id string) error {
	s, t := p.Source.VPC, p.Target.VPC
	routes := []struct {
		a      *account
		tables []string
		cidr   string
	}{{c.source, s.RouteTables, t.CIDR}, {c.target, t.RouteTables, s.CIDR}}
	for _, rt := range routes {
		for _, table := range rt.tables {
			_, err := rt.a.ec2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(table), DestinationCidrBlock: aws.String(rt.cidr), VpcPeeringConnectionId: aws.String(id)})
			if err != nil && !isCode(err, "RouteAlreadyExists") {
				return fmt.Errorf("ec2:CreateRoute %s -> %s in %s: %w", table, rt.cidr, rt.a.where(), err)
			}
		}
	}
	return nil
}

// allowIngress lets each side's CIDR reach the other's database port,
// tagged so take-down finds the rules.
func (r cloudStep) allowIngress(ctx context.Context, c *clients) error {
	s, t := r.p.Source.VPC, r.p.Target.VPC
	rules := []struct {
		a      *account
		groups []string
		cidr   string
		port   int
	}{{c.source, s.SecurityGroups, t.CIDR, r.p.Source.Database.Port}, {c.target, t.SecurityGroups, s.CIDR, r.p.Target.Database.Port}}
	for _, rl := range rules {
		for _, g := range rl.groups {
			_, err := rl.a.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(g),
				IpPermissions: []ec2types.IpPermission{{
					IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(rl.port)), ToPort: aws.Int32(int32(rl.port)),
					IpRanges: []ec2types.IpRange{{CidrIp: aws.String(rl.cidr), Description: aws.String("pitcrew migration " + r.p.Name)}},
				}},
				TagSpecifications: tagSpec(ec2types.ResourceTypeSecurityGroupRule, r.p.Name),
			})
			if err != nil && !isCode(err, "InvalidPermission.Duplicate") {
				return fmt.Errorf("ec2:AuthorizeSecurityGroupIngress %s from %s: %w", g, rl.cidr, err)
			}
		}
	}
	return nil
}

// findPeering finds the peering this migration requested earlier (a crash
// between the request and the journal write leaves one behind).
func findPeering(ctx context.Context, a *account, name string) (string, error) {
	out, err := a.ec2.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + tagKey), Values: []string{name}}},
	})
	if err != nil {
		return "", fmt.Errorf("ec2:DescribeVpcPeeringConnections: %w", err)
	}
	for _, pc := range out.VpcPeeringConnections {
		if pc.Status == nil {
			continue
		}
		switch pc.Status.Code {
		case ec2types.VpcPeeringConnectionStateReasonCodeDeleted, ec2types.VpcPeeringConnectionStateReasonCodeDeleting,
			ec2types.VpcPeeringConnectionStateReasonCodeRejected, ec2types.VpcPeeringConnectionStateReasonCodeFailed,
			ec2types.VpcPeeringConnectionStateReasonCodeExpired:
			continue
		}
		return aws.ToString(pc.VpcPeeringConnectionId), nil
	}
	return "", nil
}

// taggedRules lists the security-group rules this migration added.
func taggedRules(ctx context.Context, a *account, name string) (map[string][]string, error) {
	out, err := a.ec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + tagKey), Values: []string{name}}},
	})
	if err != nil {
		return nil, fmt.Errorf("ec2:DescribeSecurityGroupRules: %w", err)
	}
	byGroup := map[string][]string{}
	for _, rule := range out.SecurityGroupRules {
		g := aws.ToString(rule.GroupId)
		byGroup[g] = append(byGroup[g], aws.ToString(rule.SecurityGroupRuleId))
	}
	return byGroup, nil
}
