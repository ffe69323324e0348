// Package ipvs is gvs's one model of what IPVS is configured with: virtual services,
// their real servers, forwarding methods, protocols and timeouts. Config, the daemon,
// the Director and the connection table all use these types; translators (ipvsadm's
// command line and listings, keepalived.conf, TOML) convert at their edges.
//
// Every type is a comparable value built from net/netip, with one String and one
// Parse form.
package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/sched"
)

// Defaults, as ipvsadm and the kernel have them. They are the only copy: config,
// importers and the control socket take them from here.
const (
	DefaultScheduler = "wlc" // ipvsadm -A without -s
	DefaultWeight    = 1     // ipvsadm -a without -w
	DefaultMethod    = DR    // ipvsadm -a without -g/-m/-i
	// DefaultMHTableSize is the mh scheduler's table size when none is chosen: the
	// kernel's CONFIG_IP_VS_MH_TAB_INDEX default (12), as sched.New uses it.
	DefaultMHTableSize = 4093
	// DefaultPersistence is libipvs's IPVS_SVC_PERSISTENT_TIMEOUT: ipvsadm -p
	// without a value, and keepalived's persistence when only its granularity or
	// an empty persistence_timeout is given (not the 300 s ipvsadm's man page says).
	DefaultPersistence = 360 * time.Second
)

// DefaultTimeouts are the kernel's (ipvsadm --set 900 120 300).
var DefaultTimeouts = Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}

// ErrSyntax is what every Parse error is (errors.Is). The errors print their
// message alone, so that a config or command-line error reads as the user's
// mistake, not as this package's.
var ErrSyntax = errors.New("ipvs: syntax")

// syntaxError is a Parse error: its message, and ErrSyntax for errors.Is.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string        { return e.msg }
func (e *syntaxError) Is(target error) bool { return target == ErrSyntax }

func syntaxf(format string, args ...any) error {
	return &syntaxError{fmt.Sprintf(format, args...)}
}

// Protocol is a service's transport protocol; its value is the IP protocol number.
type Protocol uint8

// The protocols gvs serves.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

// String returns "TCP" or "UDP", as ipvsadm prints them.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// ParseProtocol parses "tcp" or "udp" in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, syntaxf("protocol %q: one of tcp, udp", s)
}

// Method is a forwarding method. Its value is the kernel's IP_VS_CONN_F_FWD_MASK
// value plus one, so the zero value means "not set".
type Method uint8

// Forwarding methods. Local and Bypass occur only on connections, never in a config.
const (
	_      Method = iota
	NAT           // masquerading: ipvsadm -m, listed "Masq"
	Local         // local node: listed "Local"
	TUN           // IP-in-IP tunnelling: ipvsadm -i, listed "Tunnel"
	DR            // direct routing: ipvsadm -g, listed "Route"
	Bypass        // cache bypass: no real server, routed unchanged
)

// KernelFlags returns the method as the kernel's connection flags carry it
// (IP_VS_CONN_F_MASQ 0 … IP_VS_CONN_F_BYPASS 4). Precondition: m is set.
func (m Method) KernelFlags() uint32 { return uint32(m) - 1 }

// MethodFromKernel is the inverse of KernelFlags; ok is false for a value outside
// the forwarding mask's defined values.
func MethodFromKernel(f uint32) (m Method, ok bool) {
	if f > 4 {
		return 0, false
	}
	return Method(f + 1), true
}

// String returns the config spelling: "dr", "nat" or "tun" ("local", "bypass").
func (m Method) String() string {
	switch m {
	case DR:
		return "dr"
	case NAT:
		return "nat"
	case TUN:
		return "tun"
	case Local:
		return "local"
	case Bypass:
		return "bypass"
	}
	return "Method(" + strconv.Itoa(int(m)) + ")"
}

// Listing returns ipvsadm's column name: "Route", "Masq", "Tunnel", "Local", "Bypass".
func (m Method) Listing() string {
	switch m {
	case DR:
		return "Route"
	case NAT:
		return "Masq"
	case TUN:
		return "Tunnel"
	case Local:
		return "Local"
	case Bypass:
		return "Bypass"
	}
	return "(null)"
}

// ErrNotImplemented is wrapped by ParseMethod for fullnat.
var ErrNotImplemented = errors.New("not implemented")

