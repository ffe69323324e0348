package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/sched"
)

// Method is a real server's forwarding method.
type Method uint8

const (
	_         Method = iota
	MethodDR         // direct routing: rewrite the MACs (ipvsadm -g, "Route")
	MethodNAT        // masquerading: rewrite daddr/dport, and replies back (-m, "Masq")
	MethodTUN        // IP-in-IP tunnelling (-i, "Tunnel")
)

func (m Method) String() string {
	switch m {
	case MethodDR:
		return "dr"
	case MethodNAT:
		return "nat"
	case MethodTUN:
		return "tun"
	}
	return fmt.Sprintf("method(%d)", uint8(m))
}

func (m Method) conntrack() conntrack.Method {
	switch m {
	case MethodNAT:
		return conntrack.MethodNAT
	case MethodTUN:
		return conntrack.MethodTunnel
	}
	return conntrack.MethodDR
}

// Options are the Director's own settings (the [director] table of the config and the
// kernel sysctls it mirrors). The zero value is not valid; start from DefaultOptions.
type Options struct {
	MAC        net.HardwareAddr // the director's MAC; nil: taken from each frame's destination
	Addr4      netip.Addr       // the director's IPv4 address: TUN outer source, ICMP it originates
	Addr6      netip.Addr       // the same for IPv6
	GatewayMAC net.HardwareAddr // next hop toward clients for NAT replies; nil: reply to the frame's source
	MTU        int              // route MTU toward real servers

	ConnMax                 int
	ConnShards              int
	ConnReuseMode           int
	ExpireNodestConn        bool
	ExpireQuiescentTemplate bool
	PMTUDisc                bool
	SloppyTCP               bool
	ScheduleICMP            bool
	Timeouts                conntrack.Timeouts

	// Rand is the random source of the twos scheduler (uniform in [0,n)); nil = seeded
	// deterministically, so replays are reproducible.
	Rand func(n uint32) uint32

	Logger *slog.Logger // nil: discard
}

// DefaultOptions returns the kernel's defaults (SEMANTICS.md §8).
func DefaultOptions() Options {
	return Options{
		MTU:           1500,
		ConnMax:       1 << 20,
		ConnShards:    256,
		ConnReuseMode: 1,
		PMTUDisc:      true,
		Timeouts:      conntrack.DefaultTimeouts(),
	}
}

// ServiceSpec describes one virtual service.
type ServiceSpec struct {
	Protocol    uint8      // 6 TCP or 17 UDP
	Addr        netip.Addr // VIP (unset for fwmark services)
	Port        uint16     // 0: all ports (persistent services only)
	FWMark      uint32     // non-zero: a fwmark service, matched through Match
	IPv6        bool       // family of a fwmark service
	Match       []Match    // what carries the fwmark (gvs has no netfilter to set marks)
	Scheduler   string
	Flags       sched.Flags
	MHTableSize int
	Persistence time.Duration // 0: not persistent
	Netmask     netip.Prefix  // persistence granularity: bits of the client address kept
	OPS         bool          // one-packet scheduling (UDP)
	RealServers []RealServerSpec
}

// Match selects packets for a fwmark service: protocol, destination address and a
// destination port range (both 0: any port).
type Match struct {
	Protocol       uint8
	Addr           netip.Addr
	PortLo, PortHi uint16
}

// RealServerSpec describes one real server of a service.
type RealServerSpec struct {
	Addr           netip.Addr
	Port           uint16
	Weight         int32
	MAC            net.HardwareAddr
	UpperThreshold uint32
	LowerThreshold uint32
	Method         Method
}

func (s *ServiceSpec) key() svcKey {
	if s.FWMark != 0 {
		return svcKey{mark: s.FWMark, v6: s.IPv6}
	}
	return svcKey{proto: s.Protocol, v6: s.Addr.Is6(), addr: s.Addr.As16(), port: s.Port}
}

func (s *ServiceSpec) String() string {
	proto := "TCP"
	if s.Protocol == 17 {
		proto = "UDP"
	}
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return fmt.Sprintf("%s %s", proto, netip.AddrPortFrom(s.Addr, s.Port))
}

type svcKey struct {
	mark  uint32
	proto uint8
	v6    bool
	addr  [16]byte
	port  uint16
}

