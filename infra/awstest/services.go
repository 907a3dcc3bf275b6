package awstest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

func (m *Model) sts(a *Account, op string, in any) (any, error) {
	switch op {
	case "GetCallerIdentity":
		return &sts.GetCallerIdentityOutput{Account: aws.String(a.ID), Arn: aws.String("arn:aws:iam::" + a.ID + ":user/test")}, nil
	case "AssumeRole":
		arn := aws.ToString(in.(*sts.AssumeRoleInput).RoleArn)
		parts := strings.Split(arn, ":")
		if len(parts) < 5 || m.accounts[parts[4]] == nil {
			return nil, apiErr("AccessDenied", "cannot assume "+arn)
		}
		key := "ASIATEST" + parts[4]
		m.keys[key] = parts[4]
		exp := time.Now().Add(time.Hour)
		return &sts.AssumeRoleOutput{Credentials: &ststypes.Credentials{AccessKeyId: aws.String(key), SecretAccessKey: aws.String("s"), SessionToken: aws.String("t"), Expiration: &exp}}, nil
	}
	return nil, apiErr("UnknownOperation", "STS "+op)
}

func (m *Model) rds(a *Account, op string, in any) (any, error) {
	switch op {
	case "DescribeDBInstances":
		id := aws.ToString(in.(*rds.DescribeDBInstancesInput).DBInstanceIdentifier)
		if id == "" { // every instance of the account, by identifier
			var all []rdstypes.DBInstance
			for _, k := range slices.Sorted(maps.Keys(a.Instances)) {
				all = append(all, a.instance(a.Instances[k]))
			}
			return &rds.DescribeDBInstancesOutput{DBInstances: all}, nil
		}
		inst := a.Instances[id]
		if inst == nil {
			return nil, apiErr("DBInstanceNotFound", "DBInstance "+id+" not found.")
		}
		if inst.pending > 0 {
			if inst.pending--; inst.pending == 0 {
				if inst.Status == "deleting" {
					delete(a.Instances, id)
				} else {
					inst.Status = "available"
				}
			}
		}
		return &rds.DescribeDBInstancesOutput{DBInstances: []rdstypes.DBInstance{a.instance(inst)}}, nil
	case "DescribeDBParameters":
		g := aws.ToString(in.(*rds.DescribeDBParametersInput).DBParameterGroupName)
		params, ok := a.Params[g]
		if !ok {
			return nil, apiErr("DBParameterGroupNotFound", g)
		}
		var ps []rdstypes.Parameter
		for _, k := range slices.Sorted(maps.Keys(params)) {
			ps = append(ps, rdstypes.Parameter{ParameterName: aws.String(k), ParameterValue: aws.String(params[k])})
		}
		return &rds.DescribeDBParametersOutput{Parameters: ps}, nil
	case "ModifyDBParameterGroup":
		x := in.(*rds.ModifyDBParameterGroupInput)
		g := aws.ToString(x.DBParameterGroupName)
		if a.Params[g] == nil {
			return nil, apiErr("DBParameterGroupNotFound", g)
		}
		for _, p := range x.Parameters {
			a.Params[g][aws.ToString(p.ParameterName)] = aws.ToString(p.ParameterValue)
			m.applied = append(m.applied, Parameter{Account: a.ID, Group: g, Name: aws.ToString(p.ParameterName), Value: aws.ToString(p.ParameterValue)})
		}
		return &rds.ModifyDBParameterGroupOutput{DBParameterGroupName: x.DBParameterGroupName}, nil
	case "CreateDBSnapshot":
		x := in.(*rds.CreateDBSnapshotInput)
		id, inst := aws.ToString(x.DBSnapshotIdentifier), a.Instances[aws.ToString(x.DBInstanceIdentifier)]
		if a.Snapshots[id] != nil {
			return nil, apiErr("DBSnapshotAlreadyExists", "Cannot create the snapshot because a snapshot with the identifier "+id+" already exists.")
		}
		if inst == nil {
			return nil, apiErr("DBInstanceNotFound", aws.ToString(x.DBInstanceIdentifier))
		}
		a.Snapshots[id] = &Snapshot{ID: id, Instance: inst.ID, Status: "creating", KMSKey: inst.KMSKey, Engine: inst.Engine, pending: m.polls()}
		return &rds.CreateDBSnapshotOutput{DBSnapshot: a.snapshot(a.Snapshots[id])}, nil
	case "DescribeDBSnapshots":
		id := aws.ToString(in.(*rds.DescribeDBSnapshotsInput).DBSnapshotIdentifier)
		s := a.Snapshots[id]
		if s == nil {
			return nil, apiErr("DBSnapshotNotFound", "DBSnapshot "+id+" not found.")
		}
		if s.pending > 0 {
			if s.pending--; s.pending == 0 {
				s.Status = "available"
			}
		}
		return &rds.DescribeDBSnapshotsOutput{DBSnapshots: []rdstypes.DBSnapshot{*a.snapshot(s)}}, nil
	case "CopyDBSnapshot":
		return m.copySnapshot(a, in.(*rds.CopyDBSnapshotInput))
	case "ModifyDBSnapshotAttribute":
		x := in.(*rds.ModifyDBSnapshotAttributeInput)
		s := a.Snapshots[aws.ToString(x.DBSnapshotIdentifier)]
		if s == nil {
			return nil, apiErr("DBSnapshotNotFound", aws.ToString(x.DBSnapshotIdentifier))
		}
		if k := a.Keys[keyID(s.KMSKey)]; k != nil && k.AWSManaged {
			return nil, apiErr("InvalidParameter", "Snapshots encrypted with the AWS managed KMS key can't be shared.")
		}
		for _, v := range x.ValuesToAdd {
			if !slices.Contains(s.SharedWith, v) {
				s.SharedWith = append(s.SharedWith, v)
			}
		}
		return &rds.ModifyDBSnapshotAttributeOutput{}, nil
	case "RestoreDBInstanceFromDBSnapshot":
		x := in.(*rds.RestoreDBInstanceFromDBSnapshotInput)
		id := aws.ToString(x.DBInstanceIdentifier)
		if a.Instances[id] != nil {
			return nil, apiErr("DBInstanceAlreadyExists", "DB instance already exists")
		}
		s := a.Snapshots[aws.ToString(x.DBSnapshotIdentifier)]
		if s == nil || s.Status != "available" {
			return nil, apiErr("DBSnapshotNotFound", aws.ToString(x.DBSnapshotIdentifier))
		}
		a.Instances[id] = &Instance{ID: id, Status: "creating", Engine: s.Engine, ParameterGroup: aws.ToString(x.DBParameterGroupName),
			Host: "127.0.0.1", Port: 3306, KMSKey: s.KMSKey, BackupRetention: aws.ToInt32(x.BackupRetentionPeriod), pending: m.polls()}
		return &rds.RestoreDBInstanceFromDBSnapshotOutput{}, nil
	case "DeleteDBInstance":
		x := in.(*rds.DeleteDBInstanceInput)
		inst := a.Instances[aws.ToString(x.DBInstanceIdentifier)]
		if inst == nil {
			return nil, apiErr("DBInstanceNotFound", aws.ToString(x.DBInstanceIdentifier))
		}
		if f := aws.ToString(x.FinalDBSnapshotIdentifier); f != "" {
			inst.FinalSnapshot = f
			a.Snapshots[f] = &Snapshot{ID: f, Instance: inst.ID, Status: "available", KMSKey: inst.KMSKey, Engine: inst.Engine}
		}
		inst.Status, inst.pending = "deleting", m.polls()
		return &rds.DeleteDBInstanceOutput{}, nil
	case "DeleteDBSnapshot":
		id := aws.ToString(in.(*rds.DeleteDBSnapshotInput).DBSnapshotIdentifier)
		if a.Snapshots[id] == nil {
			return nil, apiErr("DBSnapshotNotFound", id)
		}
		delete(a.Snapshots, id)
		return &rds.DeleteDBSnapshotOutput{}, nil
	}
	return nil, apiErr("UnknownOperation", "RDS "+op)
}

