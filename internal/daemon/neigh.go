package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mdlayher/arp"
)

// neighbors resolves real servers' MAC addresses: from the kernel's neighbour table
// first (/proc/net/arp), then by asking with ARP on the director's interface. Pinned
// MACs in the config are never looked up.
type neighbors struct {
	ifi     *net.Interface
	procARP string
	timeout time.Duration
}

// kernelTable reads the kernel's IPv4 neighbour table for the interface.
func (n *neighbors) kernelTable() map[netip.Addr]net.HardwareAddr {
	m := map[netip.Addr]net.HardwareAddr{}
	f, err := os.Open(n.procARP)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// IP address  HW type  Flags  HW address  Mask  Device
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != n.ifi.Name || fs[2] == "0x0" {
			continue
		}
		a, err1 := netip.ParseAddr(fs[0])
		hw, err2 := net.ParseMAC(fs[3])
		if err1 == nil && err2 == nil && len(hw) == 6 {
			m[a] = hw
		}
	}
	return m
}

// Resolve implements Resolver: the kernel's neighbour table first, then up to three
// ARP requests (IPv4) or neighbour solicitations (IPv6) of n.timeout each.
func (n *neighbors) Resolve(ctx context.Context, a netip.Addr) (net.HardwareAddr, error) {
	if a.Is4() {
		if hw, ok := n.kernelTable()[a]; ok {
			return hw, nil
		}
		c, err := arp.Dial(n.ifi)
		if err != nil {
			return nil, fmt.Errorf("ARP on %s: %w", n.ifi.Name, err)
		}
		defer c.Close()
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
		defer stop()
		for try := 0; try < 3 && ctx.Err() == nil; try++ {
			_ = c.SetDeadline(time.Now().Add(n.timeout))
			if hw, err := c.Resolve(a); err == nil {
				return hw, nil
			}
		}
		return nil, fmt.Errorf("%s does not answer ARP on %s", a, n.ifi.Name)
	}
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		if hw, err := solicit(n.ifi, a, n.timeout); err == nil {
			return hw, nil
		}
	}
	return nil, fmt.Errorf("%s does not answer neighbour solicitations on %s", a, n.ifi.Name)
}

func (n *neighbors) String() string { return fmt.Sprintf("neighbours on %s", n.ifi.Name) }

// defaultGateway reads the IPv4 default route of ifname from a /proc/net/route
// style file: the next hop toward the clients of a NAT director.
func defaultGateway(path, ifname string) netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || fs[0] != ifname || fs[1] != "00000000" || fs[7] != "00000000" {
			continue
		}
		v, err := strconv.ParseUint(fs[2], 16, 32)
		if err != nil || v == 0 {
			continue
		}
		// The kernel prints the address in host (little-endian) order.
		return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	return netip.Addr{}
}