// service is the run-time state of a virtual service; it outlives snapshots (its
// Pool keeps scheduler state and dest counters across reloads).
type service struct {
	id    uint32
	spec  ServiceSpec // RealServers not kept here
	pool  *sched.Pool
	ipv6  bool
	vaddr [16]byte
}

// destInfo is what the data path needs of a real server beyond sched.Dest.
type destInfo struct {
	d      *sched.Dest
	svc    uint32
	method Method
	mac    [6]byte
	hasMAC bool
	addr   [16]byte
	ipv6   bool
}

// snapshot is the immutable configuration the hot path reads with one atomic load.
type snapshot struct {
	services []*service // by id
	bySvc    svcIndex
	vips     addrSet // destination addresses of every service (and fwmark matches)
	natRS    addrSet // source addresses of NAT real servers (reply path)
	hasPort0 bool
	hasFTP   bool
	marks    []markRule
	dests    []destInfo // by dest id (includes deleted dests still referenced)
}

type markRule struct {
	Match
	mark uint32
}

// ErrConfig reports a service definition the Director cannot apply.
var ErrConfig = errors.New("dataplane: config")

// A Director is the deterministic per-packet pipeline: parse, classify, look up or
// create the connection, rewrite. It does no I/O. It is safe for concurrent use by
// several Workers; configuration changes (Apply) build a new snapshot and swap it
// atomically, keeping every connection.
type Director struct {
	opts  Options
	log   *slog.Logger
	table *conntrack.Table
	snap  atomic.Pointer[snapshot]

	mu      sync.Mutex // serialises Apply
	svcs    map[svcKey]*service
	nextSvc uint32
	trash   map[trashKey]uint32 // deleted dests by (service, addr, port) → id, resurrected on re-add
	dests   []destInfo
	rng     uint64
	now     atomic.Int64 // latest time a worker processed a batch at (for Apply's flushes)

	// owned is the set of VIPs this director serves while VRRP says so; nil = every
	// configured VIP (no VRRP). See SetOwned.
	owned atomic.Pointer[addrSet]

	wmu     sync.Mutex // guards workers
	workers []*Worker  // every worker made by NewWorker, for Totals

	// fixed-size copies of the options the hot path reads
	mac, gateway       [6]byte
	hasMAC, hasGateway bool
	addr4, addr6       [16]byte
}

type trashKey struct {
	svc  uint32
	addr netip.Addr
	port uint16
}

// New returns a Director with no services.
func New(opts Options) (*Director, error) {
	if opts.MTU < 68 {
		return nil, fmt.Errorf("%w: mtu %d is below the IPv4 minimum of 68", ErrConfig, opts.MTU)
	}
	d := &Director{opts: opts, log: opts.Logger, svcs: map[svcKey]*service{}, trash: map[trashKey]uint32{}, rng: 0x2545f4914f6cdd1d}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.hasMAC = len(opts.MAC) == 6; d.hasMAC {
		d.mac = [6]byte(opts.MAC)
	}
	if d.hasGateway = len(opts.GatewayMAC) == 6; d.hasGateway {
		d.gateway = [6]byte(opts.GatewayMAC)
	}
	if opts.Addr4.Is4() {
		d.addr4 = rawAddr(opts.Addr4)
	}
	if opts.Addr6.Is6() {
		d.addr6 = rawAddr(opts.Addr6)
	}
	t, err := conntrack.New(conntrack.Config{
		Max:                     opts.ConnMax,
		Shards:                  opts.ConnShards,
		Timeouts:                opts.Timeouts,
		ConnReuseMode:           opts.ConnReuseMode,
		ExpireNodestConn:        opts.ExpireNodestConn,
		ExpireQuiescentTemplate: opts.ExpireQuiescentTemplate,
		Dest:                    d.destByID,
	})
	if err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	d.table = t
	d.snap.Store(&snapshot{})
	return d, nil
}

// Table returns the connection table (for listings and tests).
func (d *Director) Table() *conntrack.Table { return d.table }

func (d *Director) destByID(id uint32) *sched.Dest {
	s := d.snap.Load()
	if int(id) < len(s.dests) {
		return s.dests[id].d
	}
	return nil
}

