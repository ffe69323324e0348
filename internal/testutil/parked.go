package testutil

import "strings"

// Parked reports whether a goroutine other than the caller is blocked (in a channel
// operation, a select, a lock, the network poller or a system call — any state but
// running or runnable) with fn on its stack. fn is matched against the stack's
// function names as runtime.Stack prints them, e.g. "vrrp.(*rawTransport).Receive".
//
// It is for readiness that nothing announces, such as "the reader is blocked in
// Receive" before a test checks that Close wakes it; poll it with Eventually.
func Parked(fn string) bool {
	for i, g := range goroutineStacks() {
		if i == 0 {
			continue // the caller
		}
		head, frames, _ := strings.Cut(g.stack, "\n")
		if strings.Contains(head, "[running]") || strings.Contains(head, "[runnable]") {
			continue
		}
		for line := range strings.SplitSeq(frames, "\n") {
			// Function lines start at column 0; file lines are indented.
			if !strings.HasPrefix(line, "\t") && strings.Contains(line, fn) {
				return true
			}
		}
	}
	return false
}
