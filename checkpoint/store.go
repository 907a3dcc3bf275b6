// Package checkpoint is the engine's durable state.
//
// Two records say how far a channel got:
//   - the progress row on the target (Progress), written in the same target
//     transaction as the rows it covers, so it can never disagree with them;
//   - the local copy in pebble (Store), written after the target commit; it
//     lets `pitcrew status` answer without the target and survives the target
//     being unreachable.
//
// Invariants: the target's row is the truth when the two differ (it commits
// atomically with the data); a position only ever moves forward: the
// Store refuses a write that does not contain the stored position
// (ErrBackwards), except through ResetPosition, the named way of the
// explicit moves (the start's reconciliation with the target's row, an
// operator's reset).
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Position is a channel's applied GTID set as stored locally.
type Position struct {
	Flavor  string    `json:"flavor"`
	GTIDSet string    `json:"gtid_set"`
	Updated time.Time `json:"updated"`
	NextSeq uint64    `json:"next_seq,omitempty"` // relay end only: the next entry number
	// Written is the position last written to the target's progress row.
	// GTIDSet may be ahead of it by transactions that changed nothing on
	// the target (echoes, filtered events), which are never written there.
	// When the target's row still says Written, GTIDSet is where to resume.
	Written string `json:"written,omitempty"`
	// set is GTIDSet as a set, when the writer had one (At): the commit
	// path hands its set over instead of having it parsed back.
	set gtid.Set
}

func (p Position) nextSeq() uint64 { return max(1, p.NextSeq) }

// Store is the pebble database under the data dir. One process at a time
// may open it (pebble locks the directory).
type Store struct {
	db     *pebble.DB
	dir    string
	relays map[string]*Relay // by channel; their files close with the store

	mu        sync.Mutex          // guards positions and the position writes
	positions map[string]gtid.Set // by channel: the last position written
}

// lockWait is how long Open waits for a data dir another process holds.
const lockWait = 3 * time.Second

// lockBusy reports whether opening failed on the directory lock: another
// process has it (flock), or another store in this one.
func lockBusy(err error) bool {
	return err != nil && (errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "lock held by current process"))
}

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	// The relay's segment files live in dir/relay/, beside pebble's own
	// files (pebble leaves what it does not name alone) and under the same
	// directory lock.
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	// A reader (pitcrew status, bidi status) holds the directory lock for
	// a few milliseconds when no service answers; a service starting in
	// that moment waits for it rather than failing. A second service
	// holds it for good and is refused after the wait.
	for wait := time.Now().Add(lockWait); lockBusy(err) && time.Now().Before(wait); {
		time.Sleep(50 * time.Millisecond)
		db, err = pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	}
	if err != nil {
		return nil, fmt.Errorf("opening checkpoint store %s: %w (is another pitcrew using this data dir?)", dir, err)
	}
	return &Store{db: db, dir: dir}, nil
}

