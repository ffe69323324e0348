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

	"github.com/gvs-lb/gvs/internal/config"
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

// resolve returns the MAC of each address it can find, and the addresses it cannot.
func (n *neighbors) resolve(ctx context.Context, addrs []netip.Addr) (map[netip.Addr]net.HardwareAddr, []netip.Addr) {
	found := n.kernelTable()
	out := map[netip.Addr]net.HardwareAddr{}
	var ask []netip.Addr
	for _, a := range addrs {
		if hw, ok := found[a]; ok {
			out[a] = hw
		} else {
			ask = append(ask, a)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	var missing []netip.Addr
	var c *arp.Client // dialled for the first IPv4 address that needs it
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for _, a := range ask {
		if !a.Is4() {
			var hw net.HardwareAddr
			for try := 0; try < 3 && hw == nil && ctx.Err() == nil; try++ {
				hw, _ = solicit(n.ifi, a, n.timeout)
			}
			if hw == nil {
				missing = append(missing, a)
			} else {
				out[a] = hw
			}
			continue
		}
		if c == nil {
			var err error
			if c, err = arp.Dial(n.ifi); err != nil {
				missing = append(missing, a)
				continue
			}
		}
		var hw net.HardwareAddr
		for try := 0; try < 3 && hw == nil && ctx.Err() == nil; try++ {
			_ = c.SetDeadline(time.Now().Add(n.timeout))
			hw, _ = c.Resolve(a)
		}
		if hw == nil {
			missing = append(missing, a)
			continue
		}
		out[a] = hw
	}
	return out, missing
}

func (n *neighbors) String() string { return fmt.Sprintf("neighbours on %s", n.ifi.Name) }

// hasNAT reports whether any real server of cfg is forwarded by NAT.
func hasNAT(cfg *config.Config) bool {
	for _, s := range cfg.Services {
		for _, rs := range s.RealServers {
			if rs.Method == config.MethodNAT {
				return true
			}
		}
	}
	return false
}

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
