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
	_ = b[3]
	return (*atomic.Uint32)(unsafe.Pointer(&b[0])).Load()
}

// storeStatus atomically stores v at b[0:4] (release: the reader is done with the
// block before the kernel can see it as its own again).
func storeStatus(b []byte, v uint32) {
	_ = b[3]
	(*atomic.Uint32)(unsafe.Pointer(&b[0])).Store(v)
}

// sendmmsg sends the messages with one system call and returns how many the kernel
// took. Syscall6, not RawSyscall6: a full socket send buffer blocks the call, and the
// runtime must be able to run other goroutines meanwhile. It allocates nothing
// (errno values are not boxed).
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
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
