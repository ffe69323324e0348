package config

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/ipvs"
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
	// Scripts is [scripts]: the user and security rule of every external command.
	Scripts Scripts
	// VRRPScripts, TrackFiles and TrackProcesses are the [[vrrp_script]],
	// [[vrrp_track_file]] and [[vrrp_track_process]] tables, in file order.
	VRRPScripts    []VRRPScript
	TrackFiles     []TrackFile
	TrackProcesses []TrackProcess
	// Cluster is [cluster]; the zero value is cluster mode off.
	Cluster Cluster
}

// Director is the [director] table: the director's own identity, table sizes,
// control endpoints, and the IPVS sysctls and timeouts that apply to every service.
type Director struct {
	Interface  string     // NIC for live mode; "" is valid for replay and tests
	MAC        ipvs.MAC   // the director's own MAC; zero = learn it (replay: from frames)
	Address    netip.Addr // own IPv4: TUN outer source, source of ICMP errors; invalid = unset
	Address6   netip.Addr // own IPv6, same role; invalid = unset
	GatewayMAC ipvs.MAC   // next hop toward clients; zero = unset
	MTU        int        // route MTU toward real servers (TUN/DR DF checks), bytes
	ConnMax    int        // hard cap on connection entries
	ConnShards int        // power of two

	// ConnUnconfirmedMax and ConnUnconfirmedPerService are the unconfirmed budget
	// (docs/defense.md §7): 0 = conn_max/2 and conn_max/4; ConnUnconfirmedMax -1
	// turns it off (refuse at conn_max, as IPVS).
	ConnUnconfirmedMax        int
	ConnUnconfirmedPerService int

	ControlSocket string // unix socket for gvs adm; "" = none
	MetricsListen string // host:port of the metrics endpoint; "" = off
	// MetricsWebConfig is the path of a Prometheus exporter-toolkit web
	// configuration file (TLS, basic auth) for metrics_listen, relative to the
	// config file's directory; "" = plain HTTP without authentication.
	MetricsWebConfig string
	MetricsNodeIPVS  bool // export node_exporter's node_ipvs_* family (metrics_node_ipvs)
	MetricsGVS       bool // export gvs's own per-service and per-real-server series (metrics_gvs)
	// StatusListen is the host:port of the live status page (docs/status.md); "" = off.
	// It is served with metrics_web_config's TLS and basic auth.
	StatusListen  string
	StatusActions bool // the status page may drain and undrain real servers (status_actions)
	IngressDrop   bool // install an nftables netdev ingress rule dropping VIP frames after gvs saw them
	Sysctl        Sysctl
	Timeouts      ipvs.Timeouts // tcp_timeout, tcpfin_timeout, udp_timeout (ipvsadm --set)

	// IO is the live data path's backend: IOAuto, IOAFXDP or IOAFPacket.
	IO string
	// XDPReplaceForeign lets gvs replace an XDP program that is not its own on
	// Interface (io = "afxdp" or "auto"); otherwise such an interface is refused for
	// AF_XDP with the program's name.
	XDPReplaceForeign bool
	// RxSpin is how long an AF_PACKET reader keeps polling its ring after a batch
	// before it sleeps (rx_spin; afpacket.Config.Spin): a frame that comes meanwhile
	// is taken without a thread wake-up, at the price of a busy CPU. 0 = off.
	RxSpin time.Duration

	// Defense: vlans, icmp_ratelimit, icmp_ratemask, icmpv6_ratelimit,
	// icmp_msgs_per_sec, icmp_msgs_burst, source_conn_rate, source_conn_burst.
	Defense Defense
}

// MaxRxSpin bounds rx_spin: past it the worker's CPU is as good as always busy and a
// dedicated CPU polling without end is what the setting describes.
const MaxRxSpin = 10 * time.Millisecond

// Values of Director.IO (`io` in [director]).
const (
	IOAuto     = "auto"     // AF_XDP where the driver has native zero-copy, AF_PACKET otherwise
	IOAFXDP    = "afxdp"    // AF_XDP (copy mode where the driver has no zero-copy); AF_PACKET if the kernel refuses
	IOAFPacket = "afpacket" // AF_PACKET rings only
)

