package txn

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/semaphore"
)

// ErrClosed is what Get returns once a closed queue is empty, and Put on a
// closed queue.
var ErrClosed = errors.New("queue closed")

// Queue is the bounded queue of transactions between two stages. It owns
// both bounds and their accounting: a transaction takes one of the Count
// places from Put until Get, and its bytes (times the memory factor) from
// Put until the consumer calls Done for it, once it is through with it
// (applied, spooled or dropped). A transaction larger than the whole byte
// budget passes alone.
type Queue struct {
	ch     chan *Txn
	sem    *semaphore.Weighted
	max    int64
	factor int64 // memory per binlog byte of what passes
	closed chan struct{}
	once   sync.Once
}

// NewQueue bounds a queue by count transactions and by bytes, counting
// factor bytes of memory for each binlog byte of a transaction (decoded
// rows take several times their binlog size).
func NewQueue(count int, bytes, factor int64) *Queue {
	return &Queue{ch: make(chan *Txn, count), sem: semaphore.NewWeighted(bytes), max: bytes, factor: factor, closed: make(chan struct{})}
}

func (q *Queue) weight(t *Txn) int64 { return min(max(int64(t.Bytes)*q.factor, 1), q.max) }

// Put waits until t fits by bytes and by count, and queues it.
func (q *Queue) Put(ctx context.Context, t *Txn) error {
	if err := q.Admit(ctx, t); err != nil {
		return err
	}
	select {
	case q.ch <- t:
		return nil
	case <-q.closed:
		q.Done(t)
		return ErrClosed
	case <-ctx.Done():
		q.Done(t)
		return ctx.Err()
	}
}

// Admit and In are Put in two steps, for a producer that owns its send
// loop (binlog.Stream: Config.Admit, then its out channel): Admit waits
// until t fits by bytes; t is then sent on In.
func (q *Queue) Admit(ctx context.Context, t *Txn) error {
	select {
	case <-q.closed:
		return ErrClosed
	default:
	}
	return q.sem.Acquire(ctx, q.weight(t))
}

// In is where a producer that called Admit sends.
func (q *Queue) In() chan<- *Txn { return q.ch }

// Get takes the next transaction, waiting for one. A closed queue still
// hands out what it holds, then ErrClosed.
func (q *Queue) Get(ctx context.Context) (*Txn, error) {
	select {
	case t := <-q.ch:
		return t, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-q.closed:
		if t, ok := q.TryGet(); ok {
			return t, nil
		}
		return nil, ErrClosed
	}
}

// TryGet takes the next transaction if one is queued.
func (q *Queue) TryGet() (*Txn, bool) {
	select {
	case t := <-q.ch:
		return t, true
	default:
		return nil, false
	}
}

// C is the queue's output, for a consumer that waits on other things too;
// what it receives counts as taken by Get.
func (q *Queue) C() <-chan *Txn { return q.ch }

// Len is how many transactions wait to be taken.
func (q *Queue) Len() int { return len(q.ch) }

// Done gives back the bytes of transactions taken from the queue.
func (q *Queue) Done(ts ...*Txn) {
	for _, t := range ts {
		q.sem.Release(q.weight(t))
	}
}

// Close ends the queue: Put fails from now on, Get once it is empty.
func (q *Queue) Close() { q.once.Do(func() { close(q.closed) }) }