func (a *Account) instance(inst *Instance) rdstypes.DBInstance {
	return rdstypes.DBInstance{
		DBInstanceIdentifier: aws.String(inst.ID), DBInstanceStatus: aws.String(inst.Status), Engine: aws.String(inst.Engine),
		BackupRetentionPeriod: aws.Int32(inst.BackupRetention), KmsKeyId: aws.String(inst.KMSKey),
		DBParameterGroups: []rdstypes.DBParameterGroupStatus{{DBParameterGroupName: aws.String(inst.ParameterGroup), ParameterApplyStatus: aws.String("in-sync")}},
		Endpoint:          &rdstypes.Endpoint{Address: aws.String(inst.Host), Port: aws.Int32(inst.Port)},
	}
}

func (a *Account) snapshot(s *Snapshot) *rdstypes.DBSnapshot {
	return &rdstypes.DBSnapshot{
		DBSnapshotIdentifier: aws.String(s.ID), DBInstanceIdentifier: aws.String(s.Instance), Status: aws.String(s.Status),
		KmsKeyId: aws.String(s.KMSKey), Encrypted: aws.Bool(s.KMSKey != ""), Engine: aws.String(s.Engine),
		DBSnapshotArn: aws.String(fmt.Sprintf("arn:aws:rds:%s:%s:snapshot:%s", a.Region, a.ID, s.ID)),
	}
}

