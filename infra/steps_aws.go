package infra

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
)

func needsAWS(p *Plan) string {
	if !p.aws() {
		return "no source.account/target.account: the target database already exists (server-to-server move)"
	}
	return ""
}

func srcWhere(p *Plan) string {
	return fmt.Sprintf("source account %s (%s)", p.Source.Account, p.Source.Region)
}
func tgtWhere(p *Plan) string {
	return fmt.Sprintf("target account %s (%s)", p.Target.Account, p.Target.Region)
}

var stepShareKey = step{
	id:    "share-key",
	title: "customer-managed KMS key in the source account whose policy grants the target account",
	skip:  needsAWS,
	actions: func(p *Plan) []Action {
		if p.Source.KMSKey != "" {
			return []Action{{srcWhere(p), "kms:DescribeKey KeyId=" + p.Source.KMSKey + " (refused when AWS-managed: it cannot be shared)"}}
		}
		return []Action{
			{srcWhere(p), "kms:DescribeKey KeyId=" + p.keyAlias() + " (reused when it exists)"},
			{srcWhere(p), fmt.Sprintf("kms:CreateKey KeySpec=SYMMETRIC_DEFAULT Policy=<key admin: account %s; use (Decrypt, DescribeKey, CreateGrant, ReEncrypt*): account %s> Tags=%s=%s", p.Source.Account, p.Target.Account, tagKey, p.Name)},
			{srcWhere(p), "kms:CreateAlias AliasName=" + p.keyAlias() + " TargetKeyId=<new key>"},
		}
	},
	run: func(ctx context.Context, r *run) error { return r.cloudStep().shareKey(ctx) },
}

func (r cloudStep) shareKey(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	if r.output("key_arn") != "" {
		return r.createAlias(ctx, c, r.output("key_arn"))
	}
	ref := r.p.Source.KMSKey
	if ref == "" {
		ref = r.p.keyAlias()
	}
	d, err := c.source.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
	switch {
	case err == nil:
		if d.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeAws {
			return fmt.Errorf("KMS key %s is AWS-managed: its policy cannot grant account %s, so a snapshot encrypted with it cannot be shared; leave source.kms_key empty (pitcrew creates a customer-managed key) or name a customer-managed key", ref, r.p.Target.Account)
		}
		r.say("using KMS key %s", aws.ToString(d.KeyMetadata.Arn))
		return r.record("key_arn", aws.ToString(d.KeyMetadata.Arn))
	case r.p.Source.KMSKey != "" || !isCode(err, "NotFoundException"):
		return fmt.Errorf("kms:DescribeKey %s: %w", ref, err)
	}
	k, err := c.source.kms.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("pitcrew migration " + r.p.Name + ": shares the source snapshot with account " + r.p.Target.Account),
		Policy:      aws.String(sharePolicy(r.p.Source.Account, r.p.Target.Account)),
		Tags:        []kmstypes.Tag{{TagKey: aws.String(tagKey), TagValue: aws.String(r.p.Name)}},
	})
	if err != nil {
		return fmt.Errorf("kms:CreateKey: %w", err)
	}
	arn := aws.ToString(k.KeyMetadata.Arn)
	if err := r.record("key_arn", arn); err != nil {
		return err
	}
	r.say("created KMS key %s", arn)
	return r.createAlias(ctx, c, arn)
}

func (r cloudStep) createAlias(ctx context.Context, c *clients, arn string) error {
	if r.p.Source.KMSKey != "" {
		return nil
	}
	_, err := c.source.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(r.p.keyAlias()), TargetKeyId: aws.String(arn)})
	if err != nil && !isCode(err, "AlreadyExistsException") {
		return fmt.Errorf("kms:CreateAlias %s: %w", r.p.keyAlias(), err)
	}
	return nil
}

// sharePolicy lets the source account administer the key and the target
// account use it to copy the shared snapshot (RDS needs CreateGrant).
func sharePolicy(src, tgt string) string {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{"Sid": "Admin", "Effect": "Allow", "Principal": map[string]string{"AWS": "arn:aws:iam::" + src + ":root"}, "Action": "kms:*", "Resource": "*"},
			{"Sid": "TargetAccountUse", "Effect": "Allow", "Principal": map[string]string{"AWS": "arn:aws:iam::" + tgt + ":root"},
				"Action": []string{"kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*", "kms:GenerateDataKey*"}, "Resource": "*"},
		},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

