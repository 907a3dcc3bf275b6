package infra

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/jobs/objects"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// objectsGuardrail compares everything that is not rows (verify
// --objects): table definitions, views, routines, triggers, events, users
// and grants, AUTO_INCREMENT counters. The target is read after the forward
// channel applied what the source had executed when the source was read,
// so a counter still on its way is no difference. A difference refuses the
// cut-over unless options.accept_object_differences.
func (r cutoverStep) objectsGuardrail(ctx context.Context, sdb, tdb *sql.DB) error {
	const name = "objects equal (verify --objects)"
	schemas, err := conn.Strings(ctx, sdb, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', '_pitcrew') ORDER BY 1")
	if err != nil {
		return err
	}
	scope := objects.Scope{Schemas: schemas, Ours: []string{r.p.Source.Database.User, r.p.Target.Database.User}}
	sel, _ := objects.ParseSelection("all")
	sel[objects.Schemas] = true
	rep, err := objects.Verify(ctx, sdb, tdb, scope, sel, func(ctx context.Context) error { return r.chans.drain(ctx, forward, "source") })
	if err != nil {
		return r.guardrail(name, fmt.Errorf("guardrail: comparing the objects of source and target: %w", err))
	}
	if rep.Equal {
		return r.guardrail(name, nil)
	}
	var lines []string
	for _, d := range rep.Differences {
		lines = append(lines, d.String())
	}
	if r.p.Options.AcceptObjectDifferences {
		r.say("objects differ, accepted (options.accept_object_differences): %s", strings.Join(lines, " | "))
		return r.guardrail(name, nil)
	}
	return r.guardrail(name, fmt.Errorf("guardrail: %d differences in what is not rows, which the application would meet on the target: %s; fix them (pitcrew verify --objects --repair creates what is missing), or set options.accept_object_differences: true, then resume", len(rep.Differences), strings.Join(lines, " | ")))
}
