package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/pitcrew/pitcrew/internal/jobs/objects"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/syncer"
)

// objectsUsage documents --objects for load and verify.
const objectsUsage = "non-table objects: all (views, routines, triggers, events, users, auto_increment), none (tables only), or a comma-separated list of those"

// allObjects is the default selection (sync --initial-load carries everything).
func allObjects() objects.Selection {
	sel, _ := objects.ParseSelection("all")
	return sel
}

// objectsFlag adds --objects (a bad value is a usage error).
func objectsFlag(fs *flag.FlagSet, def string) *objects.Selection {
	sel, _ := objects.ParseSelection(def)
	fs.Func("objects", objectsUsage+" (default "+def+")", func(v string) error {
		s, err := objects.ParseSelection(v)
		if err == nil {
			sel = s
		}
		return err
	})
	return &sel
}

// verifyObjects is verify --objects: every kind, and the tables'
// definitions; with repair, what can be made equal is, and the comparison
// runs again.
func verifyObjects(ctx context.Context, src, tgt *sql.DB, cfg syncer.Config, r *route.Router, repair, asJSON bool, between func(context.Context) error, stdout io.Writer) error {
	scope, err := objects.RouteScope(ctx, src, r, []string{cfg.Source.User, cfg.Target.User}, cfg.ProgressSchema, nil)
	if err != nil {
		return err
	}
	sel := allObjects()
	sel[objects.Schemas] = true
	repaired := 0
	if repair {
		if repaired, err = objects.Repair(ctx, src, tgt, scope, sel); err != nil {
			return fmt.Errorf("repairing objects: %w", err)
		}
	}
	rep, err := objects.Verify(ctx, src, tgt, scope, sel, between)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			objects.Report
			Repaired int `json:"repaired,omitempty"`
		}{rep, repaired}); err != nil {
			return err
		}
	} else {
		printObjects(stdout, rep, repaired)
	}
	if !rep.Equal {
		return fmt.Errorf("%d differences in the objects (see the report): apply each fix, or pitcrew verify --objects --repair for what it can create", len(rep.Differences))
	}
	return nil
}

func printObjects(w io.Writer, rep objects.Report, repaired int) {
	byKind := map[objects.Kind]int{}
	for _, d := range rep.Differences {
		byKind[d.Kind]++
	}
	for _, k := range append([]objects.Kind{objects.Schemas}, objects.AllKinds...) {
		verdict := "EQUAL"
		if byKind[k] > 0 {
			verdict = fmt.Sprintf("%d DIFFER", byKind[k])
		}
		label := string(k)
		if k == objects.Schemas {
			label = "table definitions"
		}
		fmt.Fprintf(w, "%-18s %5d on the source  %s\n", label, rep.Compared[k], verdict)
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(w, "  %s: %s\n      fix: %s\n", d.Object, d.What, d.Fix)
	}
	if repaired > 0 {
		fmt.Fprintf(w, "repaired: %d objects created, altered or raised on the target\n", repaired)
	}
	if rep.Equal {
		fmt.Fprintln(w, "objects of source and target are equal")
	}
}
