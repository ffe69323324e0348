package dataplane

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// threadCPU is the calling thread's CPU time in ns: benchmarks that compare two
// variants on a shared machine report it beside the wall clock, which other processes
// inflate. The caller locks its goroutine to its thread.
func threadCPU() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return ts.Nano()
}

func lockThread() func() { runtime.LockOSThread(); return runtime.UnlockOSThread }
