package infra

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Shared steps: a fleet (package fleet) moves many databases between the
// same two accounts and makes the KMS key and the VPC peering once per
// account pair. It runs only those steps of a plan standing for the pair,
// through the same code, journal and idempotence as a database's runbook;
// each database's plan then names the pair's key (source.kms_key) and its
// peering (vpc.shared_peering).

// SharedSteps are the steps a fleet runs once per account pair.
var SharedSteps = []string{"share-key", "network"}

// ApplySteps runs only the named steps, in the runbook's order; steps done
// are not repeated. Nothing else of the plan runs (no database is touched).
func (rn *Runner) ApplySteps(ctx context.Context, ids []string) error {
	rn.defaults()
	idx, err := stepIndexes(ids)
	if err != nil {
		return err
	}
	r, err := rn.start(ctx, false)
	if err != nil {
		return err
	}
	defer r.close()
	for _, i := range idx {
		if err := r.do(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// PreviewSteps is Preview for only the named steps.
func (rn *Runner) PreviewSteps(w io.Writer, ids []string) error {
	rn.defaults()
	idx, err := stepIndexes(ids)
	if err != nil {
		return err
	}
	for _, i := range idx {
		s := steps[i]
		if why := s.skip(rn.Plan); why != "" {
			fmt.Fprintf(w, "    %-11s SKIPPED: %s\n", s.id, why)
			continue
		}
		fmt.Fprintf(w, "    %-11s %s\n", s.id, s.title)
		for _, a := range s.actions(rn.Plan) {
			fmt.Fprintf(w, "      [%s] %s\n", a.Where, a.What)
		}
	}
	return nil
}

func stepIndexes(ids []string) ([]int, error) {
	var idx []int
	for i, s := range steps {
		for _, id := range ids {
			if s.id == id {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) != len(ids) {
		return nil, fmt.Errorf("steps %v: use steps of %s", ids, strings.Join(StepIDs(), ", "))
	}
	return idx, nil
}

// KeyAlias is the alias of the KMS key the share-key step creates for a
// plan named name.
func KeyAlias(name string) string { return (&Plan{Name: name}).keyAlias() }
