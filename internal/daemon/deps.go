package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/vrrp"
)

// Interface is what the daemon needs to know of a network interface.
type Interface struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	MTU   int
	Addrs []netip.Addr // its addresses, the primary one of each family first
	Up    bool         // administratively up with carrier
}

// addr returns the interface's first IPv4 address (v4) or first global IPv6
// address, or the zero Addr.
func (i *Interface) addr(v4 bool) netip.Addr {
	for _, a := range i.Addrs {
		if v4 && a.Is4() {
			return a
		}
		if !v4 && a.Is6() && !a.Is4In6() && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}

// Host is the machine a director runs on.
type Host interface {
	// Check verifies that a director can run on the interface named ifname (it
	// exists, is up, is Ethernet, and the kernel will not forward VIP traffic
	// itself) and returns it, or an error wrapping ErrHost that names every problem
	// and its fix.
	Check(ifname string) (Interface, error)
	// Interface returns the interface named name as it is now (VRRP instances,
	// track_interface).
	Interface(name string) (Interface, error)
	// DefaultGateway returns the next hop of the IPv4 default route through
	// ifname, or the zero Addr: where NAT replies go without gateway_mac.
	DefaultGateway(ifname string) netip.Addr
}

// Resolver finds the MAC address of a real server on the director's segment.
type Resolver interface {
	// Resolve returns addr's MAC address, asking the network if it must. It
	// returns an error when addr does not answer, and returns promptly once ctx
	// ends. It may be called from several goroutines at once.
	Resolve(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error)
}

// Guard is the ingress guard (ingress_drop): a rule dropping frames to the VIPs
// after gvs's own socket has seen them, so the kernel never handles them.
type Guard interface {
	// Install creates or replaces the rule for vips.
	Install(ctx context.Context, vips []netip.Addr) error
	// Remove deletes the rule; removing a rule that is not there is not an error.
	Remove(ctx context.Context) error
}

// Announcer announces VIPs on an interface: gratuitous ARP for IPv4, unsolicited
// neighbour advertisements for IPv6. It is safe for concurrent use.
type Announcer interface {
	Announce(vips []netip.Addr) error
	Close() error
}

// HealthRunner runs the health checks the daemon gives it and reports every
// transition to the notify function it was built with. *health.Monitor is one.
type HealthRunner interface {
	// Update replaces the set of checks; checks are matched by ID and keep their
	// state. On error nothing changes.
	Update(specs []health.Spec) error
	// Snapshot returns the state of every check.
	Snapshot() []health.Status
	// Run runs the checks until ctx ends.
	Run(ctx context.Context) error
}

// Clock is the daemon's time source. *testutil.Clock is one; nil in Deps means the
// real clock.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel receiving the time every d, and a stop function.
	NewTicker(d time.Duration) (<-chan time.Time, func())
	// NewTimer returns a channel receiving the time once d has passed, and a stop
	// function (the shape of vrrp.Clock's).
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
	// AfterFunc calls f on its own goroutine once d has passed, unless the
	// returned function stops it first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Deps are what a Daemon takes from the world, in the manner of wireguard-go's
// NewDevice(tun, bind, logger): the live ones come from LiveDeps (gvs run); tests
// pass in-memory links (dataplane/linktest) and fakes, so a whole director runs
// without root.
type Deps struct {
	// Logger receives the daemon's log; nil discards.
	Logger *slog.Logger
	// HashSeed seeds the connection table's flow hash (dataplane.Options.HashSeed):
	// random per start in LiveDeps, so a flood cannot aim at one shard; 0 in tests
	// keeps listings in a reproducible order.
	HashSeed uint64
	// Clock is the time source of the Director, the daemon's ticks and VRRP; nil
	// is the real clock.
	Clock Clock
	// Host checks the host and describes its interfaces. Required.
	Host Host
	// OpenLinks opens the data-path links on ifi, receiving what f describes
	// (live: one AF_PACKET ring per worker in one fanout group). A link that can
	// change what it receives implements FilterSetter. Required.
	OpenLinks func(ifi Interface, f *afpacket.Filter, o PacketOptions) ([]dataplane.Link, error)
	// OpenXDP opens AF_XDP links on ifi ([director] io = "afxdp" or "auto"; see
	// io.go for the choice); nil: AF_PACKET (OpenLinks) only.
	OpenXDP func(ifi Interface, f *afpacket.Filter, o XDPOptions) ([]dataplane.Link, error)
	// NewResolver returns the resolver of real servers' MACs on ifi (those the
	// config does not pin); nil: none is ever found (their packets are counted as
	// no_mac).
	NewResolver func(ifi Interface) (Resolver, error)
	// NewGuard returns the ingress guard of interface ifname, for ingress_drop;
	// nil: ingress_drop is refused with a warning.
	NewGuard func(ifname string) Guard
	// NewAnnouncer opens an announcer on ifi; nil: VIPs are never announced.
	NewAnnouncer func(ifi Interface) (Announcer, error)
	// NewHealth builds the health-check runner, which calls notify for every
	// transition (notify never blocks); nil: a health.Monitor with the real
	// checkers.
	NewHealth func(notify func(health.Transition)) HealthRunner
	// OpenVRRP opens a VRRP transport; nil: a config with [[vrrp]] is refused.
	OpenVRRP func(vrrp.TransportConfig) (vrrp.Transport, error)
	// KernelAddrs opens the handle on the kernel's interface addresses, where the
	// VRRP virtual addresses that are no service's go while their instance is
	// MASTER (kaddr.Open); nil: a config with such addresses is refused.
	KernelAddrs func() (kaddr.Handle, error)
	// RunScript runs a quorum or notify command and returns its output; nil:
	// /bin/sh -c. It must return once ctx ends.
	RunScript func(ctx context.Context, command string) ([]byte, error)
	// Names names hosts and ports in gvs adm listings without -n and resolves
	// names on its command lines (see LoadNames); nil: numbers only.
	Names *ipvsadm.Names
	// Cluster is what cluster mode ([cluster] enabled) takes from the host; without
	// its Listen, OpenTAP and Prefixes a config with cluster mode on is refused.
	Cluster ClusterDeps
}

// FilterSetter is a Link that can change the frames it receives (an AF_PACKET
// ring's socket filter). f and its lists are the caller's, and change after
// SetFilter returns: an implementation copies what it keeps.
type FilterSetter interface {
	SetFilter(f *afpacket.Filter) error
}

var _ FilterSetter = (*afpacket.Ring)(nil)

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
