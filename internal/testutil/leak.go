package testutil

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// LeakTimeout is how long the leak checks wait for goroutines that are on their way
// out (a closed listener's accept loop, a cancelled probe) before reporting them.
const LeakTimeout = 5 * time.Second

// CheckLeaks fails t if, after t and the cleanups registered after CheckLeaks have
// run, a goroutine started since CheckLeaks was called is still running. It waits up
// to LeakTimeout for such goroutines to end, then reports their stacks with t.Errorf.
//
// Call it first in the test, so its cleanup (t.Cleanup runs last-registered first)
// runs after the cleanups that stop what the test started. Goroutines other tests
// start at the same time would be reported, so tests using it must not call
// t.Parallel (nor run beside parallel tests of their package).
func CheckLeaks(t testing.TB) {
	t.Helper()
	checkLeaks(t, LeakTimeout)
}

// checkLeaks is CheckLeaks waiting up to timeout.
func checkLeaks(t testing.TB, timeout time.Duration) {
	t.Helper()
	before := goroutineIDs()
	t.Cleanup(func() {
		if leaked := waitLeaks(before, timeout); leaked != "" {
			t.Errorf("testutil.CheckLeaks: goroutines left behind:\n\n%s", leaked)
		}
	})
}

// RunMain runs m's tests and, when they pass, checks that no goroutine started
// during them is left behind (waiting up to LeakTimeout), which catches leaks of
// tests that do not call CheckLeaks. It returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }
func RunMain(m *testing.M) int {
	before := goroutineIDs()
	code := m.Run()
	if code != 0 {
		return code
	}
	if leaked := waitLeaks(before, LeakTimeout); leaked != "" {
		fmt.Fprintf(os.Stderr, "testutil.RunMain: goroutines left behind after all tests:\n\n%s\n", leaked)
		return 1
	}
	return 0
}

// waitLeaks polls until every goroutine but the caller's and the ignored ones is in
// before, and returns the stacks of the others if some are still running after
// timeout.
func waitLeaks(before map[uint64]bool, timeout time.Duration) string {
	var leaked string
	poll(timeout, func() bool {
		leaked = leakedStacks(before)
		return leaked == ""
	})
	return leaked
}

// leakedStacks returns the stacks, separated by blank lines, of the goroutines not
// in before, other than the calling one and the ignored ones.
func leakedStacks(before map[uint64]bool) string {
	var leaked []string
	for i, g := range goroutineStacks() {
		// runtime.Stack lists the calling goroutine first.
		if i == 0 || before[g.id] || ignored(g.stack) {
			continue
		}
		leaked = append(leaked, g.stack)
	}
	return strings.Join(leaked, "\n\n")
}

// ignored reports whether stack is a goroutine the runtime or the standard library
// starts lazily and keeps for the life of the process: not a leak.
func ignored(stack string) bool {
	for _, s := range []string{
		"os/signal.signal_recv", // signal.Notify's loop
		"runtime.ensureSigM",
		"testing.runFuzzing",
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// goroutineIDs returns the IDs of the running goroutines. The runtime never reuses
// an ID, so a goroutine not in the set was started after it was taken.
func goroutineIDs() map[uint64]bool {
	ids := map[uint64]bool{}
	for _, g := range goroutineStacks() {
		ids[g.id] = true
	}
	return ids
}

type goroutine struct {
	id    uint64
	stack string
}

// goroutineStacks returns every goroutine's stack, the caller's first.
func goroutineStacks() []goroutine {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		// Each block opens with "goroutine 42 [chan receive]:".
		head, _, _ := bytes.Cut(block, []byte("\n"))
		f := strings.Fields(string(head))
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id, string(block)})
	}
	return gs
}
