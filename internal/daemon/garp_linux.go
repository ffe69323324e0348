package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gvs-lb/gvs/dataplane/header"
)

// garpSender sends gratuitous ARPs and unsolicited NAs from its own AF_PACKET
// socket (protocol 0: it receives nothing). It does not use a ring: a Ring's
// WriteBatch belongs to its worker goroutine (dataplane.Link's contract).
type garpSender struct {
	mu      sync.Mutex
	fd      int
	ifindex int
	mac     [6]byte
	buf     [128]byte
}

func openGARP(ifi Interface) (Announcer, error) {
	if len(ifi.MAC) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address for gratuitous ARP", ifi.Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("gratuitous ARP socket on %s: %w", ifi.Name, err)
	}
	return &garpSender{fd: fd, ifindex: ifi.Index, mac: [6]byte(ifi.MAC)}, nil
}

// Announce sends one GARP (IPv4) or unsolicited NA (IPv6) per VIP.
func (g *garpSender) Announce(vips []netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd < 0 {
		return net.ErrClosed
	}
	for _, v := range vips {
		var n int
		proto := uint16(unix.ETH_P_ARP)
		if v.Is4() {
			n = header.GratuitousARP(g.buf[:], g.mac, v.As4())
			// keepalived puts the broadcast address in the target hardware field
			// of its gratuitous ARPs; some switches and hosts only learn from
			// that form (docs/vrrp.md "Kernel addresses").
			header.ARP(g.buf[header.EthernetHeaderLen : header.EthernetHeaderLen+header.ARPLen]).SetTargetHardwareAddress(broadcastMAC)
		} else {
			n = header.UnsolicitedNA(g.buf[:], g.mac, v.As16())
			proto = unix.ETH_P_IPV6
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: g.ifindex, Halen: 6}
		copy(sa.Addr[:], g.buf[:6])
		if err := unix.Sendto(g.fd, g.buf[:n], 0, sa); err != nil {
			return err
		}
	}
	return nil
}

func (g *garpSender) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
	return nil
}

var _ Announcer = (*garpSender)(nil)

// broadcastMAC is ff:ff:ff:ff:ff:ff.
var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