var stepSnapshot = step{
	id:    "snapshot",
	title: "manual snapshot, copied re-encrypted with the shareable key, shared with the target account",
	skip:  needsAWS,
	actions: func(p *Plan) []Action {
		return []Action{
			{srcWhere(p), fmt.Sprintf("rds:CreateDBSnapshot DBInstanceIdentifier=%s DBSnapshotIdentifier=%s", p.Source.Instance, p.snapshotID())},
			{srcWhere(p), "wait rds:DescribeDBSnapshots until available"},
			{srcWhere(p), fmt.Sprintf("rds:CopyDBSnapshot SourceDBSnapshotIdentifier=%s TargetDBSnapshotIdentifier=%s KmsKeyId=<share key>", p.snapshotID(), p.sharedSnapshotID())},
			{srcWhere(p), "wait rds:DescribeDBSnapshots until available; kms:DescribeKey of its key (refused when AWS-managed)"},
			{srcWhere(p), fmt.Sprintf("rds:ModifyDBSnapshotAttribute DBSnapshotIdentifier=%s AttributeName=restore ValuesToAdd=%s", p.sharedSnapshotID(), p.Target.Account)},
		}
	},
	run: func(ctx context.Context, r *run) error { return r.cloudStep().snapshot(ctx) },
}

func (r cloudStep) snapshot(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	keyARN, err := r.outputOf("share-key", "key_arn")
	if err != nil {
		return err
	}
	tags := []rdstypes.Tag{{Key: aws.String(tagKey), Value: aws.String(r.p.Name)}}
	_, err = c.source.rds.CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{
		DBInstanceIdentifier: aws.String(r.p.Source.Instance), DBSnapshotIdentifier: aws.String(r.p.snapshotID()), Tags: tags,
	})
	if err != nil && !isCode(err, "DBSnapshotAlreadyExists") {
		return fmt.Errorf("rds:CreateDBSnapshot of %s: %w", r.p.Source.Instance, err)
	}
	if err := r.waitSnapshot(ctx, c.source, r.p.snapshotID()); err != nil {
		return err
	}
	_, err = c.source.rds.CopyDBSnapshot(ctx, &rds.CopyDBSnapshotInput{
		SourceDBSnapshotIdentifier: aws.String(r.p.snapshotID()), TargetDBSnapshotIdentifier: aws.String(r.p.sharedSnapshotID()),
		KmsKeyId: aws.String(keyARN), Tags: tags,
	})
	if err != nil && !isCode(err, "DBSnapshotAlreadyExists") {
		return fmt.Errorf("rds:CopyDBSnapshot to %s: %w", r.p.sharedSnapshotID(), err)
	}
	if err := r.waitSnapshot(ctx, c.source, r.p.sharedSnapshotID()); err != nil {
		return err
	}
	if err := r.refuseAWSManagedSnapshot(ctx, c, r.p.sharedSnapshotID()); err != nil {
		return err
	}
	_, err = c.source.rds.ModifyDBSnapshotAttribute(ctx, &rds.ModifyDBSnapshotAttributeInput{
		DBSnapshotIdentifier: aws.String(r.p.sharedSnapshotID()), AttributeName: aws.String("restore"), ValuesToAdd: []string{r.p.Target.Account},
	})
	if err != nil {
		return fmt.Errorf("rds:ModifyDBSnapshotAttribute (share %s with %s): %w", r.p.sharedSnapshotID(), r.p.Target.Account, err)
	}
	r.say("shared %s with account %s", r.p.sharedSnapshotARN(), r.p.Target.Account)
	return r.record("shared_snapshot_arn", r.p.sharedSnapshotARN())
}

// refuseAWSManagedSnapshot checks the key of a snapshot about to be shared:
// one encrypted with aws/rds cannot be restored by another account.
func (r cloudStep) refuseAWSManagedSnapshot(ctx context.Context, c *clients, id string) error {
	out, err := c.source.rds.DescribeDBSnapshots(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)})
	if err != nil {
		return fmt.Errorf("rds:DescribeDBSnapshots %s: %w", id, err)
	}
	if len(out.DBSnapshots) == 0 || out.DBSnapshots[0].KmsKeyId == nil {
		return nil // unencrypted snapshots share without a key
	}
	key := aws.ToString(out.DBSnapshots[0].KmsKeyId)
	d, err := c.source.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return fmt.Errorf("kms:DescribeKey %s (key of snapshot %s): %w", key, id, err)
	}
	if d.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeAws {
		return fmt.Errorf("snapshot %s is encrypted with the AWS-managed key %s (aws/rds): it cannot be shared with account %s; copy it re-encrypted with a customer-managed key (leave source.kms_key empty and pitcrew does) and share the copy", id, key, r.p.Target.Account)
	}
	return nil
}

func (r cloudStep) waitSnapshot(ctx context.Context, a *account, id string) error {
	r.say("waiting for snapshot %s in %s", id, a.where())
	minD, maxD := r.waitDelays()
	w := rds.NewDBSnapshotAvailableWaiter(a.rds, func(o *rds.DBSnapshotAvailableWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD })
	if err := w.Wait(ctx, &rds.DescribeDBSnapshotsInput{DBSnapshotIdentifier: aws.String(id)}, r.p.Options.Timeout); err != nil {
		return fmt.Errorf("waiting for snapshot %s to be available: %w", id, err)
	}
	return nil
}

