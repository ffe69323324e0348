package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gvs-lb/gvs/dataplane/header"
)

// solicit resolves an IPv6 real server's MAC the way the kernel would: a neighbour
// solicitation to the target's solicited-node multicast address (RFC 4861 §7.2.2),
// from one of the interface's own IPv6 addresses, and the first matching neighbour
// advertisement within timeout.
func solicit(ifi *net.Interface, target netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	src := ownIPv6(ifi)
	if !src.IsValid() {
		return nil, fmt.Errorf("interface %s has no IPv6 address to solicit %s from", ifi.Name, target)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", ifi.Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IPV6)))
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	t16 := target.As16()
	snm := [16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t16[13], 14: t16[14], 15: t16[15]}
	dstMAC := [6]byte{0x33, 0x33, 0xff, t16[13], t16[14], t16[15]}
	frame := make([]byte, header.EthernetHeaderLen+header.IPv6HeaderLen+32)
	e := header.Ethernet(frame)
	e.SetDestinationAddress(dstMAC)
	e.SetSourceAddress([6]byte(ifi.HardwareAddr))
	e.SetType(header.EtherTypeIPv6)
	ip := frame[header.EthernetHeaderLen:]
	binary.BigEndian.PutUint32(ip[0:], 6<<28)
	binary.BigEndian.PutUint16(ip[4:], 32)
	ip[6], ip[7] = header.IPProtoICMPv6, 255
	s16 := src.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], snm[:])
	m := ip[header.IPv6HeaderLen:]
	m[0] = header.ICMPv6NeighborSolicit
	copy(m[8:24], t16[:])
	m[24], m[25] = 1, 1 // source link-layer address option (RFC 4861 §4.6.1)
	copy(m[26:32], ifi.HardwareAddr)
	binary.BigEndian.PutUint16(m[2:], ^header.Checksum(m, header.PseudoHeaderSum(s16[:], snm[:], header.IPProtoICMPv6, 32)))
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifi.Index, Halen: 6}
	copy(sa.Addr[:], dstMAC[:])
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		return nil, err
	}
	var p header.Parsed
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // timeout: look at the deadline again
		}
		b := buf[:n]
		if p.Decode(b) != header.DropNone || !p.IPv6 || p.Proto != header.IPProtoICMPv6 || p.ICMPType != header.ICMPv6NeighborAdvert || p.TTL != 255 {
			continue
		}
		na := b[p.L4Off:p.End]
		if len(na) < 24 || [16]byte(na[8:24]) != t16 {
			continue
		}
		// The target link-layer address option, else the frame's source.
		for opt := na[24:]; len(opt) >= 8 && opt[1] != 0 && int(opt[1])*8 <= len(opt); opt = opt[int(opt[1])*8:] {
			if opt[0] == 2 {
				return net.HardwareAddr(append([]byte(nil), opt[2:8]...)), nil
			}
		}
		src := header.Ethernet(b).SourceAddress()
		return net.HardwareAddr(src[:]), nil
	}
	return nil, errors.New("no neighbour advertisement")
}

// ownIPv6 returns an IPv6 address of the interface, preferring a global one.
func ownIPv6(ifi *net.Interface) netip.Addr {
	in := interfaceOf(ifi)
	if a := in.addr(false); a.IsValid() {
		return a
	}
	for _, a := range in.Addrs {
		if a.Is6() && !a.Is4In6() {
			return a
		}
	}
	return netip.Addr{}
}
