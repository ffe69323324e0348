package lab

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// enablePktinfo asks for each datagram's destination address (IP_PKTINFO, or
// IPV6_RECVPKTINFO on an IPv6 socket).
func enablePktinfo(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	v6 := false
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil && len(a.IP) == net.IPv6len {
		v6 = true
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt PKTINFO: %w", serr)
	}
	return nil
}

// pktinfoDst returns the destination address of a datagram from its control
// messages (struct in_pktinfo's ipi_addr).
func pktinfoDst(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo {
			// in_pktinfo: ifindex (4 bytes), spec_dst (4), addr (4).
			return netip.AddrFrom4([4]byte(m.Data[8:12])), true
		}
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo {
			// in6_pktinfo: addr (16 bytes), ifindex (4).
			return netip.AddrFrom16([16]byte(m.Data[:16])), true
		}
	}
	return netip.Addr{}, false
}

// pktinfoSrc returns the control message that sends a datagram from src.
func pktinfoSrc(src netip.Addr) []byte {
	if src.Is6() {
		return unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src.As16()})
	}
	if !src.Is4() {
		return nil
	}
	return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: src.As4()})
}
