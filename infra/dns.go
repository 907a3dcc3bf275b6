package infra

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// Set identifiers of the weighted pair pitcrew manages.
const (
	setOld = "pitcrew-old"
	setNew = "pitcrew-new"
)

var stepDNS = step{
	id:    "dns",
	title: "Route 53: TTL lowered, record made a weighted pair, traffic moved to the new load balancer in steps",
	skip: func(p *Plan) string {
		if p.DNS == nil {
			return "no dns block: the hook or the operator moves the traffic"
		}
		return ""
	},
	actions: func(p *Plan) []Action {
		d := p.DNS
		where := dnsWhere(p)
		a := []Action{
			{where, fmt.Sprintf("route53:ListResourceRecordSets HostedZoneId=%s StartRecordName=%s", d.HostedZoneID, fqdn(d.Record))},
			{where, fmt.Sprintf("route53:ChangeResourceRecordSets UPSERT %s TTL=%d (when the current record has a longer TTL); wait route53:GetChange INSYNC; wait out the old TTL", fqdn(d.Record), d.TTL)},
			{where, fmt.Sprintf("route53:ChangeResourceRecordSets DELETE <current record> CREATE A alias %s=%s weight 100, %s=%s weight 0; wait INSYNC", setOld, d.Old.DNSName, setNew, d.New.DNSName)},
		}
		for i, w := range d.Weights {
			s := fmt.Sprintf("route53:ChangeResourceRecordSets UPSERT %s weight %d, %s weight %d; wait INSYNC", setOld, 100-w, setNew, w)
			if i < len(d.Weights)-1 {
				s += fmt.Sprintf("; wait %s", d.StepWait)
			}
			a = append(a, Action{where, s})
		}
		return a
	},
	run: func(ctx context.Context, r *run) error { return r.cloudStep().dns(ctx) },
}

func dnsWhere(p *Plan) string {
	if p.DNS.Account == "target" {
		return tgtWhere(p)
	}
	return srcWhere(p)
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func (r cloudStep) dnsAccount(c *clients) *account {
	if r.p.DNS.Account == "target" {
		return c.target
	}
	return c.source
}

func (r cloudStep) dns(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	a, d := r.dnsAccount(c), r.p.DNS
	name := fqdn(d.Record)
	if r.output("weighted") == "" {
		if err := r.makeWeighted(ctx, a, name); err != nil {
			return err
		}
	}
	done, _ := strconv.Atoi(r.output("weights_done"))
	for i := done; i < len(d.Weights); i++ {
		if err := r.waitUntil(ctx, r.output("next_step_at"), "the next weight step"); err != nil {
			return err
		}
		w := d.Weights[i]
		if err := r.change(ctx, a, fmt.Sprintf("send %d%% to the new load balancer", w), r.weighted(r53types.ChangeActionUpsert, w)...); err != nil {
			return err
		}
		if err := r.record("weights_done", strconv.Itoa(i+1)); err != nil {
			return err
		}
		if i < len(d.Weights)-1 {
			if err := r.record("next_step_at", time.Now().Add(d.StepWait).UTC().Format(time.RFC3339)); err != nil {
				return err
			}
		}
	}
	return nil
}

// makeWeighted replaces the record by the weighted pair, all on the old
// load balancer, after lowering its TTL and waiting the old TTL out.
func (r cloudStep) makeWeighted(ctx context.Context, a *account, name string) error {
	d := r.p.DNS
	current, err := currentRecords(ctx, a, d.HostedZoneID, name)
	if err != nil {
		return err
	}
	var changes []r53types.Change
	for _, rr := range current {
		if id := aws.ToString(rr.SetIdentifier); id == setOld || id == setNew {
			continue
		}
		if rr.TTL != nil && *rr.TTL > d.TTL && rr.AliasTarget == nil && r.output("ttl_wait_until") == "" {
			old := *rr.TTL
			lowered := rr
			lowered.TTL = aws.Int64(d.TTL)
			if err := r.change(ctx, a, "lower the TTL of "+name, r53types.Change{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &lowered}); err != nil {
				return err
			}
			until := time.Now().Add(time.Duration(old) * time.Second).UTC()
			if err := r.record("ttl_wait_until", until.Format(time.RFC3339)); err != nil {
				return err
			}
			rr.TTL = aws.Int64(d.TTL)
		}
		del := rr
		changes = append(changes, r53types.Change{Action: r53types.ChangeActionDelete, ResourceRecordSet: &del})
	}
	if err := r.waitUntil(ctx, r.output("ttl_wait_until"), "the old TTL to run out"); err != nil {
		return err
	}
	changes = append(changes, r.weighted(r53types.ChangeActionUpsert, 0)...)
	if err := r.change(ctx, a, "make "+name+" a weighted pair", changes...); err != nil {
		return err
	}
	return r.record("weighted", "true")
}

// weighted is the pair of alias records with w percent on the new one.
func (r cloudStep) weighted(action r53types.ChangeAction, w int64) []r53types.Change {
	d := r.p.DNS
	rec := func(id string, lb LoadBalancer, weight int64) r53types.Change {
		return r53types.Change{Action: action, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String(fqdn(d.Record)), Type: r53types.RRTypeA, SetIdentifier: aws.String(id), Weight: aws.Int64(weight),
			AliasTarget: &r53types.AliasTarget{DNSName: aws.String(lb.DNSName), HostedZoneId: aws.String(lb.HostedZoneID), EvaluateTargetHealth: true},
		}}
	}
	return []r53types.Change{rec(setOld, d.Old, 100-w), rec(setNew, d.New, w)}
}

