package syncer

import (
	"context"
	"database/sql"
	"strings"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/pitcrew/pitcrew/internal/route"
	"github.com/pitcrew/pitcrew/internal/stored"
	"github.com/pitcrew/pitcrew/internal/txn"
)

// storedObjects is the channel's care of its target's triggers and events
// (internal/stored): set once every check passed, used after each DDL.
type storedObjects struct {
	triggers *stored.Triggers
	events   *stored.Events
}

// afterDDL guards the triggers and parks the events a DDL from the stream
// created (apply.Config.AfterDDL).
func (o *storedObjects) afterDDL(ctx context.Context, q *txn.Query) error {
	if o.triggers != nil {
		if err := o.triggers.AfterDDL(ctx, q.Text); err != nil {
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
	o.triggers, o.events = trig, ev
	if len(ts.Guarded)+len(ts.Own)+len(es.Parked)+len(es.Own) > 0 {
		s.cfg.Logger.Info("target's triggers and events", "component", "stored",
			"triggers_guarded", len(ts.Guarded), "triggers_own", strings.Join(ts.Own, ","),
			"events_parked", len(es.Parked), "events_own", strings.Join(es.Own, ","))
	}
	s.status.update(func(st *Status) { st.Triggers, st.Events = &ts, &es })
	return nil
}
