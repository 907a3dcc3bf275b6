package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond every 20ms until it holds, and fails the test, saying
// what it waited for, when timeout passes first: the way a test waits for
// a row, a status field or a position instead of sleeping.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
