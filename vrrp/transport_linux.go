package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawTransport is a raw IP socket for protocol 112 (docs/vrrp.md §2.8), bound to one
// device. IPv4: the kernel builds the IP header (TTL and multicast TTL 255, TOS
// 0xc0, source from IP_PKTINFO); reads return the whole IP packet, header included,
// so the TTL comes from the header. IPv6: the kernel builds the header (hop limits
// 255, traffic class 0xc0, source from IPV6_PKTINFO); reads return the payload and
// the hop limit and destination come from IPV6_HOPLIMIT and IPV6_PKTINFO. The VRRP
// checksum is computed and verified here in both families: IPV6_CHECKSUM is not
// set, so a bad IPv6 checksum is counted instead of vanishing in the kernel.
//
// The socket is non-blocking and registered with the Go poller through an
// os.File, so Close wakes a blocked Receive.
type rawTransport struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
	ipv6    bool

	rmu      sync.Mutex // guards rbuf, oob
	rbuf     []byte
	oob      []byte
	wmu      sync.Mutex // guards wbuf, woob
	wbuf     []byte
	woob     []byte
	closeErr error
	once     sync.Once
	closed   atomic.Bool
}

// OpenTransport opens a raw VRRP socket in the calling thread's network namespace,
// bound to c.Interface, joined to the VRRP group there unless c.Unicast. It needs
// CAP_NET_RAW (and CAP_NET_ADMIN is not needed).
func OpenTransport(c TransportConfig) (Transport, error) {
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp: transport: %w", err)
	}
	family := unix.AF_INET
	if c.IPv6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("vrrp: transport: raw socket: %w", err)
	}
	fail := func(what string, err error) (Transport, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp: transport on %s: %s: %w", c.Interface, what, err)
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name); err != nil {
		return fail("SO_BINDTODEVICE", err)
	}
	if c.IPv6 {
		opts := []struct {
			name string
			opt  int
			val  int
		}{
			{"IPV6_MULTICAST_HOPS", unix.IPV6_MULTICAST_HOPS, HopLimit},
			{"IPV6_UNICAST_HOPS", unix.IPV6_UNICAST_HOPS, HopLimit},
			{"IPV6_MULTICAST_LOOP", unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_MULTICAST_IF", unix.IPV6_MULTICAST_IF, ifi.Index},
			{"IPV6_TCLASS", unix.IPV6_TCLASS, TOSNetworkControl},
			{"IPV6_RECVHOPLIMIT", unix.IPV6_RECVHOPLIMIT, 1},
			{"IPV6_RECVPKTINFO", unix.IPV6_RECVPKTINFO, 1},
		}
		for _, o := range opts {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
				return fail(o.name, err)
			}
		}
		if !c.Unicast {
			mreq := &unix.IPv6Mreq{Interface: uint32(ifi.Index)}
			mreq.Multiaddr = MulticastGroup(true).As16()
			if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
				return fail("IPV6_JOIN_GROUP ff02::12", err)
			}
		}
	} else {
		opts := []struct {
			name string
			opt  int
			val  int
		}{
			{"IP_TTL", unix.IP_TTL, HopLimit},
			{"IP_MULTICAST_TTL", unix.IP_MULTICAST_TTL, HopLimit},
			{"IP_MULTICAST_LOOP", unix.IP_MULTICAST_LOOP, 0},
			{"IP_MULTICAST_ALL", unix.IP_MULTICAST_ALL, 0},
			{"IP_TOS", unix.IP_TOS, TOSNetworkControl},
		}
		for _, o := range opts {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, o.opt, o.val); err != nil {
				return fail(o.name, err)
			}
		}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}); err != nil {
			return fail("IP_MULTICAST_IF", err)
		}
		if !c.Unicast {
			mreq := &unix.IPMreqn{Multiaddr: MulticastGroup(false).As4(), Ifindex: int32(ifi.Index)}
			if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
				return fail("IP_ADD_MEMBERSHIP 224.0.0.18", err)
			}
		}
	}
	f := os.NewFile(uintptr(fd), "vrrp-"+c.Interface)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("vrrp: transport on %s: %w", c.Interface, err)
	}
	return &rawTransport{
		f: f, rc: rc, ifindex: ifi.Index, ipv6: c.IPv6,
		rbuf: make([]byte, 65536), oob: make([]byte, 128),
	}, nil
}

