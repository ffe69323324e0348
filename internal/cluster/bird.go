package cluster

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// BirdConfig describes one director's BIRD 2 configuration (docs/cluster.md §8):
// BIRD learns the VIP routes gvs puts into a kernel table and exports exactly the
// configured VIPs to the router, by BGP with BFD or by OSPF.
type BirdConfig struct {
	NodeID   string     // for the header comment
	RouterID netip.Addr // BIRD's router id: an IPv4 address of the director
	Local    netip.Addr // the director's address toward the router (BGP source, OSPF interface)
	Router   netip.Addr // the router (BGP neighbour)
	LocalAS  uint32     // the director's AS (equal on every director keeps multipath simple)
	RouterAS uint32
	// Local6 and Router6 carry a second BGP session for IPv6 VIPs; required when there
	// are IPv6 VIPs and BGP is used.
	Local6  netip.Addr
	Router6 netip.Addr
	VIPs    []netip.Addr
	Table   int    // announce_table
	Proto   int    // announce_proto
	Device  string // announce_device
	OSPF    bool   // OSPF instead of BGP
	// Interface is the director's interface toward the router (OSPF, BFD).
	Interface string
	// NoBFD leaves BFD out (routers without it); a silent director is then found by
	// the hold timer (9 s) instead of in 0.3 s.
	NoBFD bool
}

// ErrBirdConfig is wrapped by the errors Write returns.
var ErrBirdConfig = errors.New("cannot write a BIRD config")

func (c *BirdConfig) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cluster: bird-config: "+format+": %w", append(args, ErrBirdConfig)...)
	}
	var v4, v6 int
	for _, v := range c.VIPs {
		if v.Is4() {
			v4++
		} else {
			v6++
		}
	}
	switch {
	case len(c.VIPs) == 0:
		return bad("no VIPs: the config has no [[service]] with a VIP, or --vip was not given")
	case !c.RouterID.Is4():
		return bad("router id %v: BIRD needs an IPv4 router id (the director's [director] address, or --router-id)", c.RouterID)
	case c.Table < 1 || c.Table > 252:
		return bad("announce_table %d: must be 1 to 252", c.Table)
	case c.Proto < 1 || c.Proto > 255:
		return bad("announce_proto %d: must be 1 to 255", c.Proto)
	case c.OSPF && c.Interface == "":
		return bad("OSPF needs the interface toward the router (sync_interface or --interface)")
	case !c.OSPF && (!c.Local.IsValid() || !c.Router.IsValid() || c.Local.Is4() != c.Router.Is4()):
		return bad("BGP needs the director's and the router's addresses of one family (--local, --router); got %v and %v", c.Local, c.Router)
	case !c.OSPF && (c.LocalAS == 0 || c.RouterAS == 0):
		return bad("BGP needs both AS numbers (--as, --router-as)")
	case !c.OSPF && v6 > 0 && (!c.Local6.Is6() || !c.Router6.Is6()):
		return bad("%d IPv6 VIPs need an IPv6 BGP session: give --local6 and --router6", v6)
	case !c.OSPF && v4 > 0 && !c.Local.Is4():
		return bad("%d IPv4 VIPs need an IPv4 BGP session: --local and --router must be IPv4", v4)
	}
	return nil
}

