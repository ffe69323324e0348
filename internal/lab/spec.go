package lab

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"
)

// A Mode is the forwarding method a lab is built for. The zero value is not a mode;
// a Spec with a zero Mode gets DR.
type Mode uint8

const (
	_   Mode = iota
	DR       // direct routing: VIP on the real servers' lo, ARP hidden
	NAT      // masquerading: client outside, real servers route through the director
	TUN      // IP-in-IP: as DR, plus a userspace decapsulator on each real server
)

// ParseMode parses "dr", "nat" or "tun" (any case).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "dr":
		return DR, nil
	case "nat":
		return NAT, nil
	case "tun":
		return TUN, nil
	}
	return 0, fmt.Errorf("lab: unknown mode %q (dr, nat or tun)", s)
}

func (m Mode) String() string {
	switch m {
	case DR:
		return "dr"
	case NAT:
		return "nat"
	case TUN:
		return "tun"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Defaults of a Spec's zero fields.
const (
	DefaultPrefix   = "gvs"
	DefaultStateDir = "/run/gvs-lab"
	DefaultHTTPPort = 80
	DefaultUDPPort  = 53

	maxRealServers = 32 // rsN is at offset 4+N: stays well below the VIP at .100
	vipOffset      = 100

	maxClusterDirectors = 8 // cluster labs: dirN at offset 2+N
	clusterRealServers  = 4
)

// The IPv6 networks of a lab with IPv6 set (from the documentation prefix, RFC
// 3849): the inside LAN, NAT's outside network, and the IPv6 VIP.
var (
	Subnet6  = netip.MustParsePrefix("2001:db8::/64")
	Outside6 = netip.MustParsePrefix("2001:db8:0:1::/64")
	VIP6     = netip.MustParseAddr("2001:db8::100")
)

var (
	defaultSubnet = netip.MustParsePrefix("198.18.0.0/24")
	prefixRE      = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)
)

// A Spec describes a lab. Its zero value is the default lab: DR, one director, two
// real servers on 198.18.0.0/24, VIP 198.18.0.100, prefix "gvs". Every zero field
// means its documented default.
type Spec struct {
	// Prefix starts every name the lab makes ("<prefix>-rs1"): a lowercase letter,
	// then up to 11 lowercase letters or digits. Labs with different prefixes
	// coexist. "" = DefaultPrefix.
	Prefix string
	// Mode is the forwarding method the topology is built for. 0 = DR.
	Mode Mode
	// RealServers is the number of real servers, 1..32. 0 = 2.
	RealServers int
	// Directors is 1 or 2 (the second for VRRP). 0 = 1.
	Directors int
	// Subnet is the shared LAN of client, directors and real servers (in NAT mode
	// the inside network): IPv4, the network address, at most /25.
	// Zero = 198.18.0.0/24.
	Subnet netip.Prefix
	// Outside is NAT mode's client network, between the client and the gateway.
	// Zero = the block of Subnet's size that follows Subnet (198.18.1.0/24).
	Outside netip.Prefix
	// VIP is the virtual address, inside Subnet. Zero = Subnet's .100.
	VIP netip.Addr
	// IPv6 gives every host an IPv6 address as well, in Subnet6 (NAT's outside
	// network: Outside6), the real servers the IPv6 VIP (VIP6) and the
	// directors IPv6 services beside the IPv4 ones. Host n of the IPv4 subnet is
	// host n of Subnet6 too (198.18.0.5 and 2001:db8::5).
	IPv6 bool
	// HTTPPort and UDPPort are where each real server's HTTP server (answering
	// its name) and UDP echo listen, on every address. 0 = 80 and 53.
	HTTPPort, UDPPort uint16
	// Cluster > 0 builds a cluster lab (docs/lab.md "Cluster lab") of that many directors,
	// 2..8, each running gvs in cluster mode and BIRD, behind a router namespace
	// running BIRD with ECMP and BFD; the client sits behind the router on the
	// outside network and the VIP is routed, outside both networks. DR only.
	// Directors follows it; RealServers defaults to 4.
	Cluster int
	// ClusterNoSync (cluster labs) points each director's sync at its own address,
	// so it hears no peer: the "sync off" baseline, mh alone.
	ClusterNoSync bool
	// ClusterScheduler (cluster labs) is the services' scheduler: "" = mh (with
	// mh-fallback and mh-port); "rr" for C5b's second baseline.
	ClusterScheduler string
	// ClusterSyncFlush (cluster labs) is each director's sync_flush: 0 = gvs's
	// default (100 ms); 2 s is the kernel's, for C7's comparison.
	ClusterSyncFlush time.Duration
	// ClusterVRRP (cluster labs) makes the directors an active/standby pair
	// ([cluster] announce = "vrrp", docs/cluster.md §14): no BIRD anywhere, the
	// router reaches the VIP on the directors' LAN (a route on its LAN device, so
	// it asks ARP), and a [[vrrp]] instance holds the VIP — dir1 at priority 150,
	// the others at 100. Sync runs as in the ECMP lab.
	ClusterVRRP bool
	// ClusterBulkRate (cluster labs) is each director's bulk_rate: 0 = gvs's
	// default (200,000 records/s).
	ClusterBulkRate int
	// HANoPreempt (HA mode): both instances start as BACKUP with nopreempt, as
	// keepalived wants for nopreempt, so a recovered balancer does not take its VIP
	// back. Default: preempt, the masters as seed 004 writes them.
	HANoPreempt bool
	// StateDir holds the state file <prefix>.json and the directory <prefix>/
	// with logs and generated configs. "" = DefaultStateDir.
	StateDir string
	// Exe is the gvs binary the lab runs in the namespaces: `Exe lab serve ...`
	// on real servers, `Exe run -c FILE` for directors. "" = os.Executable(), so a
	// test binary that hands "lab ..." arguments to RunHelper serves as well.
	Exe string
	// Detach marks a lab meant to outlive its creator (gvs lab up). A lab that is
	// not detached (a test's) counts as stale once its creator has exited, and
	// DownStale removes it.
	Detach bool
	// Log receives progress messages; nil discards them. Not recorded in the
	// state file: a lab opened later logs nowhere.
	Log *slog.Logger
}

// Resolve returns s with every zero field filled in, or why s is invalid: what Up
// will build, without building it.
func (s Spec) Resolve() (Spec, error) {
	if s.Prefix == "" {
		s.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(s.Prefix) {
		return s, fmt.Errorf("lab: prefix %q: want a lowercase letter then up to 11 lowercase letters or digits", s.Prefix)
	}
	if s.Mode == 0 {
		s.Mode = DR
	}
	if s.Mode > TUN {
		return s, fmt.Errorf("lab: invalid mode %v", s.Mode)
	}
	if s.Cluster != 0 {
		if s.Cluster < 2 || s.Cluster > maxClusterDirectors {
			return s, fmt.Errorf("lab: cluster of %d directors: want 2..%d", s.Cluster, maxClusterDirectors)
		}
		if s.Mode != DR || s.IPv6 {
			return s, fmt.Errorf("lab: a cluster lab is DR over IPv4 only (got %v, IPv6 %v)", s.Mode, s.IPv6)
		}
		s.Directors = s.Cluster
		if s.ClusterScheduler != "" && s.ClusterScheduler != "mh" && s.ClusterScheduler != "rr" {
			return s, fmt.Errorf("lab: cluster scheduler %q: mh or rr", s.ClusterScheduler)
		}
		if s.RealServers == 0 {
			s.RealServers = clusterRealServers
		}
	}
	if s.RealServers == 0 {
		s.RealServers = 2
	}
	if s.RealServers < 1 || s.RealServers > maxRealServers {
		return s, fmt.Errorf("lab: %d real servers: want 1..%d", s.RealServers, maxRealServers)
	}
	if s.Directors == 0 {
		s.Directors = 1
	}
	if s.Directors != 1 && s.Directors != 2 && s.Cluster == 0 {
		return s, fmt.Errorf("lab: %d directors: want 1 or 2", s.Directors)
	}
	if !s.Subnet.IsValid() {
		s.Subnet = defaultSubnet
	}
	if !s.Subnet.Addr().Is4() || s.Subnet.Bits() > 25 || s.Subnet != s.Subnet.Masked() {
		return s, fmt.Errorf("lab: subnet %v: want an IPv4 network address of at most /25 (e.g. 198.18.0.0/24)", s.Subnet)
	}
	if !s.Outside.IsValid() {
		next, ok := blockAfter(s.Subnet)
		if !ok {
			return s, fmt.Errorf("lab: subnet %v: no room for the outside network after it", s.Subnet)
		}
		s.Outside = next
	}
	if s.Mode == NAT || s.Cluster != 0 {
		if !s.Outside.Addr().Is4() || s.Outside.Bits() > 30 || s.Outside != s.Outside.Masked() {
			return s, fmt.Errorf("lab: outside network %v: want an IPv4 network address of at most /30", s.Outside)
		}
		if s.Outside.Overlaps(s.Subnet) {
			return s, fmt.Errorf("lab: outside network %v overlaps subnet %v", s.Outside, s.Subnet)
		}
	}
	if s.Cluster != 0 {
		if err := s.resolveClusterVIP(); err != nil {
			return s, err
		}
	}
	if !s.VIP.IsValid() {
		s.VIP = offset(s.Subnet, vipOffset)
	}
	if !s.Subnet.Contains(s.VIP) && s.Cluster == 0 {
		return s, fmt.Errorf("lab: VIP %v is not in subnet %v", s.VIP, s.Subnet)
	}
	if s.HTTPPort == 0 {
		s.HTTPPort = DefaultHTTPPort
	}
	if s.UDPPort == 0 {
		s.UDPPort = DefaultUDPPort
	}
	if s.StateDir == "" {
		s.StateDir = DefaultStateDir
	}
	if s.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return s, fmt.Errorf("lab: find own executable: %w", err)
		}
		s.Exe = exe
	}
	return s, nil
}

