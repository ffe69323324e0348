package lab

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// enablePktinfo asks for each datagram's destination address (IP_PKTINFO).
func enablePktinfo(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt IP_PKTINFO: %w", serr)
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
	}
	return netip.Addr{}, false
}

// pktinfoSrc returns the control message that sends a datagram from src.
func pktinfoSrc(src netip.Addr) []byte {
	if !src.Is4() {
		return nil
	}
	return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: src.As4()})
}