// ParseMethod parses "dr", "nat" or "tun" in any case, and names the right spelling
// for ipvsadm's and keepalived's other words for them.
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(s) {
	case "dr":
		return DR, nil
	case "nat":
		return NAT, nil
	case "tun":
		return TUN, nil
	case "fullnat":
		return 0, fmt.Errorf("%w: method fullnat (use dr, nat or tun)", ErrNotImplemented)
	case "route", "droute", "gatewaying", "g":
		return 0, syntaxf("unknown method %q (did you mean \"dr\"?); one of: dr, nat, tun", s)
	case "masq", "masquerading", "m":
		return 0, syntaxf("unknown method %q (did you mean \"nat\"?); one of: dr, nat, tun", s)
	case "tunnel", "ipip", "i":
		return 0, syntaxf("unknown method %q (did you mean \"tun\"?); one of: dr, nat, tun", s)
	}
	return 0, syntaxf("unknown method %q; one of: dr, nat, tun", s)
}

// A MAC is an Ethernet address. The zero value means "not set".
type MAC [6]byte

// IsZero reports whether m is unset.
func (m MAC) IsZero() bool { return m == MAC{} }

// HardwareAddr returns m as a new net.HardwareAddr, or nil when m is unset.
func (m MAC) HardwareAddr() net.HardwareAddr {
	if m.IsZero() {
		return nil
	}
	return net.HardwareAddr(m[:])
}

// String formats m as 02:00:00:00:00:05 ("" when unset).
func (m MAC) String() string {
	if m.IsZero() {
		return ""
	}
	return net.HardwareAddr(m[:]).String()
}

// MACFrom converts a 6-byte hardware address; anything else gives the zero MAC.
func MACFrom(h net.HardwareAddr) MAC {
	if len(h) != 6 {
		return MAC{}
	}
	return MAC(h)
}

// ParseMAC parses a unicast 6-byte Ethernet address in any form net.ParseMAC
// accepts. The all-zero address is refused, since zero means "not set", and so are
// multicast and broadcast addresses, which are no host's.
func ParseMAC(s string) (MAC, error) {
	h, err := net.ParseMAC(s)
	if err != nil || len(h) != 6 {
		return MAC{}, syntaxf("invalid MAC %q (want six bytes like \"02:00:00:00:00:05\")", s)
	}
	m := MAC(h)
	switch {
	case m.IsZero():
		return MAC{}, syntaxf("MAC %s is all zeros", net.HardwareAddr(h))
	case m[0]&1 != 0:
		return MAC{}, syntaxf("MAC %s is a multicast or broadcast address; want a unicast one", m)
	}
	return m, nil
}

// A Key identifies a virtual service as the kernel hashes it: (protocol, VIP, port)
// or (fwmark, family). Build one with AddrKey or MarkKey so equal services have equal
// keys.
type Key struct {
	Protocol Protocol       // zero for an fwmark service
	Addr     netip.AddrPort // VIP:port, port 0 = all ports; zero for an fwmark service
	FWMark   uint32         // non-zero: an fwmark service
	IPv6     bool           // the service's address family
}

// AddrKey returns the key of the service at ap (an IPv4-mapped address is unmapped).
func AddrKey(p Protocol, ap netip.AddrPort) Key {
	a := ap.Addr().Unmap()
	return Key{Protocol: p, Addr: netip.AddrPortFrom(a, ap.Port()), IPv6: a.Is6()}
}

// MarkKey returns the key of an fwmark service.
func MarkKey(mark uint32, ipv6 bool) Key { return Key{FWMark: mark, IPv6: ipv6} }

// IsMark reports whether k is an fwmark service's key.
func (k Key) IsMark() bool { return k.FWMark != 0 }

// String returns "TCP 198.18.0.100:80", "UDP [2001:db8::1]:53", "FWM 1" or
// "FWM 1 IPv6"; ParseKey reads it back.
func (k Key) String() string {
	if k.FWMark != 0 {
		s := "FWM " + strconv.FormatUint(uint64(k.FWMark), 10)
		if k.IPv6 {
			s += " IPv6"
		}
		return s
	}
	return k.Protocol.String() + " " + k.Addr.String()
}