func (t *rawTransport) Send(p *Packet) error {
	if err := validSend(p, t.ipv6); err != nil {
		return err
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	var err error
	if t.wbuf, err = p.Advert.Append(t.wbuf[:0], p.Src, p.Dst); err != nil {
		return err
	}
	var to unix.Sockaddr
	if t.ipv6 {
		sa := &unix.SockaddrInet6{Addr: p.Dst.As16()}
		if p.Dst.IsLinkLocalUnicast() || p.Dst.IsLinkLocalMulticast() || p.Dst.IsInterfaceLocalMulticast() {
			sa.ZoneId = uint32(t.ifindex)
		}
		to = sa
		// struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
		var info [20]byte
		src := p.Src.As16()
		copy(info[:16], src[:])
		binary.NativeEndian.PutUint32(info[16:], uint32(t.ifindex))
		t.woob = appendCmsg(t.woob[:0], unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, info[:])
	} else {
		to = &unix.SockaddrInet4{Addr: p.Dst.As4()}
		// struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr; }
		var info [12]byte
		binary.NativeEndian.PutUint32(info[:4], uint32(t.ifindex))
		src := p.Src.As4()
		copy(info[4:8], src[:])
		t.woob = appendCmsg(t.woob[:0], unix.IPPROTO_IP, unix.IP_PKTINFO, info[:])
	}
	var serr error
	werr := t.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), t.wbuf, t.woob, to, 0)
		return serr != unix.EAGAIN
	})
	if werr != nil {
		return t.closedErr(werr)
	}
	if serr != nil {
		return fmt.Errorf("vrrp: send to %v: %w", p.Dst, serr)
	}
	return nil
}

func appendCmsg(b []byte, level, typ int, data []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(len(data)))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level = int32(level)
	h.Type = int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[start+unix.CmsgLen(0):], data)
	return b
}

func (t *rawTransport) Receive(p *Packet) error {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	var n, oobn int
	var from unix.Sockaddr
	var rerr error
	err := t.rc.Read(func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), t.rbuf, t.oob, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return t.closedErr(err)
	}
	if rerr != nil {
		return fmt.Errorf("vrrp: receive: %w", rerr)
	}
	if !t.ipv6 {
		return p.UnmarshalBinary(t.rbuf[:n])
	}
	sa, ok := from.(*unix.SockaddrInet6)
	if !ok {
		return ErrIPHeader
	}
	p.Src = netip.AddrFrom16(sa.Addr)
	p.Dst = netip.Addr{}
	p.HopLimit = 0
	p.TOS, p.ID, p.FlowLabel = 0, 0, 0
	msgs, perr := unix.ParseSocketControlMessage(t.oob[:oobn])
	if perr != nil {
		return ErrIPHeader
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch m.Header.Type {
		case unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				p.HopLimit = uint8(binary.NativeEndian.Uint32(m.Data))
			}
		case unix.IPV6_PKTINFO:
			if len(m.Data) >= 16 {
				p.Dst = netip.AddrFrom16([16]byte(m.Data[:16]))
			}
		}
	}
	if !p.Dst.IsValid() {
		return ErrIPHeader
	}
	return p.Advert.Decode(t.rbuf[:n], p.Src, p.Dst)
}

// closedErr maps the poller's "use of closed file" after Close to ErrClosed.
func (t *rawTransport) closedErr(err error) error {
	if t.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

func (t *rawTransport) Close() error {
	t.once.Do(func() {
		t.closed.Store(true)
		t.closeErr = t.f.Close()
	})
	return t.closeErr
}