// blockAfter returns the prefix of p's size that follows p.
func blockAfter(p netip.Prefix) (netip.Prefix, bool) {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	size := uint32(1) << (32 - p.Bits())
	n := v + size
	if n < v {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), p.Bits()), true
}

// offset returns the address n after p's network address.
func offset(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// A Role is what a host does in the lab. The zero value is not a role.
type Role uint8

const (
	_          Role = iota
	Switch          // <p>-sw: the bridges, nothing else
	Client          // <p>-client: where curl runs
	Gateway         // <p>-gw (NAT): the router between outside and inside
	Director        // <p>-dirN: where gvs run goes
	RealServer      // <p>-rsN: HTTP and UDP echo servers, VIP on lo (DR, TUN)
	Router          // <p>-router (cluster): BIRD, ECMP over the directors
)

func (r Role) String() string {
	switch r {
	case Switch:
		return "switch"
	case Client:
		return "client"
	case Gateway:
		return "gateway"
	case Director:
		return "director"
	case RealServer:
		return "real server"
	case Router:
		return "router"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// A Host is one network namespace of a lab.
type Host struct {
	Name  string // "client", "dir1", "rs1", "gw", "sw"
	NS    string // the namespace: "<prefix>-<name>"
	Role  Role
	Links []Link // the host's interfaces toward the switch (none for the switch)
}

// Addr returns the address of the host's first interface (eth0), or the zero Addr
// for the switch.
func (h Host) Addr() netip.Addr {
	if len(h.Links) == 0 {
		return netip.Addr{}
	}
	return h.Links[0].Addr.Addr()
}

// Addr6 returns the IPv6 address of the host's first interface, or the zero Addr
// in a lab without IPv6 and for the switch.
func (h Host) Addr6() netip.Addr {
	if len(h.Links) == 0 {
		return netip.Addr{}
	}
	return h.Links[0].Addr6.Addr()
}

// MAC returns the MAC of the host's first interface, or nil for the switch.
func (h Host) MAC() net.HardwareAddr {
	if len(h.Links) == 0 {
		return nil
	}
	return h.Links[0].MAC
}

// A Link is one veth of a host, plugged into a bridge of the switch.
type Link struct {
	Name   string       // inside the host: "eth0", "eth1"
	Addr   netip.Prefix // address and subnet length
	Addr6  netip.Prefix // IPv6 address and subnet length, in labs with IPv6 (else zero)
	MAC    net.HardwareAddr
	Bridge string // "br0" (Subnet) or "br1" (NAT's outside network)
	Port   string // the veth's other end, in the switch
}

// Bridge names in the switch namespace.
const (
	bridgeInside  = "br0"
	bridgeOutside = "br1"
)

// mac is 02:00:00:00:LL:XX: locally administered, LL the leg (0 inside, 1 outside)
// and XX the address's last octet, so `tcpdump -e` reads as the addresses do.
func mac(leg byte, a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0, 0, 0, leg, b[3]}
}

// plan lays out the hosts of a resolved spec: switch, gateway (NAT) or router (cluster), client,
// directors, real servers, in that order.
func plan(s Spec) []Host {
	ns := func(name string) string { return s.Prefix + "-" + name }
	in := func(n int) Link {
		a := offset(s.Subnet, n)
		k := Link{Name: "eth0", Addr: netip.PrefixFrom(a, s.Subnet.Bits()), MAC: mac(0, a), Bridge: bridgeInside}
		if s.IPv6 {
			k.Addr6 = netip.PrefixFrom(offset(Subnet6, n), Subnet6.Bits())
		}
		return k
	}
	out := func(name string, n int) Link {
		a := offset(s.Outside, n)
		k := Link{Name: name, Addr: netip.PrefixFrom(a, s.Outside.Bits()), MAC: mac(1, a), Bridge: bridgeOutside}
		if s.IPv6 {
			k.Addr6 = netip.PrefixFrom(offset(Outside6, n), Outside6.Bits())
		}
		return k
	}
	hosts := []Host{{Name: "sw", NS: ns("sw"), Role: Switch}}
	if s.Mode == NAT || s.Cluster != 0 {
		// The client sits outside, behind NAT's gateway or the cluster's router.
		name, role := "gw", Gateway
		if s.Cluster != 0 {
			name, role = "router", Router
		}
		l0, l1 := in(1), out("eth1", 1)
		l0.Port, l1.Port = name, name+"-out"
		hosts = append(hosts, Host{Name: name, NS: ns(name), Role: role, Links: []Link{l0, l1}})
		l := out("eth0", 2)
		l.Port = "client"
		hosts = append(hosts, Host{Name: "client", NS: ns("client"), Role: Client, Links: []Link{l}})
	} else {
		l := in(2)
		l.Port = "client"
		hosts = append(hosts, Host{Name: "client", NS: ns("client"), Role: Client, Links: []Link{l}})
	}
	for i := 1; i <= s.Directors; i++ {
		name := fmt.Sprintf("dir%d", i)
		l := in(2 + i)
		l.Port = name
		hosts = append(hosts, Host{Name: name, NS: ns(name), Role: Director, Links: []Link{l}})
	}
	rsBase := 4
	if s.Cluster != 0 {
		rsBase = 2 + s.Directors // .3 .. are the directors
	}
	for i := 1; i <= s.RealServers; i++ {
		name := fmt.Sprintf("rs%d", i)
		l := in(rsBase + i)
		l.Port = name
		hosts = append(hosts, Host{Name: name, NS: ns(name), Role: RealServer, Links: []Link{l}})
	}
	return hosts
}

// namespaceRE matches every namespace name a lab with this prefix can make, so Down
// finds the remains of a lab whose state file is lost, and never another prefix's
// (the "-" ends the prefix, which has none).
func namespaceRE(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-(sw|gw|router|client|dir[0-9]+|rs[0-9]+)$`)
}

// Sentinels callers tell apart with errors.Is.
var (
	ErrExists   = errors.New("lab exists")                        // Up: the prefix is taken
	ErrNotFound = errors.New("no such lab")                       // Open, Status: no state file
	ErrBusy     = errors.New("namespace still used by a process") // Down: a process the lab did not start holds a namespace
)