// change submits one atomic batch and waits until Route 53 reports INSYNC.
func (r cloudStep) change(ctx context.Context, a *account, why string, changes ...r53types.Change) error {
	out, err := a.r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(r.p.DNS.HostedZoneID),
		ChangeBatch:  &r53types.ChangeBatch{Comment: aws.String("pitcrew " + r.p.Name + ": " + why), Changes: changes},
	})
	if err != nil {
		return fmt.Errorf("route53:ChangeResourceRecordSets (%s): %w", why, err)
	}
	r.say("dns: %s (change %s)", why, aws.ToString(out.ChangeInfo.Id))
	minD, maxD := r.waitDelays()
	w := route53.NewResourceRecordSetsChangedWaiter(a.r53, func(o *route53.ResourceRecordSetsChangedWaiterOptions) { o.MinDelay, o.MaxDelay = minD, maxD })
	if err := w.Wait(ctx, &route53.GetChangeInput{Id: out.ChangeInfo.Id}, r.p.Options.Timeout); err != nil {
		return fmt.Errorf("waiting for Route 53 change %s to be INSYNC: %w", aws.ToString(out.ChangeInfo.Id), err)
	}
	return nil
}

func currentRecords(ctx context.Context, a *account, zone, name string) ([]r53types.ResourceRecordSet, error) {
	out, err := a.r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zone), StartRecordName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("route53:ListResourceRecordSets %s: %w", zone, err)
	}
	var rrs []r53types.ResourceRecordSet
	for _, rr := range out.ResourceRecordSets {
		if !strings.EqualFold(aws.ToString(rr.Name), name) {
			continue
		}
		switch rr.Type {
		case r53types.RRTypeA, r53types.RRTypeAaaa, r53types.RRTypeCname:
			rrs = append(rrs, rr)
		}
	}
	return rrs, nil
}

// waitUntil sleeps until a journaled moment (RFC 3339; empty: no wait), so a
// resumed run waits only the rest.
func (r cloudStep) waitUntil(ctx context.Context, at, what string) error {
	if at == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return nil
	}
	if d := time.Until(t); d > 0 {
		r.say("waiting %s for %s", d.Round(time.Second), what)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}

// dnsBack points all traffic at the old load balancer again.
func (r cloudStep) dnsBack(ctx context.Context) error {
	c, err := r.awsClients(ctx)
	if err != nil {
		return err
	}
	return r.change(ctx, r.dnsAccount(c), "send all traffic back to the old load balancer", r.weighted(r53types.ChangeActionUpsert, 0)...)
}
