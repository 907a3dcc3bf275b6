package syncer

import (
	"context"

	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
	"golang.org/x/sync/semaphore"
)

// gate bounds the bytes of transactions in flight between a producer and
// the stage that frees them (queues are bounded by count and by bytes). A
// transaction larger than the whole budget passes alone.
type gate struct {
	sem    *semaphore.Weighted
	max    int64
	factor int64 // memory per binlog byte of what passes
}

// Decoded rows take several times their binlog size in memory (every
// value boxed in an interface, every row a slice): measured about 4.6x for
// rows of two INTs and a short VARCHAR.
const (
	rawFactor     = 1
	decodedFactor = 4
)

func newGate(max, factor int64) *gate {
	return &gate{sem: semaphore.NewWeighted(max), max: max, factor: factor}
}

func (g *gate) weight(t *txn.Txn) int64 { return min(max(int64(t.Bytes)*g.factor, 1), g.max) }

// admit waits until t fits.
func (g *gate) admit(ctx context.Context, t *txn.Txn) error {
	return g.sem.Acquire(ctx, g.weight(t))
}

// free gives t's bytes back.
func (g *gate) free(ts ...*txn.Txn) {
	for _, t := range ts {
		g.sem.Release(g.weight(t))
	}
}
