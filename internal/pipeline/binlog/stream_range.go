package binlog

import (
	"context"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Range is a stretch of a source's binlog, read as a replica would
// (`pitcrew binlog decode --from-server`).
type Range struct {
	Source   conn.Endpoint
	ServerID uint32 // the replica's server_id
	// From and To are GTID sets: the transactions after From ("" = the
	// oldest binlog) until To is read ("" = what the source had executed
	// when the read began).
	From, To string
}

// BoundError is a From or To of a Range that is no GTID set.
type BoundError struct {
	Bound string // "from" or "to"
	Err   error
}

func (e *BoundError) Error() string { return e.Bound + ": " + e.Err.Error() }
func (e *BoundError) Unwrap() error { return e.Err }

// ReadRange streams the range from the source and hands each transaction
// to each, in order, until To is read, each fails or ctx ends.
func ReadRange(ctx context.Context, r Range, each func(*txn.Txn) error) error {
	db, err := conn.Open(r.Source)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := conn.Ping(ctx, db, "source", r.Source); err != nil {
		return err
	}
	info, err := Inspect(ctx, db)
	if err != nil {
		return err
	}
	start, err := gtid.Parse(info.Flavor, r.From)
	if err != nil {
		return &BoundError{"from", err}
	}
	var stop gtid.Set
	if r.To != "" {
		if stop, err = gtid.Parse(info.Flavor, r.To); err != nil {
			return &BoundError{"to", err}
		}
	} else if stop, err = Executed(ctx, db, info.Flavor); err != nil {
		return err
	}
	if start.Contains(stop) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan *txn.Txn, 64)
	errc := make(chan error, 1)
	go func() {
		errc <- Stream(ctx, Config{Source: r.Source, Flavor: info.Flavor, ServerID: r.ServerID}, start, ch, nil)
	}()
	seen := start
	for {
		select {
		case t := <-ch:
			if err := each(t); err != nil {
				return err
			}
			if t.GTID != "" {
				if seen, err = seen.Add(t.GTID); err != nil {
					return err
				}
			}
			if seen.Contains(stop) {
				return nil
			}
		case err := <-errc:
			return err
		}
	}
}