// Sysctl holds the net.ipv4.vs.* settings gvs honours, under the kernel's names
// and with the kernel's defaults (docs/ipvs-semantics.md §8).
type Sysctl struct {
	ConnReuseMode           int  // conn_reuse_mode bitmap: 1 TIME_WAIT/CLOSE reuse reschedules, 2 also FIN_WAIT of DR/TUN
	ExpireNodestConn        bool // expire_nodest_conn
	ExpireQuiescentTemplate bool // expire_quiescent_template
	PMTUDisc                bool // pmtu_disc
	SloppyTCP               bool // sloppy_tcp
	ScheduleICMP            bool // schedule_icmp

	// DropEntry and SecureTCP are the defense modes drop_entry and secure_tcp
	// (0..3), AMemThresh the free connection-table entries below which automatic
	// ones engage, 0 = conn_max/2 (docs/defense.md §8).
	DropEntry, SecureTCP int
	AMemThresh           int
}

// A Service is one [[service]] table: a virtual service as ipvsadm -A defines it
// (the embedded ipvs.Service), with what only the config says about it: where it
// is, its real servers' and match rules' lines, its health check and what checks
// do with it.
//
// The embedded ipvs.Service's RealServers and Match are always nil: the config's
// own RealServers and Match below carry them with their lines. IPVS returns the
// service as the Director runs it.
//
// The key: Addr is VIP:port (port 0 = all ports) and FWMark 0 for an address
// service; an fwmark service has FWMark, IPv6 from `family`, and a zero Protocol
// and Addr (its packets' protocol only decides whether OPS applies, as with
// ipvsadm). Netmask is always a valid prefix: /32 (/128) unless `netmask` says
// otherwise. MHTableSize is 0 unless Scheduler is mh.
type Service struct {
	ipvs.Service

	Line int // line of the [[service]] header

	// Method is the service's `method`: the default of its real servers' methods
	// (each RealServer has its own, resolved).
	Method ipvs.Method
	// Match lists, for an fwmark service, the packets that carry its mark (at least
	// one; none for an address service), in file order.
	Match       []Match
	RealServers []RealServer // in file order; the Director adds them in this order
	Check       *Check       // nil = no health check

	// What health checks do with the service (keepalived's names):
	InhibitOnFailure bool           // a failed server gets weight 0 instead of leaving the list (per server too)
	SorryServer      netip.AddrPort // used when no real server is up (or quorum is lost); zero = none
	SorryServerMAC   ipvs.MAC       // pinned MAC of the sorry server; zero = resolve
	Quorum           int64          // minimum sum of weights of live servers; below it the service is "down"
	Hysteresis       int64          // quorum must be regained by this much more before it counts as up
	QuorumUp         string         // shell command run when quorum is gained
	QuorumDown       string         // shell command run when quorum is lost
}

// Persistent reports whether the service has a persistence timeout.
func (s *Service) Persistent() bool { return s.Persistence > 0 }

// Family returns the service's address family.
func (s *Service) Family() Family {
	if s.IPv6 {
		return FamilyInet6
	}
	return FamilyInet
}

// IPVS returns the service as the Director runs it: the embedded ipvs.Service with
// its match rules and real servers, in file order. The result shares nothing with s.
func (s *Service) IPVS() ipvs.Service {
	out := s.Service
	out.Match = nil
	for _, m := range s.Match {
		out.Match = append(out.Match, m.Match)
	}
	out.RealServers = make([]ipvs.RealServer, len(s.RealServers))
	for i := range s.RealServers {
		out.RealServers[i] = s.RealServers[i].RealServer
	}
	return out
}

// A Match is one [[service.match]] rule of an fwmark service. gvs has no netfilter
// to set marks, so these rules play the part of the mangle-table rule that would
// (iptables -t mangle -A PREROUTING -d Addr -p tcp --dport lo:hi -j MARK); see
// ipvs.Match. Rules are tried in file order across services; the first match wins.
type Match struct {
	ipvs.Match
	Line int // line of the [[service.match]] header (or of its inline table)
}

