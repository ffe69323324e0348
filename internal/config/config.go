package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/gvs-lb/gvs/sched"
)

// A Config is one validated configuration file. Parse fills every default, so a
// zero field means what the field's doc says, never "not given".
//
// A Config is immutable once returned: share it freely, replace it as a whole.
type Config struct {
	File     string    // the name errors were reported against (Load's path, Parse's name)
	Director Director  // [director]
	Services []Service // [[service]], in file order
	VRRP     []VRRP    // [[vrrp]], in file order
	// VRRPSyncGroups are the [[vrrp_sync_group]] tables, keepalived's
	// vrrp_sync_group, in file order.
	VRRPSyncGroups []VRRPSyncGroup
}

// Director is the [director] table: the director's own identity, table sizes,
// control endpoints, and the IPVS sysctls and timeouts that apply to every service.
type Director struct {
	Interface     string     // NIC for live mode; "" is valid for replay and tests
	MAC           MAC        // the director's own MAC; zero = learn it (replay: from frames)
	Address       netip.Addr // own IPv4: TUN outer source, source of ICMP errors; invalid = unset
	Address6      netip.Addr // own IPv6, same role; invalid = unset
	GatewayMAC    MAC        // next hop toward clients; zero = unset
	MTU           int        // route MTU toward real servers (TUN/DR DF checks), bytes
	ConnMax       int        // hard cap on connection entries
	ConnShards    int        // power of two
	ControlSocket string     // unix socket for gvs adm; "" = none
	MetricsListen string     // host:port of the metrics endpoint; "" = off
	IngressDrop   bool       // install an nftables netdev ingress rule dropping VIP frames after gvs saw them
	Sysctl        Sysctl
	Timeouts      Timeouts
}

// Sysctl holds the net.ipv4.vs.* settings gvs honours, under the kernel's names
// and with the kernel's defaults (SEMANTICS.md §8).
type Sysctl struct {
	ConnReuseMode           int  // conn_reuse_mode bitmap: 1 TIME_WAIT/CLOSE reuse reschedules, 2 also FIN_WAIT of DR/TUN
	ExpireNodestConn        bool // expire_nodest_conn
	ExpireQuiescentTemplate bool // expire_quiescent_template
	PMTUDisc                bool // pmtu_disc
	SloppyTCP               bool // sloppy_tcp
	ScheduleICMP            bool // schedule_icmp
}

// Timeouts are ipvsadm's --set tcp tcpfin udp.
type Timeouts struct {
	TCP    time.Duration // ESTABLISHED
	TCPFin time.Duration // FIN_WAIT
	UDP    time.Duration
}

// A Service is one [[service]] table: a virtual service as ipvsadm -A defines it.
type Service struct {
	Line int // line of the [[service]] header

	// Address is VIP:port; port 0 means all ports. It is the zero AddrPort for an
	// fwmark service, and FWMark is 0 for an address service.
	Address netip.AddrPort
	FWMark  uint32
	// Family is the service's address family: from Address, or `family` for fwmark.
	Family Family
	// Protocol is TCP or UDP. An fwmark service matches marked packets of any
	// protocol; its Protocol only decides whether OPS is allowed, as with ipvsadm.
	Protocol Protocol
	// Match lists, for an fwmark service, the packets that carry its mark (at least
	// one; none for an address service), in file order.
	Match []Match

	Scheduler   string      // one of sched's names (rr wrr lc wlc ... mh)
	SchedFlags  sched.Flags // from scheduler_flags, already checked against Scheduler
	MHTableSize int         // mh lookup table size (a prime); 0 unless Scheduler is mh

	Method      Method        // default forwarding method of RealServers (each has its own resolved)
	Persistence time.Duration // persistence timeout; 0 = not persistent
	Netmask     int           // persistence granularity as a prefix length: 0..32 (IPv4), 1..128 (IPv6)
	OPS         bool          // one-packet scheduling (UDP only)

	RealServers []RealServer // in file order; the Director adds them in this order
	Check       *Check       // nil = no health check

	// What health checks do with the service (keepalived's names):
	InhibitOnFailure bool           // a failed server gets weight 0 instead of leaving the list (per server too)
	SorryServer      netip.AddrPort // used when no real server is up (or quorum is lost); zero = none
	SorryServerMAC   MAC            // pinned MAC of the sorry server; zero = resolve
	Quorum           int64          // minimum sum of weights of live servers; below it the service is "down"
	Hysteresis       int64          // quorum must be regained by this much more before it counts as up
	QuorumUp         string         // shell command run when quorum is gained
	QuorumDown       string         // shell command run when quorum is lost
}