var stepTargetCopy = step{
	id:    "target-copy",
	title: "in the target account: copy the shared snapshot with the target's own key",
	skip:  needsAWS,
	actions: func(p *Plan) []Action {
		return []Action{
			{tgtWhere(p), fmt.Sprintf("rds:CopyDBSnapshot SourceDBSnapshotIdentifier=%s TargetDBSnapshotIdentifier=%s KmsKeyId=%s", p.sharedSnapshotARN(), p.targetSnapshotID(), p.targetKey())},
			{tgtWhere(p), "wait rds:DescribeDBSnapshots until available"},
		}
	},
	run: func(ctx context.Context, r *run) error { return r.cloudStep().targetCopy(ctx) },
}

func (r cloudStep) targetCopy(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	in := &rds.CopyDBSnapshotInput{
		SourceDBSnapshotIdentifier: aws.String(r.p.sharedSnapshotARN()), TargetDBSnapshotIdentifier: aws.String(r.p.targetSnapshotID()),
		KmsKeyId: aws.String(r.p.targetKey()), Tags: []rdstypes.Tag{{Key: aws.String(tagKey), Value: aws.String(r.p.Name)}},
	}
	if r.p.Source.Region != r.p.Target.Region {
		in.SourceRegion = aws.String(r.p.Source.Region)
	}
	if _, err := c.target.rds.CopyDBSnapshot(ctx, in); err != nil && !isCode(err, "DBSnapshotAlreadyExists") {
		return fmt.Errorf("rds:CopyDBSnapshot of the shared snapshot into account %s: %w", r.p.Target.Account, err)
	}
	return r.waitSnapshot(ctx, c.target, r.p.targetSnapshotID())
}

func (p *Plan) targetKey() string {
	if p.Target.KMSKey != "" {
		return p.Target.KMSKey
	}
	return "alias/aws/rds"
}

var stepRestore = step{
	id:    "restore",
	title: "restore the target instance (GTID parameter group, backups on so it keeps binlogs for the reverse direction)",
	skip:  needsAWS,
	actions: func(p *Plan) []Action {
		return []Action{
			{tgtWhere(p), fmt.Sprintf("rds:RestoreDBInstanceFromDBSnapshot DBInstanceIdentifier=%s DBSnapshotIdentifier=%s DBInstanceClass=%s DBParameterGroupName=%s DBSubnetGroupName=%s VpcSecurityGroupIds=%s BackupRetentionPeriod=7 PubliclyAccessible=false",
				p.Target.Instance, p.targetSnapshotID(), p.Target.InstanceClass, p.Target.ParameterGroup, p.Target.SubnetGroup, strings.Join(p.Target.SecurityGroups, ","))},
			{tgtWhere(p), "wait rds:DescribeDBInstances until available; record its endpoint"},
		}
	},
	run: func(ctx context.Context, r *run) error { return r.cloudStep().restore(ctx) },
}

func (r cloudStep) restore(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	t := r.p.Target
	in := &rds.RestoreDBInstanceFromDBSnapshotInput{
		DBInstanceIdentifier: aws.String(t.Instance), DBSnapshotIdentifier: aws.String(r.p.targetSnapshotID()),
		DBInstanceClass: aws.String(t.InstanceClass), BackupRetentionPeriod: aws.Int32(7), PubliclyAccessible: aws.Bool(false),
		VpcSecurityGroupIds: t.SecurityGroups, Tags: []rdstypes.Tag{{Key: aws.String(tagKey), Value: aws.String(r.p.Name)}},
	}
	if t.ParameterGroup != "" {
		in.DBParameterGroupName = aws.String(t.ParameterGroup)
	}
	if t.SubnetGroup != "" {
		in.DBSubnetGroupName = aws.String(t.SubnetGroup)
	}
	if _, err := c.target.rds.RestoreDBInstanceFromDBSnapshot(ctx, in); err != nil && !isCode(err, "DBInstanceAlreadyExists") {
		return fmt.Errorf("rds:RestoreDBInstanceFromDBSnapshot %s: %w", t.Instance, err)
	}
	inst, err := r.waitInstance(ctx, c.target, t.Instance)
	if err != nil {
		return err
	}
	if inst.Endpoint != nil {
		r.say("target instance %s at %s", t.Instance, aws.ToString(inst.Endpoint.Address))
		return r.record("endpoint", aws.ToString(inst.Endpoint.Address))
	}
	return nil
}

func (r cloudStep) waitInstance(ctx context.Context, a *account, id string) (*rdstypes.DBInstance, error) {
	r.say("waiting for instance %s in %s", id, a.where())
	minD, maxD := r.waitDelays()
	w := rds.NewDBInstanceAvailableWaiter(a.rds, func(o *rds.DBInstanceAvailableWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD })
	out, err := w.WaitForOutput(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)}, r.p.Options.Timeout)
	if err != nil {
		return nil, fmt.Errorf("waiting for instance %s to be available: %w", id, err)
	}
	if len(out.DBInstances) == 0 {
		return nil, fmt.Errorf("instance %s vanished while waiting for it", id)
	}
	return &out.DBInstances[0], nil
}