func keyID(ref string) string {
	if i := strings.LastIndex(ref, "key/"); i >= 0 {
		return ref[i+4:]
	}
	return ref
}

// copySnapshot copies within an account or, by ARN, from an account that
// shared the snapshot; a key must be usable by the copying account.
func (m *Model) copySnapshot(a *Account, x *rds.CopyDBSnapshotInput) (any, error) {
	src := aws.ToString(x.SourceDBSnapshotIdentifier)
	owner := a
	if strings.HasPrefix(src, "arn:") {
		parts := strings.Split(src, ":")
		owner = m.accounts[parts[4]]
		src = parts[len(parts)-1]
		if owner == nil {
			return nil, apiErr("DBSnapshotNotFound", src)
		}
	}
	s := owner.Snapshots[src]
	if s == nil || s.Status != "available" {
		return nil, apiErr("DBSnapshotNotFound", "DBSnapshot "+src+" not found.")
	}
	if owner != a {
		if !slices.Contains(s.SharedWith, a.ID) {
			return nil, apiErr("DBSnapshotNotFound", "snapshot "+src+" is not shared with account "+a.ID)
		}
		k := owner.Keys[keyID(s.KMSKey)]
		if k == nil || k.AWSManaged || !strings.Contains(k.Policy, a.ID) {
			return nil, apiErr("KMSKeyNotAccessibleFault", "the snapshot's KMS key does not grant account "+a.ID)
		}
	}
	id := aws.ToString(x.TargetDBSnapshotIdentifier)
	if a.Snapshots[id] != nil {
		return nil, apiErr("DBSnapshotAlreadyExists", "snapshot "+id+" already exists")
	}
	key := s.KMSKey
	if x.KmsKeyId != nil {
		k, err := a.resolveKey(aws.ToString(x.KmsKeyId), m)
		if err != nil {
			return nil, err
		}
		key = k
	}
	a.Snapshots[id] = &Snapshot{ID: id, Instance: s.Instance, Status: "creating", KMSKey: key, Engine: s.Engine, pending: m.polls()}
	return &rds.CopyDBSnapshotOutput{DBSnapshot: a.snapshot(a.Snapshots[id])}, nil
}

// resolveKey turns an id, ARN or alias into the key's ARN.
func (a *Account) resolveKey(ref string, m *Model) (string, error) {
	owner := a
	if strings.HasPrefix(ref, "arn:") {
		owner = m.accounts[strings.Split(ref, ":")[4]]
		if owner == nil {
			return "", apiErr("NotFoundException", "key "+ref+" not found")
		}
		ref = ref[strings.LastIndex(ref, ":")+1:]
	}
	id := strings.TrimPrefix(ref, "key/")
	if strings.HasPrefix(ref, "alias/") {
		id = owner.Aliases[ref]
	}
	k := owner.Keys[id]
	if k == nil {
		return "", apiErr("NotFoundException", "Alias or key "+ref+" is not found.")
	}
	return owner.keyARN(k.ID), nil
}

