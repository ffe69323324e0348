//go:build linux

package bench

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmmsg sends the messages with one system call (golang.org/x/sys/unix does not
// wrap it) and returns how many the kernel took.
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
