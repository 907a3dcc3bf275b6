package txn

import (
	"context"
	"errors"
	"testing"
	"time"
)

// blocked runs put, checks that it waits, and returns what waits for its
// end (and fails if it does not end).
func blocked(t *testing.T, put func() error) (wait func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- put() }()
	stillWaits(t, done)
	return func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Put still waits")
			return nil
		}
	}
}

func TestQueueBoundsCount(t *testing.T) {
	ctx := context.Background()
	q := NewQueue(2, 1<<20, 1)
	for range 2 {
		if err := q.Put(ctx, &Txn{Bytes: 10}); err != nil {
			t.Fatal(err)
		}
	}
	wait := blocked(t, func() error { return q.Put(ctx, &Txn{Bytes: 10}) })
	if _, err := q.Get(ctx); err != nil { // a place, though no bytes came back
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 2 {
		t.Fatalf("Len %d, want 2", q.Len())
	}
}

func TestQueueBoundsBytes(t *testing.T) {
	ctx := context.Background()
	q := NewQueue(100, 100, 2) // 50 binlog bytes at factor 2
	a, b := &Txn{Bytes: 30}, &Txn{Bytes: 20}
	if err := q.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	wait := blocked(t, func() error { return q.Put(ctx, &Txn{Bytes: 1}) })
	got, err := q.Get(ctx)
	if err != nil || got != a {
		t.Fatalf("Get: %v, %v", got, err)
	}
	// Taken is not done: its bytes still count.
	time.Sleep(50 * time.Millisecond)
	if q.Len() != 1 {
		t.Fatalf("Len %d: the third Put went in before Done", q.Len())
	}
	q.Done(got)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	// One larger than the whole budget passes alone, once all is done.
	q.Done(b)
	if t2, _ := q.TryGet(); t2 != b {
		t.Fatal("TryGet: want b")
	}
	big := &Txn{Bytes: 1000}
	wait = blocked(t, func() error { return q.Put(ctx, big) })
	t3, _ := q.TryGet()
	q.Done(t3)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if t4, ok := q.TryGet(); !ok || t4 != big {
		t.Fatal("TryGet: want the big one")
	}
	if _, ok := q.TryGet(); ok {
		t.Fatal("TryGet on an empty queue")
	}
}

func TestQueueCloseAndCancel(t *testing.T) {
	ctx := context.Background()
	q := NewQueue(1, 100, 1)
	a := &Txn{Bytes: 10}
	if err := q.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	// A Put waiting for a place ends with its context, its bytes given back.
	cctx, cancel := context.WithCancel(ctx)
	wait := blocked(t, func() error { return q.Put(cctx, &Txn{Bytes: 90}) })
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put: %v", err)
	}
	if err := q.Admit(ctx, &Txn{Bytes: 90}); err != nil { // the 90 came back
		t.Fatal(err)
	}
	q.Done(&Txn{Bytes: 90})
	// A closed queue hands out what it holds, then ErrClosed.
	wait = blocked(t, func() error { return q.Put(ctx, &Txn{Bytes: 1}) })
	q.Close()
	if err := wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put waiting as it closed: %v", err)
	}
	if err := q.Put(ctx, &Txn{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if got, err := q.Get(ctx); err != nil || got != a {
		t.Fatalf("Get after Close: %v, %v", got, err)
	}
	if _, err := q.Get(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get on a closed empty queue: %v", err)
	}
	// Get waiting ends with its context.
	q2 := NewQueue(1, 1, 1)
	cctx, cancel = context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := q2.Get(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: %v", err)
	}
}

func stillWaits(t *testing.T, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Put did not wait (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
}
