package ipvsadm

import (
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// Protocol is an IP protocol number, as IPVS keys services by it.
// The zero value is no protocol; it prints as "?" in listings.
type Protocol uint8

// The protocols ipvsadm knows by name.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns ipvsadm's name for p: "TCP", "UDP", "SCTP", or "?".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "?"
}

// Method is a real server's forwarding method. The zero value is an unknown
// method, which ipvsadm prints as "(null)".
type Method uint8

// Forwarding methods. MethodLocal is what IPVS reports for a real server whose
// address is the director's own; it is added with -g.
const (
	_            Method = iota
	MethodRoute         // -g, direct routing ("Route"); the default
	MethodMasq          // -m, NAT ("Masq")
	MethodTunnel        // -i, IP-in-IP or GUE/GRE tunnelling ("Tunnel")
	MethodLocal         // local node ("Local")
)

// String returns the listing name: "Route", "Masq", "Tunnel", "Local", or "(null)".
func (m Method) String() string {
	switch m {
	case MethodRoute:
		return "Route"
	case MethodMasq:
		return "Masq"
	case MethodTunnel:
		return "Tunnel"
	case MethodLocal:
		return "Local"
	}
	return "(null)"
}

// TunnelType is the encapsulation of a MethodTunnel real server (--tun-type).
// The zero value is IP-in-IP, the kernel's default.
type TunnelType uint8

// Tunnel types, numbered as the kernel numbers them.
const (
	TunnelIPIP TunnelType = iota
	TunnelGUE
	TunnelGRE
)

// String returns the --tun-type name: "ipip", "gue" or "gre".
func (t TunnelType) String() string {
	switch t {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return "gue"
	case TunnelGRE:
		return "gre"
	}
	return "?"
}

// TunnelCsum is the checksum mode of a GUE or GRE tunnel. The zero value is no
// checksum (--tun-nocsum), the default.
type TunnelCsum uint8

// Checksum modes, numbered as the kernel's encap flag bits (0, 1<<0, 1<<1).
const (
	TunnelNoCsum  TunnelCsum = 0 // --tun-nocsum, listed as "-c"
	TunnelCsumOn  TunnelCsum = 1 // --tun-csum, listed as "+c"
	TunnelRemCsum TunnelCsum = 2 // --tun-remcsum, listed as "r+c"
)

// Stats are the counters of a service or real server since it was created or
// last zeroed (-Z), as --stats lists them.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

// Rates are the kernel's per-second estimates, as --rate lists them.
type Rates struct {
	CPS, InPPS, OutPPS, InBPS, OutBPS uint64
}

// Service is one virtual service as ipvsadm shows it. A service is either an
// address service (Protocol, Addr, Port) or, when FWMark is not zero, a
// firewall-mark service (FWMark, IPv6); the other key fields are then ignored.
//
// The zero value is an unusable service; fill in at least the key and
// Scheduler.
type Service struct {
	Protocol Protocol
	Addr     netip.Addr // IPv4 or IPv6; zero for an fwmark service
	Port     uint16
	FWMark   uint32
	IPv6     bool // for an fwmark service: the IPv6 family (-6)

	Scheduler string
	// Flags are the scheduler flags by name: "flag-1", "flag-2", "flag-3" or
	// the scheduler-specific aliases "sh-fallback", "sh-port", "mh-fallback",
	// "mh-port". Parse stores them in canonical order under the names that
	// suit Scheduler. Listings map each name to its bit (the kernel keeps bits,
	// not names) and print them as ipvsadm prints those bits.
	Flags []string

	Persistent bool
	Timeout    time.Duration // persistence timeout, whole seconds
	// Netmask is the persistence granularity as a prefix length: 1–31 for an
	// IPv4 service, 1–127 for IPv6. 0 means the whole address (/32 or /128),
	// the default; NetmaskAll is -M 0.0.0.0 (IPv4 only): every client is one.
	Netmask int
	PE      string // persistence engine (--pe), e.g. "sip"; "" for none
	OPS     bool   // one-packet scheduling (-o)

	Stats Stats
	Rates Rates
	Dests []Dest

	// Match are gvs's match rules of an fwmark service: which packets carry
	// its mark. ipvsadm has none; FormatSave writes them in a "# gvs:" line
	// before the service's -A, which gvs's restore reads.
	Match []ipvs.Match
}

// NetmaskAll is Service.Netmask for the IPv4 mask 0.0.0.0 (a prefix of length 0):
// every client shares one persistence template.
const NetmaskAll = -1

// is6 reports whether s is in the IPv6 family.
func (s *Service) is6() bool {
	if s.FWMark != 0 {
		return s.IPv6
	}
	return s.Addr.Is6()
}

// Dest is one real server of a service.
//
// The zero value is a real server with an unknown forwarding method; Parse
// fills in the defaults (MethodRoute, weight 1).
type Dest struct {
	Addr   netip.Addr
	Port   uint16 // 0 when the service is an fwmark service and none was given
	Method Method
	Weight int

	UThreshold, LThreshold uint32 // -x, -y; 0 is no limit

	// Tunnel parameters, meaningful when Method is MethodTunnel.
	TunnelType TunnelType
	TunnelPort uint16 // GUE destination port
	TunnelCsum TunnelCsum

	ActiveConns, InactConns, PersistConns uint32

	Stats Stats
	Rates Rates
}

// Conn is one entry of the connection table, as -c lists it.
type Conn struct {
	// Protocol is listed as "TCP", "UDP", "SCTP", "IP" (0, an fwmark
	// persistence template), "ICMP", "ICMPv6", or "ERR!".
	Protocol Protocol
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Dest     netip.AddrPort
	State    string        // the kernel's state name: "ESTABLISHED", "FIN_WAIT", "UDP", "NONE", …
	Expires  time.Duration // time left; listed as mm:ss in whole seconds
	// Template marks a persistence template. It changes nothing in the
	// listing (templates show as state NONE with the client's port 0), but
	// lets callers filter.
	Template bool
	// PEName and PEData are the persistence engine's fields. When PEName is
	// not empty and --persistent-conn is given, the line gets two more
	// columns.
	PEName, PEData string
}

// Info is what the kernel reports about IPVS itself, for the version line.
type Info struct {
	Version       string // "1.2.1"; an empty string prints as "0.0.0"
	ConnTableSize int    // the connection hash table size, 4096 by default
}

// Timeouts are the connection timeouts of --set and --timeout.
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// SyncState selects the master or the backup connection-sync daemon.
type SyncState uint8

// Sync daemon states, numbered as the kernel's state bits.
const (
	_          SyncState = iota
	SyncMaster           // "master"
	SyncBackup           // "backup"
)

// String returns "master" or "backup".
func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return "?"
}

// SyncDaemon is a connection-sync daemon, as --start-daemon takes it and
// --daemon lists it. Zero fields were not given and mean the kernel's
// defaults (syncid 0, maxlen 1472, group 224.0.0.81, port 8848, ttl 1),
// except McastIfn, which Parse sets to "eth0" for --start-daemon as ipvsadm
// does.
type SyncDaemon struct {
	State    SyncState
	McastIfn string
	SyncID   uint8
	MaxLen   uint16
	Group    netip.Addr
	Port     uint16
	TTL      uint8
}
