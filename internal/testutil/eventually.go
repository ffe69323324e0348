package testutil

import (
	"fmt"
	"testing"
	"time"
)

// pollInterval is how often Eventually and the leak check re-evaluate their
// condition.
const pollInterval = 2 * time.Millisecond

// Eventually calls cond until it returns true, and fails t with t.Fatalf if it has
// not by timeout. msg is an optional format string and arguments describing what was
// awaited. It is for state that no channel or callback announces; prefer waiting on
// the event when there is one. Call it from the test goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg ...any) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("testutil.Eventually: condition not met within %v: %s", timeout, describe(msg))
	}
}

// poll calls cond until it returns true or timeout has passed, and reports whether
// it returned true. cond is always called at least once, and once more after the
// deadline, so a slow machine does not fail a condition that became true while the
// poller was descheduled.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(pollInterval)
	}
}

// describe formats Eventually's optional message.
func describe(msg []any) string {
	if len(msg) == 0 {
		return "(no description)"
	}
	if f, ok := msg[0].(string); ok {
		return fmt.Sprintf(f, msg[1:]...)
	}
	return fmt.Sprint(msg...)
}