// Persistent reports whether the service has a persistence timeout.
func (s *Service) Persistent() bool { return s.Persistence > 0 }

// String names the service as ipvsadm -Ln does: "TCP  198.18.0.100:80" or "FWM  1".
func (s *Service) String() string {
	if s.FWMark != 0 {
		if s.Family == FamilyInet6 {
			return "FWM  " + strconv.FormatUint(uint64(s.FWMark), 10) + " IPv6"
		}
		return "FWM  " + strconv.FormatUint(uint64(s.FWMark), 10)
	}
	return s.Protocol.String() + "  " + s.Address.String()
}

// A Match is one [[service.match]] rule of an fwmark service. gvs has no netfilter
// to set marks, so these rules play the part of the mangle-table rule that would
// (iptables -t mangle -A PREROUTING -d Addr -p tcp --dport lo:hi -j MARK): a packet
// carries the service's mark when its destination address is Addr, its protocol
// is Protocol (0 = any) and its destination port is in [PortLo, PortHi] (both 0 =
// any port). Rules are tried in file order across services; the first match wins.
type Match struct {
	Line           int // line of the [[service.match]] header (or of its inline table)
	Protocol       Protocol
	Addr           netip.Addr
	PortLo, PortHi uint16
}

// A RealServer is one [[service.real_server]] table (ipvsadm -a).
type RealServer struct {
	Line int // line of the [[service.real_server]] header (or of its inline table)

	// Address is the server's address; its port is the service's port when the file
	// omits it (0 for fwmark and port-0 services: the packet's port is kept).
	Address        netip.AddrPort
	Weight         int32  // ≥ 0; 0 = quiescent
	MAC            MAC    // pinned next-hop MAC; zero = resolve (replay requires it)
	UpperThreshold uint32 // 0 = no limit
	LowerThreshold uint32 // 0 = 3/4 of UpperThreshold (SEMANTICS.md §2.6)
	Method         Method // resolved: the server's own method, else the service's
	// InhibitOnFailure is resolved: the server's own inhibit_on_failure, else the
	// service's.
	InhibitOnFailure bool
}

// A Check is a [service.check] table: the health check applied to each real server
// of the service, with keepalived's timing semantics (delay_loop, connect_timeout,
// retry, delay_before_retry).
type Check struct {
	Line int // line of the [service.check] header

	Type       CheckType
	Interval   time.Duration // keepalived delay_loop
	Timeout    time.Duration // keepalived connect_timeout
	Retries    int           // keepalived retry: failed attempts retried before a check fails
	RetryDelay time.Duration // keepalived delay_before_retry
	Rise       int           // consecutive passing checks before a DOWN server is UP again
	Fall       int           // consecutive failing checks before an UP server is DOWN

	Path        string   // http/https request path
	StatusCodes []int    // http/https accepted status codes; empty = any 2xx
	Expect      string   // http/https: body substring; udp: reply substring; "" = anything
	Digest      string   // http/https: lowercase hex MD5 of the body (keepalived digest); "" = none
	Host        string   // http/https Host header; "" = the address checked
	SNI         string   // https server name; "" = Host
	TLSVerify   bool     // https: verify the certificate chain and name
	Payload     string   // udp: datagram sent
	Command     []string // exec: argv, run without a shell
	ConnectIP   netip.Addr
	ConnectPort uint16 // 0 = the real server's port
	Alpha       bool   // keepalived alpha: servers start DOWN until their first check passes
	Omega       bool   // keepalived omega: run down transitions when gvs stops
}