// twosRand is a deterministic xorshift source for the twos scheduler when the options
// give none. Precondition: called under a Pool lock (schedulers run under it), but the
// state is shared across pools, so it is advanced atomically.
func (d *Director) twosRand() func(uint32) uint32 {
	if d.opts.Rand != nil {
		return d.opts.Rand
	}
	var state atomic.Uint64
	state.Store(d.rng)
	return func(n uint32) uint32 {
		for {
			old := state.Load()
			x := old
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if state.CompareAndSwap(old, x) {
				return uint32((x >> 32) * uint64(n) >> 32)
			}
		}
	}
}

// Apply makes services the Director's configuration. Services are matched to the
// current ones by (protocol, VIP, port) or fwmark: a new service is created empty and
// its real servers are added one by one in order (as keepalived and ipvsadm drive the
// kernel, so list order and wrr's first round match LVS); a kept service keeps its
// scheduler state and connections, with real servers added, edited or deleted as the
// kernel's hooks would be; a service no longer listed is removed. On error nothing
// changes.
func (d *Director) Apply(services []ServiceSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.validate(services); err != nil {
		return err
	}
	keep := make(map[svcKey]bool, len(services))
	for i := range services {
		spec := &services[i]
		k := spec.key()
		keep[k] = true
		svc := d.svcs[k]
		if svc == nil || svc.spec.Scheduler != spec.Scheduler || svc.spec.Flags != spec.Flags || svc.spec.MHTableSize != spec.MHTableSize {
			s, err := sched.New(spec.Scheduler, sched.Options{Flags: spec.Flags, MHTableSize: spec.MHTableSize, Rand: d.twosRand()})
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrConfig, spec, err)
			}
			if svc == nil {
				svc = &service{id: d.nextSvc, pool: sched.NewPool(s)}
				d.nextSvc++
				d.svcs[k] = svc
			} else if err := svc.pool.SetScheduler(s); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrConfig, spec, err)
			}
		}
		// A fresh service value: workers still read the old one through the current
		// snapshot. It shares the id and the pool (scheduler state, dests).
		svc = &service{id: svc.id, pool: svc.pool, spec: *spec}
		svc.spec.RealServers = nil
		svc.ipv6 = spec.IPv6 || (spec.FWMark == 0 && spec.Addr.Is6())
		svc.vaddr = spec.Addr.As16()
		d.svcs[k] = svc
		if err := d.syncDests(svc, spec); err != nil {
			return err
		}
	}
	for k, svc := range d.svcs {
		if keep[k] {
			continue
		}
		for _, dst := range svc.pool.Dests() {
			d.deleteDest(svc, dst)
		}
		delete(d.svcs, k)
	}
	d.publish()
	return nil
}

