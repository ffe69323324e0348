//go:build linux

package afxdp

import (
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The operations of the sockets that need package unsafe: the rings' shared producer
// and consumer words and descriptor arrays inside the mmap'd areas, the position of
// a frame inside the UMEM, SIOCETHTOOL, and sendto(2)/getsockopt(2) without
// allocating.

// word returns the 32-bit word at mem[off:] for atomic access (the kernel and this
// process hand ring entries back and forth through it).
func word(mem []byte, off uint64) *atomic.Uint32 {
	_ = mem[off+3]
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// addrs returns the n 64-bit UMEM addresses of a fill or completion ring at mem[off:].
func addrs(mem []byte, off uint64, n uint32) []uint64 {
	_ = mem[off+uint64(n)*8-1]
	return unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off])), n)
}

// descs returns the n descriptors of an RX or TX ring at mem[off:].
func descs(mem []byte, off uint64, n uint32) []unix.XDPDesc {
	_ = mem[off+uint64(n)*uint64(unsafe.Sizeof(unix.XDPDesc{}))-1]
	return unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&mem[off])), n)
}

// umemOffset returns where b[0] lies in umem, and whether it lies there at all with
// n bytes after it.
func umemOffset(umem, b []byte, n int) (uint64, bool) {
	if len(b) == 0 || len(umem) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(umem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p-base+uintptr(n) > uintptr(len(umem)) {
		return 0, false
	}
	return uint64(p - base), true
}

// kick asks the kernel to send what the TX ring holds (sendto with no data,
// MSG_DONTWAIT), allocating nothing.
func kick(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// wakeRX asks the kernel to refill from the fill ring (recvfrom with no data), for
// sockets bound with XDP_USE_NEED_WAKEUP whose fill ring says so.
func wakeRX(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// umemReg registers the UMEM with the socket (XDP_UMEM_REG).
func umemReg(fd int, umem []byte, frameSize uint32) error {
	reg := unix.XDPUmemReg{
		Addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(umem)))),
		Len:  uint64(len(umem)),
		Size: frameSize,
	}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0)
	if e != 0 {
		return e
	}
	return nil
}

// getsockoptInto reads a socket option of a fixed-size struct into v.
func getsockoptInto[T any](fd, level, opt int, v *T) error {
	l := uint32(unsafe.Sizeof(*v))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(v)), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// ethtoolChannels is struct ethtool_channels (linux/ethtool.h).
type ethtoolChannels struct {
	Cmd                                         uint32
	MaxRX, MaxTX, MaxOther, MaxCombined         uint32
	RXCount, TXCount, OtherCount, CombinedCount uint32
}

// ifreqData is struct ifreq with ifr_data, for SIOCETHTOOL.
type ifreqData struct {
	Name [unix.IFNAMSIZ]byte
	Data unsafe.Pointer
	_    [16]byte // the rest of the union
}

// channels returns the interface's channel counts (ETHTOOL_GCHANNELS), asking
// through the socket fd (any socket of the interface's network namespace).
func channels(fd int, ifname string) (ethtoolChannels, error) {
	// ifr.Data is an unsafe.Pointer, not a uintptr, so that ch stays reachable and
	// its address right if the stack moves before the call (as x/sys/unix's own
	// ifreq with data does).
	ch := new(ethtoolChannels)
	ch.Cmd = unix.ETHTOOL_GCHANNELS
	ifr := new(ifreqData)
	copy(ifr.Name[:unix.IFNAMSIZ-1], ifname)
	ifr.Data = unsafe.Pointer(ch)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(ch)
	if e != 0 {
		return *ch, e
	}
	return *ch, nil
}
