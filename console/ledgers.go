package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pitcrew/pitcrew/conflict"
	"github.com/prometheus/client_golang/prometheus"
)

// Ledgers is the Conflicts store of a set of nodes: each node's ledger
// (conflict.Ledger) on its own connection. DBs must use the applier's
// session (apply.Session), as `pitcrew conflicts resolve` does.
type Ledgers struct {
	Ledger conflict.Ledger
	Nodes  []string           // in the order the page lists them
	DBs    map[string]*sql.DB // by node
}

var errNoNode = errors.New("no such node")

func (l Ledgers) db(node string) (*sql.DB, error) {
	db, ok := l.DBs[node]
	if !ok {
		return nil, fmt.Errorf("node %q: %w (nodes: %v)", node, errNoNode, l.Nodes)
	}
	return db, nil
}

// Recent implements Conflicts.
func (l Ledgers) Recent(ctx context.Context, limit int) ([]Conflict, int, error) {
	var all []Conflict
	parked := 0
	for _, n := range l.Nodes {
		db, err := l.db(n)
		if err != nil {
			return nil, 0, err
		}
		entries, err := l.Ledger.Recent(ctx, db, limit)
		if err != nil {
			return nil, 0, fmt.Errorf("node %s: %w", n, err)
		}
		for _, e := range entries {
			all = append(all, Conflict{Node: n, Entry: e})
		}
		p, err := l.Ledger.Parked(ctx, db)
		if err != nil {
			return nil, 0, fmt.Errorf("node %s: %w", n, err)
		}
		parked += p
	}
	// Newest first across nodes; parked ones before the rest.
	slices.SortStableFunc(all, func(a, b Conflict) int {
		ap, bp := a.Outcome == conflict.Parked.String(), b.Outcome == conflict.Parked.String()
		if ap != bp {
			if ap {
				return -1
			}
			return 1
		}
		return b.Created.Compare(a.Created)
	})
	if len(all) > limit {
		all = all[:limit]
	}
	return all, parked, nil
}

// List reads the ledgers of every node (only node's, when not ""), node
// by node in their order, with only one outcome when outcome is not "".
func (l Ledgers) List(ctx context.Context, node, outcome string) ([]Conflict, error) {
	var all []Conflict
	for _, n := range l.Nodes {
		if node != "" && n != node {
			continue
		}
		db, err := l.db(n)
		if err != nil {
			return nil, err
		}
		entries, err := l.Ledger.List(ctx, db, outcome)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n, err)
		}
		for _, e := range entries {
			all = append(all, Conflict{Node: n, Entry: e})
		}
	}
	return all, nil
}

// Get implements Conflicts.
func (l Ledgers) Get(ctx context.Context, node string, id int64) (Conflict, error) {
	db, err := l.db(node)
	if err != nil {
		return Conflict{}, err
	}
	e, err := l.Ledger.Get(ctx, db, id)
	return Conflict{Node: node, Entry: e}, err
}

// Resolve implements Conflicts.
func (l Ledgers) Resolve(ctx context.Context, node string, id int64, take string) error {
	db, err := l.db(node)
	if err != nil {
		return err
	}
	return l.Ledger.Resolve(ctx, db, id, take)
}

// Describe implements prometheus.Collector.
func (l Ledgers) Describe(ch chan<- *prometheus.Desc) { ch <- parkedDesc }

var parkedDesc = prometheus.NewDesc("pitcrew_conflicts_parked", "Conflicts in a node's ledger that wait for a person (policy park).", []string{"node"}, nil)

// Collect implements prometheus.Collector: pitcrew_conflicts_parked per
// node, counted in the ledger at scrape time (a counter of parked
// conflicts would never come down when a person settles them). A node
// that does not answer within 2s is left out of the scrape.
func (l Ledgers) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range l.Nodes {
		db, err := l.db(n)
		if err != nil {
			continue
		}
		p, err := l.Ledger.Parked(ctx, db)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(p), n)
	}
}