// Write writes the complete, commented configuration.
func (c *BirdConfig) Write(w io.Writer) error {
	if err := c.check(); err != nil {
		return err
	}
	var v4, v6 []netip.Addr
	for _, v := range c.VIPs {
		if v.Is4() {
			v4 = append(v4, v)
		} else {
			v6 = append(v6, v)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# BIRD 2 configuration for gvs director %q, written by `gvs cluster bird-config`.", c.NodeID)
	p("#")
	p("# gvs adds one route per announced VIP to kernel table %d (protocol %d), through the", c.Table, c.Proto)
	p("# TAP device %q it holds open. The kernel deletes the device, and with it every", c.Device)
	p("# route, the moment gvs exits or dies: BIRD sees the routes go and withdraws them.")
	p("# gvs adds a route only while the VIP's health gate is open (sync warm, data path")
	p("# alive, a service with quorum, not draining), so never write these routes by hand.")
	p("")
	p("log syslog all;")
	p("router id %s;", c.RouterID)
	p("")
	p("# The VIP routes, learned from the kernel; nothing else is ever exported.")
	if len(v4) > 0 {
		p("ipv4 table gvs_vips4;")
	}
	if len(v6) > 0 {
		p("ipv6 table gvs_vips6;")
	}
	p("")
	p("# Interface states; the kernel protocols need it.")
	p("protocol device {")
	p("\tscan time 10;")
	p("}")
	kernel := func(name, af, table string) {
		p("")
		p("# Learn gvs's routes from kernel table %d, only those of protocol %d.", c.Table, c.Proto)
		p("protocol kernel %s {", name)
		p("\tkernel table %d;", c.Table)
		p("\tlearn;")
		p("\tscan time 10;")
		p("\t%s {", af)
		p("\t\ttable %s;", table)
		p("\t\timport filter { if krt_source = %d then accept; reject; };", c.Proto)
		p("\t\texport none;")
		p("\t};")
		p("}")
	}
	filter := func(name string, vips []netip.Addr, bits int, bgp bool) {
		nets := make([]string, len(vips))
		for i, v := range vips {
			nets[i] = fmt.Sprintf("%s/%d", v, bits)
		}
		p("")
		p("# Exactly the configured VIPs, nothing else, whatever appears in the table.")
		p("filter %s {", name)
		p("\tif net ~ [ %s ] then {", strings.Join(nets, ", "))
		if bgp {
			p("\t\t# An explicit ORIGIN: speakers that set it differently would fall out of multipath.")
			p("\t\tbgp_origin = ORIGIN_IGP;")
		}
		p("\t\taccept;")
		p("\t}")
		p("\treject;")
		p("}")
	}
	if len(v4) > 0 {
		kernel("gvs_kernel4", "ipv4", "gvs_vips4")
		filter("gvs_export4", v4, 32, !c.OSPF)
	}
	if len(v6) > 0 {
		kernel("gvs_kernel6", "ipv6", "gvs_vips6")
		filter("gvs_export6", v6, 128, !c.OSPF)
	}
	if !c.NoBFD {
		p("")
		p("# BFD: a director that dies silently is withdrawn in about 0.3 s (100 ms x 3)")
		p("# instead of after the hold time. The router must run BFD with the same timers.")
		p("protocol bfd {")
		if c.Interface != "" {
			p("\tinterface %q {", c.Interface)
		} else {
			p("\tinterface \"*\" {")
		}
		p("\t\tmin rx interval 100 ms;")
		p("\t\tmin tx interval 100 ms;")
		p("\t\tmultiplier 3;")
		p("\t};")
		p("}")
	}
	bfd := "on"
	if c.NoBFD {
		bfd = "off"
	}
	if c.OSPF {
		c.writeOSPF(p, v4, v6, bfd)
	} else {
		bgp := func(name string, local, router netip.Addr, af, table, export string) {
			p("")
			p("# The session to the router. Timers: hold 9 / keepalive 3, reconnect fast after an")
			p("# error (BIRD's default error wait kept a healed director away for 96 s).")
			p("protocol bgp %s {", name)
			p("\tlocal %s as %d;", local, c.LocalAS)
			p("\tneighbor %s as %d;", router, c.RouterAS)
			p("\tbfd %s;", bfd)
			p("\thold time 9;")
			p("\tkeepalive time 3;")
			p("\tconnect delay time 1;")
			p("\tconnect retry time 5;")
			p("\terror wait time 1, 10;")
			p("\t%s {", af)
			p("\t\ttable %s;", table)
			p("\t\timport none;")
			p("\t\texport filter %s;", export)
			p("\t\tnext hop self;")
			p("\t};")
			p("}")
		}
		if len(v4) > 0 {
			bgp("gvs_router4", c.Local, c.Router, "ipv4", "gvs_vips4", "gvs_export4")
		}
		if len(v6) > 0 {
			bgp("gvs_router6", c.Local6, c.Router6, "ipv6", "gvs_vips6", "gvs_export6")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (c *BirdConfig) writeOSPF(p func(string, ...any), v4, v6 []netip.Addr, bfd string) {
	area := func(name, version, af, table, export string) {
		p("")
		p("# OSPF %s: the VIPs become external routes of this director. Hello 1 s / dead 4 s;", version)
		p("# note that a VIP announced again within MinLSInterval (5 s) waits for it.")
		p("protocol ospf %s %s {", version, name)
		p("\t%s {", af)
		p("\t\ttable %s;", table)
		p("\t\timport none;")
		p("\t\texport filter %s;", export)
		p("\t};")
		p("\tarea 0 {")
		p("\t\tinterface %q {", c.Interface)
		p("\t\t\thello 1;")
		p("\t\t\tdead 4;")
		p("\t\t\tbfd %s;", bfd)
		p("\t\t};")
		p("\t};")
		p("}")
	}
	if len(v4) > 0 {
		area("gvs_ospf4", "v2", "ipv4", "gvs_vips4", "gvs_export4")
	}
	if len(v6) > 0 {
		area("gvs_ospf6", "v3", "ipv6", "gvs_vips6", "gvs_export6")
	}
}