// ParseKey parses Key.String's form.
func ParseKey(s string) (Key, error) {
	f := strings.Fields(s)
	bad := syntaxf("service %q: want \"TCP VIP:port\", \"UDP VIP:port\" or \"FWM mark [IPv6]\"", s)
	if len(f) < 2 {
		return Key{}, bad
	}
	if strings.EqualFold(f[0], "FWM") {
		m, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil || m == 0 || len(f) > 3 || (len(f) == 3 && !strings.EqualFold(f[2], "IPv6")) {
			return Key{}, bad
		}
		return MarkKey(uint32(m), len(f) == 3), nil
	}
	p, err := ParseProtocol(f[0])
	if err != nil || len(f) != 2 {
		return Key{}, bad
	}
	ap, err := netip.ParseAddrPort(f[1])
	if err != nil {
		return Key{}, bad
	}
	return AddrKey(p, ap), nil
}

// A Match selects the packets that carry an fwmark service's mark. gvs has no
// netfilter to set marks, so these rules play the mangle-table rule's part: a packet
// matches when its destination is Addr, its protocol Protocol (0 = any) and its
// destination port in [PortLo, PortHi] (both 0 = any port).
type Match struct {
	Protocol       Protocol
	Addr           netip.Addr
	PortLo, PortHi uint16
}

// A Service is a virtual service as ipvsadm -A defines it, with its real servers in
// the order they are added (the kernel's list is the reverse: new ones go first).
type Service struct {
	Key
	Scheduler   string        // one of sched's names
	Flags       sched.Flags   // scheduler flags (ipvsadm -b)
	MHTableSize int           // mh table size; 0 = the default
	Persistence time.Duration // 0 = not persistent
	Netmask     netip.Prefix  // persistence granularity (its bits); invalid = full address
	OPS         bool          // one-packet scheduling (UDP packets only)
	Match       []Match       // fwmark services: the packets carrying the mark
	RealServers []RealServer
}

// Netmask returns the persistence granularity of bits in a family, as
// Service.Netmask holds it: a prefix of the unspecified address. bits outside the
// family's 0..32 (0..128) give the whole address (/32, /128).
func Netmask(ipv6 bool, bits int) netip.Prefix {
	base, full := netip.IPv4Unspecified(), 32
	if ipv6 {
		base, full = netip.IPv6Unspecified(), 128
	}
	if bits < 0 || bits > full {
		bits = full
	}
	return netip.PrefixFrom(base, bits)
}

// String returns the key's form.
func (s *Service) String() string { return s.Key.String() }

// Find returns the index of the real server at ap, or -1.
func (s *Service) Find(ap netip.AddrPort) int {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for i := range s.RealServers {
		if s.RealServers[i].Addr == ap {
			return i
		}
	}
	return -1
}

// A RealServer is one real server of a service (ipvsadm -a).
type RealServer struct {
	Addr           netip.AddrPort // port 0: the packet's port is kept (fwmark, port-0 services)
	Weight         int32          // ≥ 0; 0 = quiescent
	UpperThreshold uint32         // 0 = no limit
	LowerThreshold uint32         // 0 = 3/4 of UpperThreshold
	Method         Method
	MAC            MAC // pinned next-hop MAC; zero = resolve
}

// String returns "198.18.0.5:80".
func (r *RealServer) String() string { return r.Addr.String() }

// Timeouts are ipvsadm --set's: TCP ESTABLISHED, TCP FIN_WAIT, UDP.
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// String returns the three values in seconds, as ipvsadm -L --timeout prints them:
// "900 120 300".
func (t Timeouts) String() string {
	return fmt.Sprintf("%d %d %d", int64(t.TCP/time.Second), int64(t.TCPFin/time.Second), int64(t.UDP/time.Second))
}

// ParseTimeouts parses Timeouts.String's form (three whole numbers of seconds).
func ParseTimeouts(s string) (Timeouts, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Timeouts{}, syntaxf("timeouts %q: want \"tcp tcpfin udp\" in seconds", s)
	}
	var d [3]time.Duration
	for i, v := range f {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return Timeouts{}, syntaxf("timeouts %q: %q is not a number of seconds", s, v)
		}
		d[i] = time.Duration(n) * time.Second
	}
	return Timeouts{TCP: d[0], TCPFin: d[1], UDP: d[2]}, nil
}