func (d *Director) validate(services []ServiceSpec) error {
	seen := map[svcKey]bool{}
	var errs []error
	for i := range services {
		s := &services[i]
		if seen[s.key()] {
			errs = append(errs, fmt.Errorf("%w: %s: service defined twice", ErrConfig, s))
		}
		seen[s.key()] = true
		if s.Protocol != 6 && s.Protocol != 17 {
			errs = append(errs, fmt.Errorf("%w: %s: protocol %d is not tcp or udp", ErrConfig, s, s.Protocol))
		}
		// Everything Apply could refuse half-way is checked here first, so a refused
		// configuration changes nothing.
		sc, err := sched.New(s.Scheduler, sched.Options{Flags: s.Flags, MHTableSize: s.MHTableSize})
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrConfig, s, err))
		} else if sz, ok := sc.(sched.Sizer); ok && len(s.RealServers) > sz.MaxDests() {
			errs = append(errs, fmt.Errorf("%w: %s: %d real servers do not fit the %s scheduler's table of %d", ErrConfig, s, len(s.RealServers), s.Scheduler, sz.MaxDests()))
		}
		rs := map[netip.AddrPort]bool{}
		for _, r := range s.RealServers {
			ap := netip.AddrPortFrom(r.Addr, r.Port)
			if rs[ap] {
				errs = append(errs, fmt.Errorf("%w: %s: real server %s: destination already exists", ErrConfig, s, ap))
			}
			rs[ap] = true
			if r.Weight < 0 {
				errs = append(errs, fmt.Errorf("%w: %s: real server %s: weight %d is negative", ErrConfig, s, ap, r.Weight))
			}
			if r.UpperThreshold != 0 && r.LowerThreshold > r.UpperThreshold {
				errs = append(errs, fmt.Errorf("%w: %s: real server %s: lower threshold %d above upper threshold %d", ErrConfig, s, ap, r.LowerThreshold, r.UpperThreshold))
			}
			if r.Method == 0 {
				errs = append(errs, fmt.Errorf("%w: %s: real server %s: no forwarding method", ErrConfig, s, ap))
			}
			if r.Method == MethodTUN {
				if r.Addr.Unmap().Is4() && !d.opts.Addr4.Is4() {
					errs = append(errs, fmt.Errorf("%w: %s: real server %s: tunnelling needs the director's own IPv4 address as the outer source ([director] address)", ErrConfig, s, ap))
				}
				if r.Addr.Unmap().Is6() && !d.opts.Addr6.Is6() {
					errs = append(errs, fmt.Errorf("%w: %s: real server %s: tunnelling needs the director's own IPv6 address as the outer source ([director] address6)", ErrConfig, s, ap))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// syncDests brings svc's pool to spec's real servers. New ones are added in config
// order, so the kernel list (head first) is the reverse of the file.
// Precondition: d.mu is held.
func (d *Director) syncDests(svc *service, spec *ServiceSpec) error {
	want := make(map[netip.AddrPort]*RealServerSpec, len(spec.RealServers))
	for i := range spec.RealServers {
		r := &spec.RealServers[i]
		want[netip.AddrPortFrom(r.Addr.Unmap(), r.Port)] = r
	}
	for _, dst := range svc.pool.Dests() {
		if want[netip.AddrPortFrom(dst.Addr(), dst.Port())] == nil {
			d.deleteDest(svc, dst)
		}
	}
	for i := range spec.RealServers {
		r := &spec.RealServers[i]
		if cur := svc.pool.Find(r.Addr, r.Port); cur != nil {
			if cur.Weight() != r.Weight || cur.UpperThreshold() != r.UpperThreshold || cur.LowerThreshold() != r.LowerThreshold {
				if err := svc.pool.Edit(r.Addr, r.Port, r.Weight, r.UpperThreshold, r.LowerThreshold); err != nil {
					return fmt.Errorf("%w: %s: real server %s: %w", ErrConfig, spec, netip.AddrPortFrom(r.Addr, r.Port), err)
				}
			}
			d.setInfo(cur.ID(), svc, r)
			continue
		}
		tk := trashKey{svc.id, r.Addr.Unmap(), r.Port}
		var dst *sched.Dest
		if id, ok := d.trash[tk]; ok {
			delete(d.trash, tk)
			dst = d.dests[id].d
			dst.Revive(r.Weight, r.UpperThreshold, r.LowerThreshold)
		} else {
			dst = sched.NewDest(uint32(len(d.dests)), r.Addr, r.Port, r.Weight, r.UpperThreshold, r.LowerThreshold)
			d.dests = append(d.dests, destInfo{d: dst})
		}
		if err := svc.pool.Add(dst); err != nil {
			return fmt.Errorf("%w: %s: real server %s: %w", ErrConfig, spec, netip.AddrPortFrom(r.Addr, r.Port), err)
		}
		d.setInfo(dst.ID(), svc, r)
	}
	return nil
}

// Precondition: d.mu is held.
func (d *Director) setInfo(id uint32, svc *service, r *RealServerSpec) {
	in := &d.dests[id]
	in.svc = svc.id
	in.method = r.Method
	a := r.Addr.Unmap()
	in.ipv6 = a.Is6()
	in.addr = rawAddr(a)
	in.hasMAC = len(r.MAC) == 6
	if in.hasMAC {
		copy(in.mac[:], r.MAC)
	}
}

// deleteDest unlinks dst from svc and keeps it in the trash so a re-add finds its
// counters (SEMANTICS.md §2.1 step 3), and with expire_nodest_conn flushes its
// connections.
// Precondition: d.mu is held.
func (d *Director) deleteDest(svc *service, dst *sched.Dest) {
	if _, err := svc.pool.Delete(dst.Addr(), dst.Port()); err != nil {
		return
	}
	d.trash[trashKey{svc.id, dst.Addr(), dst.Port()}] = dst.ID()
	if d.opts.ExpireNodestConn {
		d.table.ExpireDest(dst.ID(), d.now.Load())
	}
}

// publish builds and stores a new snapshot. Precondition: d.mu is held.
func (d *Director) publish() {
	s := &snapshot{bySvc: newSvcIndex(d.svcs), dests: slices.Clone(d.dests)}
	for _, svc := range d.svcs {
		for int(svc.id) >= len(s.services) {
			s.services = append(s.services, nil)
		}
		s.services[svc.id] = svc
		if svc.spec.FWMark != 0 {
			for _, m := range svc.spec.Match {
				s.marks = append(s.marks, markRule{Match: m, mark: svc.spec.FWMark})
				s.vips.add(m.Addr)
			}
			continue
		}
		s.vips.add(svc.spec.Addr)
		if svc.spec.Port == 0 {
			s.hasPort0 = true
		}
		if svc.spec.Port == 21 && svc.spec.Protocol == 6 {
			s.hasFTP = true
		}
	}
	slices.SortFunc(s.marks, func(a, b markRule) int { return int(a.mark) - int(b.mark) })
	for _, in := range s.dests {
		if in.method == MethodNAT && in.d.Available() {
			s.natRS.add(in.d.Addr())
		}
	}
	d.snap.Store(s)
}

// ServiceView describes a service and its real servers as listings show them
// (ipvsadm -L order is applied by the caller; Dests are in kernel list order).
type ServiceView struct {
	ID    uint32
	Spec  ServiceSpec // RealServers empty
	Sched string
	Dests []DestView
}

// DestView is one real server with its live counters.
type DestView struct {
	ID                                    uint32
	Addr                                  netip.Addr
	Port                                  uint16
	Weight                                int32
	Method                                Method
	UpperThreshold, LowerThreshold        uint32
	ActiveConns, InactConns, PersistConns int32
	Overloaded                            bool
}

// Services returns every service with its real servers, services sorted by id
// (creation order).
func (d *Director) Services() []ServiceView {
	s := d.snap.Load()
	var vs []ServiceView
	for _, svc := range s.services {
		if svc == nil {
			continue
		}
		v := ServiceView{ID: svc.id, Spec: svc.spec}
		if sc := svc.pool.Scheduler(); sc != nil {
			v.Sched = sc.Name()
		}
		for _, dst := range svc.pool.Dests() {
			in := s.dests[dst.ID()]
			v.Dests = append(v.Dests, DestView{
				ID: dst.ID(), Addr: dst.Addr(), Port: dst.Port(), Weight: dst.Weight(), Method: in.method,
				UpperThreshold: dst.UpperThreshold(), LowerThreshold: dst.LowerThreshold(),
				ActiveConns: dst.ActiveConns(), InactConns: dst.InactConns(), PersistConns: dst.PersistConns(),
				Overloaded: dst.Overloaded(),
			})
		}
		vs = append(vs, v)
	}
	return vs
}

// DestHasMAC reports whether the real server with this id has a pinned MAC address.
func (d *Director) DestHasMAC(id uint32) bool {
	s := d.snap.Load()
	return int(id) < len(s.dests) && s.dests[id].hasMAC
}

// rawAddr returns a in the data path's raw form: IPv6 as 16 bytes, IPv4 in the first
// 4 bytes and the rest zero.
func rawAddr(a netip.Addr) [16]byte {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return [16]byte{b[0], b[1], b[2], b[3]}
	}
	return a.As16()
}

// SetOwned restricts the VIPs the Director serves — answers ARP/NDP for and
// forwards — to vips (what VRRP made this director master of); nil serves every
// configured VIP, the default without VRRP. Frames to a configured VIP it does not
// own are counted (not_owned) and dropped, so a backup never forwards or answers.
func (d *Director) SetOwned(vips []netip.Addr) {
	if vips == nil {
		d.owned.Store(nil)
		return
	}
	s := &addrSet{}
	for _, v := range vips {
		s.add(v)
	}
	d.owned.Store(s)
}