func (m *Model) kms(a *Account, op string, in any) (any, error) {
	switch op {
	case "DescribeKey":
		arn, err := a.resolveKey(aws.ToString(in.(*kms.DescribeKeyInput).KeyId), m)
		if err != nil {
			return nil, err
		}
		owner := m.accounts[strings.Split(arn, ":")[4]]
		k := owner.Keys[keyID(arn)]
		mgr := kmstypes.KeyManagerTypeCustomer
		if k.AWSManaged {
			mgr = kmstypes.KeyManagerTypeAws
		}
		return &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: aws.String(k.ID), Arn: aws.String(arn), KeyManager: mgr, KeyState: kmstypes.KeyState(k.State), Enabled: k.State == "Enabled"}}, nil
	case "CreateKey":
		x := in.(*kms.CreateKeyInput)
		k := &Key{ID: m.next("key-"), Policy: aws.ToString(x.Policy), State: "Enabled"}
		a.Keys[k.ID] = k
		return &kms.CreateKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: aws.String(k.ID), Arn: aws.String(a.keyARN(k.ID)), KeyManager: kmstypes.KeyManagerTypeCustomer}}, nil
	case "CreateAlias":
		x := in.(*kms.CreateAliasInput)
		name := aws.ToString(x.AliasName)
		if _, ok := a.Aliases[name]; ok {
			return nil, apiErr("AlreadyExistsException", "An alias with the name "+name+" already exists")
		}
		a.Aliases[name] = keyID(aws.ToString(x.TargetKeyId))
		return &kms.CreateAliasOutput{}, nil
	case "ScheduleKeyDeletion":
		x := in.(*kms.ScheduleKeyDeletionInput)
		k := a.Keys[keyID(aws.ToString(x.KeyId))]
		if k == nil {
			return nil, apiErr("NotFoundException", aws.ToString(x.KeyId))
		}
		if k.State == "PendingDeletion" {
			return nil, apiErr("KMSInvalidStateException", "key is pending deletion")
		}
		k.State, k.DeletionDays = "PendingDeletion", aws.ToInt32(x.PendingWindowInDays)
		return &kms.ScheduleKeyDeletionOutput{KeyId: x.KeyId}, nil
	}
	return nil, apiErr("UnknownOperation", "KMS "+op)
}

func (m *Model) ec2(a *Account, op string, in any) (any, error) {
	switch op {
	case "CreateVpcPeeringConnection":
		x := in.(*ec2.CreateVpcPeeringConnectionInput)
		p := &Peering{ID: m.next("pcx-"), Requester: aws.ToString(x.VpcId), Accepter: aws.ToString(x.PeerVpcId), PeerOwner: aws.ToString(x.PeerOwnerId), Status: "pending-acceptance"}
		for _, ts := range x.TagSpecifications {
			for _, t := range ts.Tags {
				p.Tag = aws.ToString(t.Value)
			}
		}
		a.Peerings[p.ID] = p
		if peer := m.accounts[p.PeerOwner]; peer != nil && peer != a {
			peer.Peerings[p.ID] = p // one object, visible from both accounts
		}
		return &ec2.CreateVpcPeeringConnectionOutput{VpcPeeringConnection: peering(p)}, nil
	case "DescribeVpcPeeringConnections":
		x := in.(*ec2.DescribeVpcPeeringConnectionsInput)
		var out []ec2types.VpcPeeringConnection
		for _, id := range slices.Sorted(maps.Keys(a.Peerings)) {
			p := a.Peerings[id]
			if len(x.VpcPeeringConnectionIds) > 0 && !slices.Contains(x.VpcPeeringConnectionIds, id) {
				continue
			}
			if len(x.Filters) > 0 && !slices.Contains(x.Filters[0].Values, p.Tag) {
				continue
			}
			out = append(out, *peering(p))
		}
		return &ec2.DescribeVpcPeeringConnectionsOutput{VpcPeeringConnections: out}, nil
	case "AcceptVpcPeeringConnection":
		p := a.Peerings[aws.ToString(in.(*ec2.AcceptVpcPeeringConnectionInput).VpcPeeringConnectionId)]
		if p == nil || p.PeerOwner != a.ID {
			return nil, apiErr("InvalidVpcPeeringConnectionID.NotFound", "no such peering for this account to accept")
		}
		p.Status = "active"
		return &ec2.AcceptVpcPeeringConnectionOutput{VpcPeeringConnection: peering(p)}, nil
	case "DeleteVpcPeeringConnection":
		id := aws.ToString(in.(*ec2.DeleteVpcPeeringConnectionInput).VpcPeeringConnectionId)
		p := a.Peerings[id]
		if p == nil || p.Status == "deleted" {
			return nil, apiErr("InvalidVpcPeeringConnectionID.NotFound", id)
		}
		p.Status = "deleted"
		return &ec2.DeleteVpcPeeringConnectionOutput{Return: aws.Bool(true)}, nil
	case "CreateRoute":
		x := in.(*ec2.CreateRouteInput)
		k := aws.ToString(x.RouteTableId) + " " + aws.ToString(x.DestinationCidrBlock)
		if _, ok := a.Routes[k]; ok {
			return nil, apiErr("RouteAlreadyExists", "route "+k+" already exists")
		}
		a.Routes[k] = aws.ToString(x.VpcPeeringConnectionId)
		return &ec2.CreateRouteOutput{Return: aws.Bool(true)}, nil
	case "DeleteRoute":
		x := in.(*ec2.DeleteRouteInput)
		k := aws.ToString(x.RouteTableId) + " " + aws.ToString(x.DestinationCidrBlock)
		if _, ok := a.Routes[k]; !ok {
			return nil, apiErr("InvalidRoute.NotFound", k)
		}
		delete(a.Routes, k)
		return &ec2.DeleteRouteOutput{}, nil
	case "AuthorizeSecurityGroupIngress":
		x := in.(*ec2.AuthorizeSecurityGroupIngressInput)
		for _, p := range x.IpPermissions {
			for _, r := range p.IpRanges {
				for _, old := range a.Rules {
					if old.Group == aws.ToString(x.GroupId) && old.CIDR == aws.ToString(r.CidrIp) && old.Port == aws.ToInt32(p.FromPort) {
						return nil, apiErr("InvalidPermission.Duplicate", "the specified rule already exists")
					}
				}
				rule := &Rule{ID: m.next("sgr-"), Group: aws.ToString(x.GroupId), CIDR: aws.ToString(r.CidrIp), Port: aws.ToInt32(p.FromPort)}
				for _, ts := range x.TagSpecifications {
					for _, t := range ts.Tags {
						rule.Tag = aws.ToString(t.Value)
					}
				}
				a.Rules[rule.ID] = rule
			}
		}
		return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
	case "DescribeSecurityGroupRules":
		x := in.(*ec2.DescribeSecurityGroupRulesInput)
		var out []ec2types.SecurityGroupRule
		for _, id := range slices.Sorted(maps.Keys(a.Rules)) {
			r := a.Rules[id]
			if len(x.Filters) > 0 && !slices.Contains(x.Filters[0].Values, r.Tag) {
				continue
			}
			out = append(out, ec2types.SecurityGroupRule{SecurityGroupRuleId: aws.String(r.ID), GroupId: aws.String(r.Group), CidrIpv4: aws.String(r.CIDR)})
		}
		return &ec2.DescribeSecurityGroupRulesOutput{SecurityGroupRules: out}, nil
	case "RevokeSecurityGroupIngress":
		x := in.(*ec2.RevokeSecurityGroupIngressInput)
		for _, id := range x.SecurityGroupRuleIds {
			if a.Rules[id] == nil {
				return nil, apiErr("InvalidSecurityGroupRuleId.NotFound", id)
			}
			delete(a.Rules, id)
		}
		return &ec2.RevokeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
	}
	return nil, apiErr("UnknownOperation", "EC2 "+op)
}

