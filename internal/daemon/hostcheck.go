package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// ErrHost reports a host that is not fit to run a director on: gvs refuses to start
// rather than run in a state that would duplicate or lose packets.
var ErrHost = errors.New("host check")

// hostChecker is the live Host: interfaces from the kernel, sysctls under procSys
// (/proc/sys), routes from procRoute (/proc/net/route).
type hostChecker struct {
	procSys   string
	procRoute string
}

var _ Host = hostChecker{}

// Check implements Host.
func (h hostChecker) Check(ifname string) (Interface, error) {
	ifi, err := h.check(ifname)
	if err != nil {
		return Interface{}, err
	}
	return interfaceOf(ifi), nil
}

// Interface implements Host.
func (h hostChecker) Interface(name string) (Interface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return Interface{}, err
	}
	return interfaceOf(ifi), nil
}

// DefaultGateway implements Host.
func (h hostChecker) DefaultGateway(ifname string) netip.Addr {
	return defaultGateway(h.procRoute, ifname)
}

// interfaceOf describes a kernel interface.
func interfaceOf(ifi *net.Interface) Interface {
	out := Interface{Name: ifi.Name, Index: ifi.Index, MAC: ifi.HardwareAddr, MTU: ifi.MTU,
		Up: ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out.Addrs = append(out.Addrs, ip.Unmap())
			}
		}
	}
	return out
}

// check verifies that ifname exists and is up, and that the kernel will not forward
// VIP traffic itself: with forwarding on, a frame gvs also sees on its ring would be
// routed a second time by the kernel (a duplicate at the real server, or a reply
// sent twice). It returns the interface and every problem, each with its fix.
func (h hostChecker) check(ifname string) (*net.Interface, error) {
	return h.checkWith(ifname, true)
}

// checkBasics is check without the forwarding check (GuardedHost).
func (h hostChecker) checkBasics(ifname string) (*net.Interface, error) {
	return h.checkWith(ifname, false)
}

func (h hostChecker) checkWith(ifname string, forwarding bool) (*net.Interface, error) {
	if ifname == "" {
		return nil, fmt.Errorf("%w: [director] interface is not set: name the NIC gvs serves on (e.g. interface = \"eth0\")", ErrHost)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("%w: interface %q: %v (ip -br link lists the interfaces)", ErrHost, ifname, err)
	}
	var problems []string
	if ifi.Flags&net.FlagUp == 0 {
		problems = append(problems, fmt.Sprintf("interface %s is down: ip link set %s up", ifname, ifname))
	}
	if len(ifi.HardwareAddr) != 6 {
		problems = append(problems, fmt.Sprintf("interface %s has no Ethernet address (%v): gvs needs an Ethernet interface", ifname, ifi.HardwareAddr))
	}
	for _, fam := range []struct{ dir, name string }{{"ipv4", "net.ipv4.conf"}, {"ipv6", "net.ipv6.conf"}} {
		if !forwarding {
			break
		}
		p := fmt.Sprintf("%s/net/%s/conf/%s/forwarding", h.procSys, fam.dir, ifname)
		b, err := os.ReadFile(p)
		if err != nil {
			if fam.dir == "ipv6" && errors.Is(err, os.ErrNotExist) {
				continue // IPv6 disabled on the host: nothing can be forwarded
			}
			problems = append(problems, fmt.Sprintf("cannot read %s: %v", p, err))
			continue
		}
		if strings.TrimSpace(string(b)) != "0" {
			problems = append(problems, fmt.Sprintf("%s forwarding is on for %s, so the kernel would forward a second copy of VIP traffic: sysctl -w %s.%s.forwarding=0", fam.dir, ifname, fam.name, ifname))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrHost, strings.Join(problems, "; "))
	}
	return ifi, nil
}
