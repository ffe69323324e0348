//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// AF_PACKET socket plumbing shared by the ring: interface lookups on the socket
// itself (so they happen in the socket's network namespace), socket options, the
// classic BPF filter, and batched transmission with sendmmsg(2).

// htons converts a 16-bit protocol number to network byte order, as sockaddr_ll and
// socket(2) take it for AF_PACKET (packet(7)).
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ifaceInfo returns the index and MTU of the interface ifname and checks that it is an
// Ethernet interface: the ring parses and builds Ethernet II frames.
func ifaceInfo(fd int, ifname string) (index, mtu int, err error) {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, 0, os.NewSyscallError("ioctl SIOCGIFINDEX", err)
	}
	index = int(ifr.Uint32())
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, 0, os.NewSyscallError("ioctl SIOCGIFMTU", err)
	}
	mtu = int(ifr.Uint32())
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, 0, os.NewSyscallError("ioctl SIOCGIFHWADDR", err)
	}
	// The union holds a struct sockaddr whose family is the ARPHRD_ type.
	if t := ifr.Uint16(); t != unix.ARPHRD_ETHER {
		return 0, 0, fmt.Errorf("not an Ethernet interface (ARPHRD type %d)", t)
	}
	return index, mtu, nil
}

// setPacketOptions applies the socket options that must precede PACKET_RX_RING
// (packet(7): the version and the reserve fix the ring's frame layout).
func setPacketOptions(fd, version, reserve int, qdiscBypass bool) error {
	opts := []struct {
		name       string
		level, opt int
		val        int
	}{
		{"PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, version},
		{"PACKET_RESERVE", unix.SOL_PACKET, unix.PACKET_RESERVE, reserve},
		// The director must not see its own transmissions (Linux ≥ 4.20): they would
		// come back through the ring as if received.
		{"PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1},
	}
	if qdiscBypass {
		opts = append(opts, struct {
			name       string
			level, opt int
			val        int
		}{"PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return os.NewSyscallError("setsockopt "+o.name, err)
		}
	}
	// Sends never block (MSG_DONTWAIT): a full send buffer or device queue is
	// retried a few times, then the frame is dropped (txBatch.send), so a wedged
	// device cannot wedge the worker.
	return nil
}

// attachFilter sets the socket's classic BPF filter, or removes it for a nil program.
// The kernel swaps the filter under RCU (sk_attach_filter): every frame meets either
// the old program or the new one, never none, so a reload is atomic.
func attachFilter(fd int, raw []bpf.RawInstruction) error {
	if raw == nil {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
		if err != nil && !errors.Is(err, unix.ENOENT) { // ENOENT: there was none
			return os.NewSyscallError("setsockopt SO_DETACH_FILTER", err)
		}
		return nil
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return os.NewSyscallError("setsockopt SO_ATTACH_FILTER", err)
	}
	return nil
}

// setMembership subscribes the socket to, or unsubscribes it from, a link-layer
// multicast group (packet(7), PACKET_ADD_MEMBERSHIP with PACKET_MR_MULTICAST): the
// kernel adds the address to the interface's filter for as long as the socket holds
// it, and drops it when the socket closes. The zero address stands for all multicast
// (PACKET_MR_ALLMULTI: the interface's allmulti count).
func setMembership(fd, ifindex int, mac [6]byte, join bool) error {
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mreq.Address[:], mac[:])
	if mac == ([6]byte{}) {
		// The zero address stands for every group (Filter.MulticastMACs).
		mreq.Type, mreq.Alen = unix.PACKET_MR_ALLMULTI, 0
	}
	opt, name := unix.PACKET_ADD_MEMBERSHIP, "setsockopt PACKET_ADD_MEMBERSHIP"
	if !join {
		opt, name = unix.PACKET_DROP_MEMBERSHIP, "setsockopt PACKET_DROP_MEMBERSHIP"
	}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, opt, &mreq); err != nil {
		return os.NewSyscallError(name, err)
	}
	return nil
}

// assembleFilter compiles f; nil stays nil (no filter).
func assembleFilter(f *Filter) ([]bpf.RawInstruction, error) {
	if f == nil {
		return nil, nil
	}
	return f.Assemble()
}

// txBatch holds one sendmmsg(2) batch: a message per frame, each with one iovec
// pointing at the frame wherever it lives. It is preallocated so that a WriteBatch
// allocates nothing; only WriteBatch's goroutine uses it.
type txBatch struct {
	msgs []unix.Mmsghdr
	iovs []unix.Iovec
}

func newTXBatch(n int) txBatch {
	b := txBatch{msgs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n)}
	for i := range b.msgs {
		// No address: the socket is bound to the interface, and packet_snd sends to
		// the bound interface and protocol (packet(7)).
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
	return b
}

// txTransient reports whether a send error concerns only the frame or the moment, so
// the frame is dropped and the batch goes on: too long for the device (EMSGSIZE), too
// short for its link header (EINVAL), no buffer or queue space (ENOBUFS, ENOMEM,
// EAGAIN: the send buffer), the link is down (ENETDOWN). Anything else (ENXIO: the
// interface is gone; EBADF, EFAULT: a bug) stops the batch. EAGAIN, ENOBUFS and ENOMEM
// are retried first (txBusy).
func txTransient(e unix.Errno) bool {
	switch e {
	case unix.EMSGSIZE, unix.EINVAL, unix.ENOBUFS, unix.ENOMEM, unix.EAGAIN, unix.ENETDOWN:
		return true
	}
	return false
}

// txBusy reports whether a send failed because the socket's send buffer (EAGAIN),
// the device queue (a qdisc, a veth peer's backlog: NET_XMIT_DROP is ENOBUFS) or the
// kernel's memory was full for the moment. Such a frame is retried after a short
// pause before it is dropped: a burst then waits in the receive ring, which is sized
// for 50–100 ms (Config.Packets), instead of being lost at the device.
func txBusy(e unix.Errno) bool { return e == unix.EAGAIN || e == unix.ENOBUFS || e == unix.ENOMEM }

// txRetries is how many busy sends one batch retries; the pauses double from
// txRetryPause (20, 40, 80, 160 µs: 300 µs in all, about what a 1000-frame backlog
// takes to drain). Past that the device is not keeping up: frames are dropped at
// once, so the worker goes back to its ring.
const (
	txRetries    = 4
	txRetryPause = 20 * time.Microsecond
)

// send sends the first m prepared messages, retrying frames the device is too busy
// for and skipping over frames the kernel refuses for another transient reason:
// usually one system call, one more per refused frame or retry. It clears the iovecs
// afterwards so the batch keeps no frame memory reachable (and no pointer into a
// ring that may be unmapped later).
func (b *txBatch) send(fd, m int) (sent, drops, busy int, errno unix.Errno) {
	msgs := b.msgs[:m]
	for len(msgs) > 0 {
		n, e := sendmmsg(fd, msgs)
		switch {
		case e == 0 && n > 0:
			msgs = msgs[n:]
			sent += n
		case e == unix.EINTR:
		case txBusy(e) && busy < txRetries:
			// Syscall, not raw: a pause of tens of microseconds may let another
			// goroutine have the P.
			ts := unix.NsecToTimespec(int64(txRetryPause) << busy)
			_ = unix.Nanosleep(&ts, nil)
			busy++
		case e != 0 && txTransient(e):
			msgs = msgs[1:]
			drops++
		default:
			if e == 0 {
				e = unix.EIO // the kernel took nothing and said nothing: do not spin
			}
			drops += len(msgs)
			msgs = nil
			errno = e
		}
	}
	for i := range b.iovs[:m] {
		b.iovs[i] = unix.Iovec{}
	}
	return sent, drops, busy, errno
}
