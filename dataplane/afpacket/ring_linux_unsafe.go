//go:build linux

package afpacket

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few operations on the ring that need package unsafe: atomic access to the
// block status word the kernel and the reader hand a block back and forth with, and
// sendmmsg(2), which golang.org/x/sys/unix does not wrap.

// loadStatus atomically loads the 32-bit word at b[0:4] (acquire: every write the
// kernel made to the block before marking it TP_STATUS_USER is visible after it). b
// must be 4-byte aligned: status words sit at offset 8 of page-aligned blocks.
func loadStatus(b []byte) uint32 {
	_ = b[:4] // a bounds check that reads nothing (b[3] would be a plain read)
	return (*atomic.Uint32)(unsafe.Pointer(&b[0])).Load()
}

// storeStatus atomically stores v at b[0:4] (release: the reader is done with the
// block before the kernel can see it as its own again).
func storeStatus(b []byte, v uint32) {
	_ = b[:4]
	(*atomic.Uint32)(unsafe.Pointer(&b[0])).Store(v)
}

// sendmmsg sends the messages with one system call and returns how many the kernel
// took. MSG_DONTWAIT: it never blocks (a full send buffer is EAGAIN, which the
// caller retries), so it is a RawSyscall6 — the scheduler need not hand the P to
// another thread for a call that only works, which costs more than the send
// itself on veth (see rawNanosleep). It allocates nothing (errno values are not
// boxed).
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), e
}

// recvDontWait receives one queued frame into b without waiting and returns its
// whole length (MSG_TRUNC: longer than b if it did not fit), allocating nothing
// (unix.Recvfrom returns the sender's address, which allocates).
func recvDontWait(fd int, b []byte) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, unix.EINVAL
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	return int(n), e
}

// rawNanosleep sleeps for ts without telling the Go scheduler (RawSyscall): a nap of
// microseconds is shorter than what the runtime would spend handing the worker's P
// to another thread and taking it back (sysmon retakes a P whose thread sits in a
// system call for 20 µs), which costs a futex wake-up and a context switch each way.
// Other goroutines of that P wait meanwhile; keep ts to tens of microseconds.
func rawNanosleep(ts *unix.Timespec) {
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(ts)), 0, 0)
}

// rawTimerSlack sets the calling thread's timer slack (PR_SET_TIMERSLACK).
func rawTimerSlack(ns uintptr) {
	unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_TIMERSLACK, ns, 0, 0, 0, 0)
}