// A VRRP is one [[vrrp]] table, keepalived's vrrp_instance.
type VRRP struct {
	Line int // line of the [[vrrp]] header

	Name             string
	Interface        string    // defaults to [director] interface
	State            VRRPState // initial state hint
	VirtualRouterID  uint8     // 1..255
	Priority         uint8     // 1..255
	AdvertInt        time.Duration
	Version          int    // 2 or 3
	AuthType         string // "" or "PASS" (v2 only)
	AuthPass         string // ≤ 8 bytes
	VirtualIPAddress []netip.Addr
	UnicastSrcIP     netip.Addr // invalid = the interface's address
	UnicastPeer      []netip.Addr
	NoPreempt        bool
	PreemptDelay     time.Duration

	GARPMasterDelay         time.Duration // second GARP burst after becoming master; 0 = none
	GARPMasterRepeat        int           // GARPs (or NAs) per burst
	GARPMasterRefresh       time.Duration // periodic GARPs while master; 0 = none
	GARPMasterRefreshRepeat int           // GARPs per refresh

	// Notify commands, run with /bin/sh -c on entering the state (keepalived's
	// notify_master, notify_backup, notify_fault); "" = none.
	NotifyMaster, NotifyBackup, NotifyFault string
	// Notify runs on every state change with the arguments keepalived gives its
	// generic notify script: INSTANCE NAME STATE PRIORITY.
	Notify string
	// TrackService lists services by address (VIP:port, as in [[service]]
	// address). Those without a weight are tracked together, as keepalived's
	// track_script without weight: while none of them has a live real server, the
	// instance is in FAULT. One with a weight changes the priority instead (see
	// TrackWeight).
	TrackService []TrackedService
	// TrackInterface lists more interfaces (keepalived's track_interface). Without a
	// weight: the instance is in FAULT while any of them, or its own interface, is
	// down. With one: see TrackWeight.
	TrackInterface []TrackedInterface
}

// TrackWeight is keepalived's tracking weight, written "NAME weight W" in a track
// list: a negative W is added to the priority while the tracked object is down, a
// positive one while it is up; the effective priority stays within 1–254. 0 means
// no weight: the object being down means FAULT.
type TrackWeight int

// A TrackedService is one track_service entry.
type TrackedService struct {
	Addr   netip.AddrPort
	Weight TrackWeight
}

// A TrackedInterface is one track_interface entry.
type TrackedInterface struct {
	Name   string
	Weight TrackWeight
}

// A VRRPSyncGroup is one [[vrrp_sync_group]] table, keepalived's vrrp_sync_group:
// instances that change state together.
type VRRPSyncGroup struct {
	Line  int // line of the [[vrrp_sync_group]] header
	Name  string
	Group []string // [[vrrp]] names, at least one
}

// IPv6 reports whether the instance advertises IPv6 addresses.
func (v *VRRP) IPv6() bool { return len(v.VirtualIPAddress) > 0 && v.VirtualIPAddress[0].Is6() }

// A MAC is an Ethernet address. The zero value means "not configured": an all-zero
// MAC is never valid in a config.
type MAC [6]byte

// IsZero reports whether m is unset.
func (m MAC) IsZero() bool { return m == MAC{} }

// HardwareAddr returns m as a net.HardwareAddr (a new slice).
func (m MAC) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(m[:]) }

// String formats m as 02:00:00:00:00:05.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// Family is an address family.
type Family uint8

const (
	_           Family = iota
	FamilyInet         // IPv4 ("inet")
	FamilyInet6        // IPv6 ("inet6")
)

