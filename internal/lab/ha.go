package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Seed 004 (docs/seeds.md) in the lab: two load balancers, dir1 (lb1) and dir2
// (lb2), each a web server bound to every address and a gvs in VRRP-only mode with
// two instances, active-active: VI_1 (VRID 51, HAVIP1 labelled eth0:1) master on
// lb1, VI_2 (VRID 52, HAVIP2 labelled eth0:2) master on lb2. The VIPs go on the
// masters' eth0 as kernel addresses, so the web server of whichever holds a VIP
// answers it; the real servers of the lab are not used. docs/vrrp.md "Kernel
// addresses".

// HA offsets of the two VIPs in the lab's subnet (.110, .111): away from the DR
// VIP the real servers hold on lo.
const (
	haVIP1Offset = 110
	haVIP2Offset = 111
)

// HAVIPs returns seed 004's two VIPs in this lab.
func (l *Lab) HAVIPs() (netip.Addr, netip.Addr) {
	return nthAddr(l.spec.Subnet, haVIP1Offset), nthAddr(l.spec.Subnet, haVIP2Offset)
}

// nthAddr returns the address n past the network address of p.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// HAConfig returns gvs's seed-004 config for director ("dir1" is lb1, "dir2" lb2):
// VRRP only, two instances, VIPs with their labels, the control socket in RunDir.
func (l *Lab) HAConfig(director string) (string, error) {
	first, err := l.haFirst(director)
	if err != nil {
		return "", err
	}
	v1, v2 := l.HAVIPs()
	bits := l.spec.Subnet.Bits()
	var b strings.Builder
	fmt.Fprintf(&b, "# seed 004 in the lab: %s, VRRP only (gvs lab up --mode ha)\n", director)
	fmt.Fprintf(&b, "[director]\ncontrol_socket = %q\n", filepath.Join(l.RunDir(), director+".sock"))
	for i, inst := range []struct {
		name string
		vrid int
		vip  netip.Addr
	}{{"VI_1", 51, v1}, {"VI_2", 52, v2}} {
		prio, state := 100, "BACKUP"
		if (i == 0) == first {
			prio, state = 150, "MASTER"
		}
		fmt.Fprintf(&b, "\n[[vrrp]]\nname = %q\ninterface = \"eth0\"\nstate = %q\nvirtual_router_id = %d\npriority = %d\nadvert_int = \"1s\"\n",
			inst.name, state, inst.vrid, prio)
		fmt.Fprintf(&b, "auth_type = \"PASS\"\nauth_pass = \"1111\"\nvirtual_ipaddress = [\"%v/%d dev eth0 label eth0:%d\"]\n", inst.vip, bits, i+1)
	}
	return b.String(), nil
}

// HAKeepalivedConfig is HAConfig for keepalived (keepalived.conf syntax), for a
// mixed pair.
func (l *Lab) HAKeepalivedConfig(director string) (string, error) {
	first, err := l.haFirst(director)
	if err != nil {
		return "", err
	}
	v1, v2 := l.HAVIPs()
	bits := l.spec.Subnet.Bits()
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n}\n", director)
	for i, inst := range []struct {
		name string
		vrid int
		vip  netip.Addr
	}{{"VI_1", 51, v1}, {"VI_2", 52, v2}} {
		prio, state := 100, "BACKUP"
		if (i == 0) == first {
			prio, state = 150, "MASTER"
		}
		fmt.Fprintf(&b, "vrrp_instance %s {\n    state %s\n    interface eth0\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n", inst.name, state, inst.vrid, prio)
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n")
		fmt.Fprintf(&b, "    virtual_ipaddress {\n        %v/%d dev eth0 label eth0:%d\n    }\n}\n", inst.vip, bits, i+1)
	}
	return b.String(), nil
}

// haFirst reports whether director is lb1.
func (l *Lab) haFirst(director string) (bool, error) {
	switch {
	case len(l.hostsWith(Director)) < 2:
		return false, fmt.Errorf("lab %s: seed 004 needs two directors (Directors = 2)", l.spec.Prefix)
	case director == "dir1":
		return true, nil
	case director == "dir2":
		return false, nil
	}
	return false, fmt.Errorf("lab %s: %q is not dir1 or dir2", l.spec.Prefix, director)
}

// HAConfigPath is where StartHA writes director's seed-004 config.
func (l *Lab) HAConfigPath(director string) string {
	return filepath.Join(l.RunDir(), director+"-ha.toml")
}

// StartWeb starts the web server of load balancer director ("lb1" on dir1): `lab
// serve` on every address, so it answers the VIPs the kernel holds there.
func (l *Lab) StartWeb(ctx context.Context, director string) (Proc, error) {
	first, err := l.haFirst(director)
	if err != nil {
		return Proc{}, err
	}
	name := "lb2"
	if first {
		name = "lb1"
	}
	return l.start(ctx, director, "web", true, "lab", "serve", "--name", name,
		"--http", ":"+strconv.Itoa(int(l.spec.HTTPPort)), "--udp", ":"+strconv.Itoa(int(l.spec.UDPPort)))
}

// StartHA writes both seed-004 configs and starts, on each load balancer, its web
// server and gvs (VRRP only). It returns the gvs processes (dir1's, dir2's).
func (l *Lab) StartHA(ctx context.Context) ([]Proc, error) {
	var out []Proc
	for _, d := range []string{"dir1", "dir2"} {
		cfg, err := l.HAConfig(d)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(l.HAConfigPath(d), []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("lab %s: %w", l.spec.Prefix, err)
		}
		if _, err := l.StartWeb(ctx, d); err != nil {
			return nil, err
		}
		p, err := l.StartDirector(ctx, d, l.HAConfigPath(d))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