func peering(p *Peering) *ec2types.VpcPeeringConnection {
	return &ec2types.VpcPeeringConnection{
		VpcPeeringConnectionId: aws.String(p.ID),
		Status:                 &ec2types.VpcPeeringConnectionStateReason{Code: ec2types.VpcPeeringConnectionStateReasonCode(p.Status)},
		Tags:                   []ec2types.Tag{{Key: aws.String("pitcrew:migration"), Value: aws.String(p.Tag)}},
	}
}

func recordKey(name string, typ r53types.RRType, set string) string {
	return strings.ToLower(name) + " " + string(typ) + " " + set
}

func (m *Model) route53(a *Account, op string, in any) (any, error) {
	switch op {
	case "ListResourceRecordSets":
		x := in.(*route53.ListResourceRecordSetsInput)
		zone := a.Records[strings.TrimPrefix(aws.ToString(x.HostedZoneId), "/hostedzone/")]
		if zone == nil {
			return nil, apiErr("NoSuchHostedZone", aws.ToString(x.HostedZoneId))
		}
		var out []r53types.ResourceRecordSet
		for _, k := range slices.Sorted(maps.Keys(zone)) {
			out = append(out, rrset(zone[k]))
		}
		return &route53.ListResourceRecordSetsOutput{ResourceRecordSets: out}, nil
	case "ChangeResourceRecordSets":
		x := in.(*route53.ChangeResourceRecordSetsInput)
		zone := a.Records[aws.ToString(x.HostedZoneId)]
		if zone == nil {
			return nil, apiErr("NoSuchHostedZone", aws.ToString(x.HostedZoneId))
		}
		next := map[string]*Record{}
		for k, v := range zone {
			next[k] = v
		}
		for _, c := range x.ChangeBatch.Changes {
			rr := c.ResourceRecordSet
			k := recordKey(aws.ToString(rr.Name), rr.Type, aws.ToString(rr.SetIdentifier))
			switch c.Action {
			case r53types.ChangeActionDelete:
				if next[k] == nil {
					return nil, apiErr("InvalidChangeBatch", "Tried to delete resource record set ["+k+"] but it was not found")
				}
				delete(next, k)
			case r53types.ChangeActionCreate, r53types.ChangeActionUpsert:
				if c.Action == r53types.ChangeActionCreate && next[k] != nil {
					return nil, apiErr("InvalidChangeBatch", "Tried to create resource record set ["+k+"] but it already exists")
				}
				rec := &Record{Name: aws.ToString(rr.Name), Type: string(rr.Type), SetID: aws.ToString(rr.SetIdentifier), Weight: aws.ToInt64(rr.Weight), TTL: aws.ToInt64(rr.TTL)}
				if rr.AliasTarget != nil {
					rec.Alias = aws.ToString(rr.AliasTarget.DNSName)
				}
				if len(rr.ResourceRecords) > 0 {
					rec.Value = aws.ToString(rr.ResourceRecords[0].Value)
				}
				next[k] = rec
			}
		}
		// A plain record and weighted ones of one name and type cannot coexist.
		for k, r := range next {
			if r.SetID == "" {
				for k2, r2 := range next {
					if k2 != k && strings.EqualFold(r2.Name, r.Name) && r2.Type == r.Type {
						return nil, apiErr("InvalidChangeBatch", "RRSet of type "+r.Type+" with DNS name "+r.Name+" is not permitted because a conflicting RRSet exists")
					}
				}
			}
		}
		a.Records[aws.ToString(x.HostedZoneId)] = next
		id := "/change/" + m.next("C")
		a.Changes[id] = m.polls()
		now := time.Now()
		return &route53.ChangeResourceRecordSetsOutput{ChangeInfo: &r53types.ChangeInfo{Id: aws.String(id), Status: r53types.ChangeStatusPending, SubmittedAt: &now}}, nil
	case "GetChange":
		id := aws.ToString(in.(*route53.GetChangeInput).Id)
		if !strings.HasPrefix(id, "/change/") {
			id = "/change/" + id
		}
		left, ok := a.Changes[id]
		if !ok {
			return nil, apiErr("NoSuchChange", id)
		}
		st := r53types.ChangeStatusInsync
		if left > 0 {
			a.Changes[id] = left - 1
			st = r53types.ChangeStatusPending
		}
		now := time.Now()
		return &route53.GetChangeOutput{ChangeInfo: &r53types.ChangeInfo{Id: aws.String(id), Status: st, SubmittedAt: &now}}, nil
	}
	return nil, apiErr("UnknownOperation", "Route 53 "+op)
}

