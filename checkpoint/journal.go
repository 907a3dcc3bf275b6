package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Step states in a migration journal.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped" // not part of this plan; the reason is in Note
)

// Step is one journaled step of a migration (infra's runbook). Outputs
// hold what the step created (snapshot ARNs, key ids, peering ids), each
// written right after the call that created it, so a resumed step finds
// its resources instead of making them twice. Credentials never go here.
type Step struct {
	ID       string            `json:"id"`
	State    string            `json:"state"`
	Attempts int               `json:"attempts"`
	Started  time.Time         `json:"started,omitzero"`
	Finished time.Time         `json:"finished,omitzero"`
	Error    string            `json:"error,omitempty"`
	Note     string            `json:"note,omitempty"`
	Outputs  map[string]string `json:"outputs,omitempty"`
}

func stepKey(migration, step string) []byte {
	return []byte("migration/" + migration + "/step/" + step)
}

func planKey(migration string) []byte { return []byte("migration/" + migration + "/plan") }

// Step returns a step's record; a step never started is pending.
func (s *Store) Step(migration, id string) (Step, error) {
	v, closer, err := s.db.Get(stepKey(migration, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Step{ID: id, State: StepPending}, nil
	}
	if err != nil {
		return Step{}, err
	}
	defer closer.Close()
	var st Step
	if err := json.Unmarshal(v, &st); err != nil {
		return Step{}, fmt.Errorf("journal entry of step %q is corrupt: %w", id, err)
	}
	return st, nil
}

// SetStep records a step durably (fsync) before the caller goes on.
func (s *Store) SetStep(migration string, st Step) error {
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.db.Set(stepKey(migration, st.ID), v, pebble.Sync)
}

// PlanDigest returns the digest of the plan the journal was started with.
func (s *Store) PlanDigest(migration string) (string, bool, error) {
	v, closer, err := s.db.Get(planKey(migration))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	return string(v), true, nil
}

// SetPlanDigest records the plan's digest.
func (s *Store) SetPlanDigest(migration, digest string) error {
	return s.db.Set(planKey(migration), []byte(digest), pebble.Sync)
}
