package syncer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/mysql/ddl"
	"github.com/pitcrew/pitcrew/internal/mysql/stored"
	"github.com/pitcrew/pitcrew/internal/pipeline/route"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// storedObjects is the channel's care of its target's triggers and events
// (internal/stored): set once every check passed, used after each DDL.
type storedObjects struct {
	triggers *stored.Triggers
	events   *stored.Events
	// peer guards, in bidirectional mode, the source's copies of the
	// triggers the target and the source share: the source takes
	// pitcrew's writes too (the other direction's), and a trigger its
	// application created there reaches this channel's stream first.
	peer   func(ctx context.Context) error
	status func(func(*Status)) // the channel's status box
}

// afterDDL guards the triggers and parks the events a DDL from the stream
// created (apply.Config.AfterDDL).
func (o *storedObjects) afterDDL(ctx context.Context, q *txn.Query) error {
	if o.triggers != nil {
		if err := o.triggers.AfterDDL(ctx, q.Text); err != nil {
			return err
		}
		if o.status != nil && stored.CreatesTrigger(q.Text) {
			ts := o.triggers.State()
			o.status(func(st *Status) { st.Triggers = &ts })
		}
	}
	if o.peer != nil && stored.CreatesTrigger(q.Text) {
		if err := o.peer(ctx); err != nil {
			return err
		}
	}
	if o.events != nil {
		return o.events.AfterDDL(ctx, q.Schema, q.Text)
	}
	return nil
}

// prepareStored guards the target's triggers that the source has too and
// parks its events that the source has too, and says so in the status.
func (s *Syncer) prepareStored(ctx context.Context, o *storedObjects, tgt, src *sql.DB, router *route.Router) error {
	prefix := conflict.OriginMarker(s.cfg.Channel)
	trig, ts, err := stored.GuardTriggers(ctx, tgt, src, router.Origin, prefix)
	if err != nil {
		return err
	}
	schema := func(db string) (string, bool) {
		s, _, ok := router.Origin(db, "")
		return s, ok
	}
	ev, es, err := stored.DisableEvents(ctx, tgt, src, schema, prefix)
	if err != nil {
		return err
	}
	o.triggers, o.events, o.status = trig, ev, s.status.update
	if len(s.cfg.Echo) > 0 {
		// Written to the source with the marker of a channel into it, so
		// this channel (and every other reading the source) drops it.
		forward := func(schema, table string) (string, string, bool) {
			to := router.Table(ddl.Ref{Schema: schema, Table: table})
			return to.Schema, to.Table, router.Included(schema, table)
		}
		o.peer = func(ctx context.Context) error {
			_, _, err := stored.GuardTriggers(ctx, src, tgt, forward, conflict.OriginMarker(s.cfg.Echo[0]))
			return err
		}
		if err := o.peer(ctx); err != nil {
			return fmt.Errorf("guarding the source's triggers (bidirectional): %w", err)
		}
	}
	if len(ts.Guarded)+len(ts.Own)+len(es.Parked)+len(es.Own) > 0 {
		s.cfg.Logger.Info("target's triggers and events", "component", "stored",
			"triggers_guarded", len(ts.Guarded), "triggers_own", strings.Join(ts.Own, ","),
			"events_parked", len(es.Parked), "events_own", strings.Join(es.Own, ","))
	}
	s.status.update(func(st *Status) { st.Triggers, st.Events = &ts, &es })
	return nil
}