// Close syncs and closes the relays' files, then flushes and closes the
// store.
func (s *Store) Close() error {
	var err error
	for _, r := range s.relays {
		if rerr := r.close(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if cerr := s.db.Close(); cerr != nil {
		return cerr
	}
	return err
}

func positionKey(channel string) []byte { return []byte("channel/" + channel + "/position") }

// Position returns the channel's stored position; ok is false when the
// channel has none yet.
func (s *Store) Position(channel string) (p Position, ok bool, err error) {
	v, closer, err := s.db.Get(positionKey(channel))
	if errors.Is(err, pebble.ErrNotFound) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, err
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &p); err != nil {
		return Position{}, false, fmt.Errorf("checkpoint for channel %q is corrupt: %w", channel, err)
	}
	return p, true, nil
}

// ErrBackwards is the refusal of a position that does not contain the one
// stored: a checkpoint only moves forward (errors.Is finds it).
var ErrBackwards = errors.New("a checkpoint only moves forward")

// RecordPosition records the position after a target commit without
// waiting for the disk: the target's progress row, committed with the
// rows, is the truth, so losing the tail of these writes in a crash costs
// re-reading a few transactions (applied ones are skipped, echoes dropped
// again), never a wrong position. Order is kept: a later position never
// survives an earlier one's loss.
//
// The position must contain the stored one (the first write of a channel
// has none to contain); otherwise nothing is written and the error wraps
// ErrBackwards. A move anywhere else is ResetPosition's.
func (s *Store) RecordPosition(channel string, p Position) error {
	set, err := p.Set()
	if err != nil {
		return fmt.Errorf("checkpoint of channel %q: %w", channel, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.positions[channel]
	if !ok {
		stored, found, err := s.Position(channel)
		if err != nil {
			return err
		}
		if found {
			if prev, err = stored.Set(); err != nil {
				return fmt.Errorf("checkpoint of channel %q: the stored position: %w", channel, err)
			}
			ok = true
		}
	}
	if ok && !set.Contains(prev) {
		return fmt.Errorf("checkpoint of channel %q: refusing to record position %q (%s), which does not contain the stored %q (%s): %w",
			channel, set.String(), set.Flavor(), prev.String(), prev.Flavor(), ErrBackwards)
	}
	return s.writePosition(channel, p, set, pebble.NoSync)
}

// ResetPosition durably records the channel's position wherever it is,
// behind the stored one too. It is for the explicit moves only: the start's
// reconciliation, where the target's progress row wins over a local copy
// ahead of it, and an operator's reset of the channel.
func (s *Store) ResetPosition(channel string, p Position) error {
	set, err := p.Set()
	if err != nil {
		return fmt.Errorf("checkpoint of channel %q: %w", channel, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writePosition(channel, p, set, pebble.Sync)
}

// At is the position of an applied set, with the target's progress row at
// written (the zero Set: not said).
func At(applied, written gtid.Set) Position {
	p := Position{Flavor: applied.Flavor(), GTIDSet: applied.String(), set: applied}
	if !written.IsZero() {
		p.Written = written.String()
	}
	return p
}

// Set is the position's applied set, parsed.
func (p Position) Set() (gtid.Set, error) {
	if !p.set.IsZero() {
		return p.set, nil
	}
	return gtid.Parse(p.Flavor, p.GTIDSet)
}

// writePosition writes p (whose parsed set is set); s.mu is held.
func (s *Store) writePosition(channel string, p Position, set gtid.Set, opts *pebble.WriteOptions) error {
	if p.Updated.IsZero() {
		p.Updated = time.Now().UTC()
	}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := s.db.Set(positionKey(channel), v, opts); err != nil {
		return err
	}
	if s.positions == nil {
		s.positions = map[string]gtid.Set{}
	}
	s.positions[channel] = set
	return nil
}

// DeletePosition forgets the channel's position (an explicit reset).
func (s *Store) DeletePosition(channel string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.positions, channel)
	return s.db.Delete(positionKey(channel), pebble.Sync)
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func skipKey(channel, gtid string) []byte { return []byte("channel/" + channel + "/skip/" + gtid) }

// AddSkip records that the operator wants the transaction with this GTID
// not applied (`pitcrew skip`). It is used once.
func (s *Store) AddSkip(channel, gtid string) error {
	return s.db.Set(skipKey(channel, gtid), []byte("pending"), pebble.Sync)
}

// MarkSkipped records that a skip was used.
func (s *Store) MarkSkipped(channel, gtid string) error {
	return s.db.Set(skipKey(channel, gtid), []byte("done "+time.Now().UTC().Format(time.RFC3339)), pebble.Sync)
}

// Skips returns the channel's pending skips.
func (s *Store) Skips(channel string) ([]string, error) {
	prefix := skipKey(channel, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(append([]byte{}, prefix...), 0xff)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		if string(it.Value()) == "pending" {
			out = append(out, string(it.Key()[len(prefix):]))
		}
	}
	return out, it.Error()
}

// LoadState is a full load's progress (pitcrew load), so a crashed load
// resumes instead of starting over.
type LoadState struct {
	Flavor   string `json:"flavor"`
	Position string `json:"position"` // snapshot of the first run: the stream starts here
	Until    string `json:"until"`    // snapshot of the latest run: apply idempotently until here
	// Chunks holds each table's planned key ranges (JSON-encoded bounds)
	// and which are copied.
	Tables map[string]*LoadTable `json:"tables"`
	Done   bool                  `json:"done"`
}

// LoadTable is one table's plan.
type LoadTable struct {
	Created bool              `json:"created"`
	Bounds  []json.RawMessage `json:"bounds"` // upper bounds of chunks; the last chunk is open
	Planned bool              `json:"planned"`
	Copied  map[int]bool      `json:"copied"`
}

func loadKey(channel string) []byte { return []byte("channel/" + channel + "/load") }

// Load returns the channel's load state, if any.
func (s *Store) Load(channel string) (*LoadState, bool, error) {
	v, closer, err := s.db.Get(loadKey(channel))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	var st LoadState
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, false, fmt.Errorf("load state of channel %q is corrupt: %w", channel, err)
	}
	return &st, true, nil
}

// SetLoad records the load state durably.
func (s *Store) SetLoad(channel string, st *LoadState) error {
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.db.Set(loadKey(channel), v, pebble.Sync)
}