// A RealServer is one [[service.real_server]] table (ipvsadm -a). Its address's
// port is the service's port when the file omits it (0 for fwmark and port-0
// services: the packet's port is kept); its Method is resolved: the server's own
// method, else the service's.
type RealServer struct {
	ipvs.RealServer
	Line int // line of the [[service.real_server]] header (or of its inline table)
	// InhibitOnFailure is resolved: the server's own inhibit_on_failure, else the
	// service's.
	InhibitOnFailure bool
	// Checks are the server's own [service.real_server.check] tables (all must
	// pass); nil means the service's Check. Their timing is resolved: the check's
	// own keys, else the server's check_* keys, else the service's.
	Checks []Check
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
	// VIPs details the VirtualIPAddress entries, in the same order (prefix, dev,
	// label, scope, brd, no_track); ExcludedVIPs are virtual_ipaddress_excluded:
	// taken and released with the others, never advertised. See VirtualAddress.
	VIPs, ExcludedVIPs []VirtualAddress
	// VirtualRoutes are virtual_routes: routes added with the VIPs while the
	// instance is MASTER and removed with them. See VirtualRoute.
	VirtualRoutes []VirtualRoute
	// VirtualRules are virtual_rules: policy-routing rules added after the
	// routes while the instance is MASTER and removed before them. See VirtualRule.
	VirtualRules []VirtualRule
	UnicastSrcIP netip.Addr // invalid = the interface's address
	UnicastPeer  []netip.Addr
	NoPreempt    bool
	PreemptDelay time.Duration

	GARPMasterDelay         time.Duration // second GARP burst after becoming master; 0 = none
	GARPMasterRepeat        int           // GARPs (or NAs) per burst
	GARPMasterRefresh       time.Duration // periodic GARPs while master; 0 = none
	GARPMasterRefreshRepeat int           // GARPs per refresh
	// GARPLowerPrioDelay and GARPLowerPrioRepeat are what a master does on hearing a
	// lower priority: Repeat GARPs (or NAs) at once and again after Delay (0: no
	// second burst). keepalived's defaults are garp_master_delay and _repeat.
	GARPLowerPrioDelay  time.Duration
	GARPLowerPrioRepeat int

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
	// TrackScript, TrackFile and TrackProcess name [[vrrp_script]],
	// [[vrrp_track_file]] and [[vrrp_track_process]] tables (keepalived's
	// track_script, track_file, track_process), with resolved weights.
	TrackScript, TrackFile, TrackProcess []TrackRef
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

// A TrackedInterface is one track_interface entry. Reverse is keepalived's
// "reverse": the weight is negated (and without a weight, FAULT while the
// interface is up) — docs/scripts.md §1.3.
type TrackedInterface struct {
	Name    string
	Weight  TrackWeight
	Reverse bool
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
// kernel's CONFIG_IP_VS_MH_TAB_INDEX choices); ipvs.DefaultMHTableSize is the
// default.
func MHTableSizes() []int {
	return []int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}
}

// Default returns a Config with every [director] default and no services or VRRP
// instances: what an empty file parses to.
func Default() *Config {
	return &Config{
		Director: Director{
			MTU:             1500,
			ConnMax:         1 << 20,
			ConnShards:      256,
			ControlSocket:   "/run/gvs/gvs.sock",
			Defense:         defaultDefense(),
			IO:              IOAuto,
			MetricsNodeIPVS: true,
			MetricsGVS:      true,
			Sysctl: Sysctl{
				ConnReuseMode: 1,
				PMTUDisc:      true,
			},
			Timeouts: ipvs.DefaultTimeouts,
		},
	}
}

// DefaultService returns a service's defaults (before its address is known):
// TCP, ipvsadm's scheduler and method (ipvs.DefaultScheduler, ipvs.DefaultMethod),
// not persistent. Netmask and MHTableSize depend on the family and scheduler and
// are filled by Parse.
func DefaultService() Service {
	return Service{
		Service: ipvs.Service{Key: ipvs.Key{Protocol: ipvs.TCP}, Scheduler: ipvs.DefaultScheduler},
		Method:  ipvs.DefaultMethod,
	}
}

// DefaultRealServer returns a real server's defaults: ipvsadm's weight
// (ipvs.DefaultWeight), no thresholds; its method is the service's.
func DefaultRealServer() RealServer {
	return RealServer{RealServer: ipvs.RealServer{Weight: ipvs.DefaultWeight}}
}

// DefaultCheck returns the defaults of a check of type t: keepalived 2.2.7's, as
// the health package holds them (health.Defaults, their one copy): delay_loop 60 s,
// connect_timeout 5 s, retry 1 (0 for exec, as MISC_CHECK), delay_before_retry 1 s
// (3 s for http and https, as HTTP_GET and SSL_GET); rise and fall 1; path "/" for
// http and https. A t health does not know gets tcp's.
func DefaultCheck(t CheckType) Check {
	ht, err := health.ParseType(t.String())
	if err != nil {
		ht = health.TCP
	}
	h := health.Defaults(ht)
	return Check{
		Type:       t,
		Interval:   h.Interval,
		Timeout:    h.Timeout,
		Retries:    h.Retries,
		RetryDelay: h.RetryDelay,
		Rise:       max(h.Rise, 1),
		Fall:       max(h.Fall, 1),
		Path:       h.Path,
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