func (f Family) String() string {
	switch f {
	case FamilyInet:
		return "inet"
	case FamilyInet6:
		return "inet6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// Protocol is a service's transport protocol; its value is the IP protocol number.
type Protocol uint8

const (
	ProtocolTCP Protocol = 6
	ProtocolUDP Protocol = 17
)

// String returns "TCP" or "UDP", as ipvsadm prints them.
func (p Protocol) String() string {
	switch p {
	case ProtocolTCP:
		return "TCP"
	case ProtocolUDP:
		return "UDP"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// Method is a forwarding method (IPVS's IP_VS_CONN_F_FWD_MASK values, SEMANTICS.md
// §1.2, without LOCALNODE and BYPASS).
type Method uint8

const (
	_         Method = iota
	MethodDR         // direct routing, ipvsadm -g ("Route")
	MethodNAT        // masquerading, ipvsadm -m ("Masq")
	MethodTUN        // IP-in-IP tunnelling, ipvsadm -i ("Tunnel")
)

// String returns the config spelling: "dr", "nat" or "tun".
func (m Method) String() string {
	switch m {
	case MethodDR:
		return "dr"
	case MethodNAT:
		return "nat"
	case MethodTUN:
		return "tun"
	}
	return "Method(" + strconv.Itoa(int(m)) + ")"
}

// CheckType is the kind of health check.
type CheckType uint8

const (
	_          CheckType = iota
	CheckTCP             // connect (keepalived TCP_CHECK)
	CheckHTTP            // GET (HTTP_GET)
	CheckHTTPS           // GET over TLS (SSL_GET)
	CheckUDP             // datagram, optional reply (UDP_CHECK)
	CheckExec            // run a command, exit 0 = up (MISC_CHECK)
)

// String returns the config spelling.
func (t CheckType) String() string {
	switch t {
	case CheckTCP:
		return "tcp"
	case CheckHTTP:
		return "http"
	case CheckHTTPS:
		return "https"
	case CheckUDP:
		return "udp"
	case CheckExec:
		return "exec"
	}
	return "CheckType(" + strconv.Itoa(int(t)) + ")"
}

// VRRPState is an instance's configured initial state.
type VRRPState uint8

const (
	_ VRRPState = iota
	VRRPBackup
	VRRPMaster
)

// String returns "BACKUP" or "MASTER", as keepalived spells them.
func (s VRRPState) String() string {
	switch s {
	case VRRPBackup:
		return "BACKUP"
	case VRRPMaster:
		return "MASTER"
	}
	return "VRRPState(" + strconv.Itoa(int(s)) + ")"
}

// MHTableSizes are the table sizes the mh scheduler accepts (primes, as the
// kernel's CONFIG_IP_VS_MH_TAB_INDEX choices); 4093 is the default.
func MHTableSizes() []int {
	return []int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}
}

// Default returns a Config with every [director] default and no services or VRRP
// instances: what an empty file parses to.
func Default() *Config {
	return &Config{
		Director: Director{
			MTU:           1500,
			ConnMax:       1 << 20,
			ConnShards:    256,
			ControlSocket: "/run/gvs/gvs.sock",
			Sysctl: Sysctl{
				ConnReuseMode: 1,
				PMTUDisc:      true,
			},
			Timeouts: Timeouts{
				TCP:    900 * time.Second,
				TCPFin: 120 * time.Second,
				UDP:    300 * time.Second,
			},
		},
	}
}

// DefaultService returns a service's defaults (before its address is known):
// TCP, wlc (ipvsadm's default), DR (ipvsadm -g), not persistent. Netmask and
// MHTableSize depend on the family and scheduler and are filled by Parse.
func DefaultService() Service {
	return Service{
		Protocol:  ProtocolTCP,
		Scheduler: "wlc",
		Method:    MethodDR,
	}
}

// DefaultRealServer returns a real server's defaults: weight 1 (ipvsadm -w), no
// thresholds; its method is the service's.
func DefaultRealServer() RealServer {
	return RealServer{Weight: 1}
}

// DefaultCheck returns keepalived's checker defaults: delay_loop 60 s,
// connect_timeout 5 s, retry 1, delay_before_retry 1 s; rise and fall 1; path "/".
func DefaultCheck() Check {
	return Check{
		Interval:   60 * time.Second,
		Timeout:    5 * time.Second,
		Retries:    1,
		RetryDelay: time.Second,
		Rise:       1,
		Fall:       1,
	}
}

// DefaultVRRP returns keepalived's vrrp_instance defaults: BACKUP, priority 100
// (255 when state is MASTER and no priority is given), advert_int 1 s, version 2
// (3 for IPv6), GARP burst of 5 repeated after 5 s, no refresh.
func DefaultVRRP() VRRP {
	return VRRP{
		State:                   VRRPBackup,
		Priority:                100,
		AdvertInt:               time.Second,
		Version:                 2,
		GARPMasterDelay:         5 * time.Second,
		GARPMasterRepeat:        5,
		GARPMasterRefreshRepeat: 1,
	}
}
