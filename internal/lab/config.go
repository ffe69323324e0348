package lab

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
)

// VRRP settings of two-director labs: keepalived's usual example values.
const (
	vrrpRouterID       = 51
	vrrpMasterPriority = 150
	vrrpBackupPriority = 100
)

// DirectorConfig returns the gvs config (TOML) for director ("dir1", "dir2") in
// this lab: [director] on eth0 with the director's MAC and address, a control
// socket of its own under RunDir, and two round-robin services on the VIP with
// every real server and its pinned MAC — TCP on the HTTP port and UDP on the echo
// port — forwarded by the lab's mode. NAT adds gateway_mac (replies go to the
// clients through the gateway); two directors add a [[vrrp]] instance, dir1
// MASTER at priority 150, dir2 BACKUP at 100. Up writes it to ConfigPath.
func (l *Lab) DirectorConfig(director string) (string, error) {
	h, ok := l.Host(director)
	if !ok || h.Role != Director {
		return "", fmt.Errorf("lab %s: %q is not a director", l.spec.Prefix, director)
	}
	if l.spec.Cluster != 0 {
		return l.clusterConfig(h), nil
	}
	s := l.spec
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# gvs lab %q (%v): config of director %s, written by gvs lab up.", s.Prefix, s.Mode, director)
	p("#   ip netns exec %s gvs run -c %s", h.NS, l.ConfigPath(director))
	p("")
	p("[director]")
	p("interface = %q", h.Links[0].Name)
	p("mac = %q", h.MAC())
	p("address = %q", h.Addr())
	if s.IPv6 {
		p("address6 = %q", h.Addr6())
	}
	p("control_socket = %q", filepath.Join(l.RunDir(), director+".sock"))
	if _, err := exec.LookPath("nft"); err == nil {
		p("# Drop VIP frames at netdev ingress once gvs's ring has seen them (nftables).")
		p("ingress_drop = true")
	}
	if s.Mode == NAT {
		gw, _ := l.Host("gw")
		p("# NAT replies go back to the clients through the gateway %s.", gw.NS)
		p("gateway_mac = %q", gw.MAC())
	}
	if s.Directors > 1 {
		state, prio := "BACKUP", vrrpBackupPriority
		if director == "dir1" {
			state, prio = "MASTER", vrrpMasterPriority
		}
		p("")
		p("[[vrrp]]")
		p("name = \"VI_1\"")
		p("interface = %q", h.Links[0].Name)
		p("state = %q", state)
		p("virtual_router_id = %d", vrrpRouterID)
		p("priority = %d", prio)
		p("advert_int = \"1s\"")
		p("virtual_ipaddress = [%q]", s.VIP.String())
	}
	type service struct {
		proto string
		port  uint16
		v6    bool
	}
	svcs := []service{{"tcp", s.HTTPPort, false}, {"udp", s.UDPPort, false}}
	if s.IPv6 {
		svcs = append(svcs, service{"tcp", s.HTTPPort, true}, service{"udp", s.UDPPort, true})
	}
	for _, svc := range svcs {
		vip := s.VIP
		if svc.v6 {
			vip = VIP6
		}
		p("")
		p("[[service]]")
		p("address = %q", netip.AddrPortFrom(vip, svc.port).String())
		p("protocol = %q", svc.proto)
		p("scheduler = \"rr\"")
		p("method = %q", s.Mode.String())
		for _, rs := range l.hostsWith(RealServer) {
			a := rs.Addr()
			if svc.v6 {
				a = rs.Addr6()
			}
			p("")
			p("  [[service.real_server]]")
			if s.Mode == NAT {
				p("  address = %q", netip.AddrPortFrom(a, svc.port).String())
			} else {
				// DR and TUN cannot change the port: the real server listens on the VIP's.
				p("  address = %q", a)
			}
			p("  mac = %q", rs.MAC())
		}
	}
	return b.String(), nil
}
