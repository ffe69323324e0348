package bench

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// threadCPU returns the calling thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID):
// unlike the wall clock, it does not count the time other processes on a shared
// machine take the core, so a comparison of two variants holds under load. The caller
// locks its goroutine to the thread (lockThread).
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

func lockThread() func() { runtime.LockOSThread(); return runtime.UnlockOSThread }
