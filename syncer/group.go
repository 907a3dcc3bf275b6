package syncer

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// RunGroup runs several channels (the directions of a bidirectional set)
// until ctx ends. A channel that fails stops the others: the operator must
// look before writes flow one way only.
func RunGroup(ctx context.Context, syncers []*Syncer) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range syncers {
		g.Go(func() error { return s.Run(gctx, RunOptions{}) })
	}
	return g.Wait()
}