func rrset(r *Record) r53types.ResourceRecordSet {
	out := r53types.ResourceRecordSet{Name: aws.String(r.Name), Type: r53types.RRType(r.Type)}
	if r.SetID != "" {
		out.SetIdentifier, out.Weight = aws.String(r.SetID), aws.Int64(r.Weight)
	}
	if r.Alias != "" {
		out.AliasTarget = &r53types.AliasTarget{DNSName: aws.String(r.Alias), HostedZoneId: aws.String("Z32O12XQLNTSW2")}
	} else {
		out.TTL = aws.Int64(r.TTL)
		out.ResourceRecords = []r53types.ResourceRecord{{Value: aws.String(r.Value)}}
	}
	return out
}

func (m *Model) cloudwatch(a *Account, op string, in any) (any, error) {
	if op != "GetMetricData" {
		return nil, apiErr("UnknownOperation", "CloudWatch "+op)
	}
	x := in.(*cloudwatch.GetMetricDataInput)
	var values []float64
	if len(a.Requests) > 0 {
		values, a.Requests = a.Requests[0], a.Requests[1:]
	}
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range x.MetricDataQueries {
		out.MetricDataResults = append(out.MetricDataResults, cwResult(aws.ToString(q.Id), values))
	}
	return out, nil
}

func cwResult(id string, values []float64) cwtypes.MetricDataResult {
	ts := make([]time.Time, len(values))
	for i := range ts {
		ts[i] = time.Now().Add(-time.Duration(i) * time.Minute)
	}
	return cwtypes.MetricDataResult{Id: aws.String(id), Values: values, Timestamps: ts, StatusCode: cwtypes.StatusCodeComplete}
}
