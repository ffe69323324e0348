package dataplane

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/sched"
)

// Options are the Director's own settings (the [director] table of the config and the
// kernel sysctls it mirrors). The zero value is not valid; start from DefaultOptions.
type Options struct {
	MAC        net.HardwareAddr // the director's MAC; nil: taken from each frame's destination
	Addr4      netip.Addr       // the director's IPv4 address: TUN outer source, ICMP it originates
	Addr6      netip.Addr       // the same for IPv6
	GatewayMAC net.HardwareAddr // next hop toward clients for NAT replies; nil: reply to the frame's source
	MTU        int              // route MTU toward real servers

	ConnMax    int
	ConnShards int
	// HashSeed perturbs the connection table's flow hash, as the kernel's random
	// per-boot seed does: with a seed of its own per start, a sender cannot choose
	// addresses that all land in one shard. 0 keeps replays and tests reproducible.
	// Like ConnShards it is fixed at New.
	HashSeed uint64

	// ConnUnconfirmedMax and ConnUnconfirmedPerService are the table's unconfirmed
	// budget (docs/defense.md §7): 0 = conntrack.DefaultUnconfirmed(ConnMax),
	// ConnUnconfirmedMax conntrack.UnconfirmedOff = off.
	ConnUnconfirmedMax        int
	ConnUnconfirmedPerService int
	// DropEntry, SecureTCP and AMemThresh are the defense modes (0..3) and their
	// threshold in free entries, 0 = ConnMax/2 (docs/defense.md §8).
	DropEntry, SecureTCP int
	AMemThresh           int

	ConnReuseMode           int
	ExpireNodestConn        bool
	ExpireQuiescentTemplate bool
	PMTUDisc                bool
	SloppyTCP               bool
	ScheduleICMP            bool
	Timeouts                conntrack.Timeouts

	// Defense keeps the Director to what Linux would forward and limits what a flood
	// can make it send or create (defense.go).
	Defense Defense

	// Rand is the random source of the twos scheduler (uniform in [0,n)); nil = seeded
	// deterministically, so replays are reproducible.
	Rand func(n uint32) uint32

	// Sync are the cluster sync sender's rules (sync.go): nil = sync off, the
	// default. With rules, every worker pushes the connections they choose into its
	// sync-event ring (DrainSync).
	Sync *ipvssync.Rules
	// MHCanonical builds every mh table from the dests sorted by address and port
	// (sched.Options.MHCanonical; cluster mode's mh_order = "canonical"). Like
	// ConnShards it is fixed at New.
	MHCanonical bool

	Logger *slog.Logger // nil: discard
}

// DefaultOptions returns the kernel's defaults (docs/ipvs-semantics.md §8).
func DefaultOptions() Options {
	return Options{
		MTU:           1500,
		ConnMax:       1 << 20,
		ConnShards:    256,
		ConnReuseMode: 1,
		PMTUDisc:      true,
		Timeouts:      conntrack.DefaultTimeouts(),
		Defense:       DefaultDefense(),
	}
}

func keyOf(s *ipvs.Service) svcKey { return keyOfKey(&s.Key) }

func keyOfKey(k *ipvs.Key) svcKey {
	if k.FWMark != 0 {
		return svcKey{mark: k.FWMark, v6: k.IPv6}
	}
	return svcKey{proto: uint8(k.Protocol), v6: k.IPv6, addr: k.Addr.Addr().As16(), port: k.Addr.Port()}
}

type svcKey struct {
	mark  uint32
	proto uint8
	v6    bool
	addr  [16]byte
	port  uint16
}

// service is one generation's view of a virtual service: its settings, and a Pool
// holding exactly this generation's real-server list with the scheduler state built
// for that list. A service value and its Pool's list are never changed once
// published; the next generation gets a clone of the Pool when the list or the
// scheduler changes, and shares it otherwise (a Pool's scheduler state advances with
// every pick in either case, under the Pool's lock).
type service struct {
	id   uint32
	spec ipvs.Service // RealServers not kept here; Match an own copy
	pool *sched.Pool
	ipv6 bool
	key  svcKey // keyOf(&spec): the index compares it (svcSlot)
	// rs are the real servers as applied (an own copy), their MACs left out:
	// the dests keep them (destInfo), so that a real server's MAC coming in
	// changes its dest, not the service (applyLocked keeps the service, and its
	// pages in the index). With spec and the dests' MACs, the service as Apply
	// was given it (appliedLocked). The Director keeps no other copy of each
	// service (one per service fewer for the collector to mark), and a service
	// of one real server keeps it in rs1 (one set, rs nil): no list of its own,
	// nor a pointer into itself for the collector to follow at every cycle. A
	// real server is kept without a pointer (appliedServer), so that a list of
	// them is not scanned and rs1 has none to follow.
	rs  []appliedServer
	rs1 [1]appliedServer
	one bool
	// readsPacket: the pool's scheduler reads the sched.Packet (sched.ReadsPacket);
	// Pick fills w.pk only then.
	readsPacket bool
}

// servers returns svc's real servers as applied (rs).
func (svc *service) servers() []appliedServer {
	if svc.one {
		return svc.rs1[:]
	}
	return svc.rs
}

// appliedServer is an ipvs.RealServer as a service keeps it: without its MAC,
// and its address as 16 bytes and a family, not a netip.Addr, which holds a
// pointer (its family and zone) for the collector to follow. A zone is not kept
// (the configuration refuses zoned addresses).
type appliedServer struct {
	addr   [16]byte // As16: an IPv4 address as IPv4-mapped
	port   uint16
	is4    bool
	method ipvs.Method
	weight int32
	upper  uint32
	lower  uint32
}

func appliedServerOf(r *ipvs.RealServer) appliedServer {
	a := r.Addr.Addr()
	return appliedServer{addr: a.As16(), port: r.Addr.Port(), is4: a.Is4(), method: r.Method,
		weight: r.Weight, upper: r.UpperThreshold, lower: r.LowerThreshold}
}

// realServer returns a as an ipvs.RealServer, without a MAC.
func (a *appliedServer) realServer() ipvs.RealServer {
	addr := netip.AddrFrom16(a.addr)
	if a.is4 {
		addr = addr.Unmap()
	}
	return ipvs.RealServer{Addr: netip.AddrPortFrom(addr, a.port), Weight: a.weight,
		UpperThreshold: a.upper, LowerThreshold: a.lower, Method: a.method}
}

// appliedLocked returns svc as it was applied, its real servers included with
// their MACs (a list of its own).
// Precondition: d.mu is held.
func (d *Director) appliedLocked(svc *service) ipvs.Service {
	a := svc.spec
	rs := svc.servers()
	a.RealServers = nil
	if len(rs) > 0 {
		a.RealServers = make([]ipvs.RealServer, len(rs))
	}
	for i := range rs {
		r := &a.RealServers[i]
		*r = rs[i].realServer()
		if dst := svc.pool.Find(r.Addr.Addr(), r.Addr.Port()); dst != nil {
			if in := &d.dests[dst.ID()]; in.hasMAC {
				r.MAC = in.mac
			}
		}
	}
	return a
}

// sameService reports whether svc defines spec, the real servers' MACs aside
// (the dests keep them).
func sameService(svc *service, spec *ipvs.Service) bool {
	return sameSettings(&svc.spec, spec) && slices.EqualFunc(svc.servers(), spec.RealServers, func(x appliedServer, y ipvs.RealServer) bool {
		y.MAC = ipvs.MAC{}
		return x.realServer() == y
	})
}

// destInfo is what the data path needs of a real server beyond sched.Dest.
type destInfo struct {
	d      *sched.Dest
	svc    uint32
	method ipvs.Method
	mac    [6]byte
	hasMAC bool
	addr   [16]byte
	ipv6   bool
}

// settings are the options the hot path reads, in fixed-size form.
type settings struct {
	mac, gateway       [6]byte
	hasMAC, hasGateway bool
	addr4, addr6       [16]byte
	hasAddr4, hasAddr6 bool
	mtu                int
	pmtuDisc           bool
	sloppyTCP          bool
	scheduleICMP       bool
	def                defenseSettings
	sync               *syncPlan // Options.Sync (a copy) and what the cache precomputes from it, nil = off
}

func settingsOf(o *Options) settings {
	st := settings{mtu: o.MTU, pmtuDisc: o.PMTUDisc, sloppyTCP: o.SloppyTCP, scheduleICMP: o.ScheduleICMP, def: defenseSettingsOf(&o.Defense)}
	if st.hasMAC = len(o.MAC) == 6; st.hasMAC {
		st.mac = [6]byte(o.MAC)
		st.def.mac = binary.LittleEndian.Uint64(append(o.MAC[:6:6], 0, 0)) & macMask
	}
	if o.Sync != nil {
		st.sync = newSyncPlan(o.Sync)
	}
	if st.hasGateway = len(o.GatewayMAC) == 6; st.hasGateway {
		st.gateway = [6]byte(o.GatewayMAC)
	}
	if st.hasAddr4 = o.Addr4.Unmap().Is4(); st.hasAddr4 {
		st.addr4 = rawAddr(o.Addr4)
	}
	if st.hasAddr6 = o.Addr6.Is6() && !o.Addr6.Is4In6(); st.hasAddr6 {
		st.addr6 = rawAddr(o.Addr6)
	}
	return st
}

// snapshot is one configuration generation: everything the hot path reads, published
// with one atomic store and never changed afterwards. Workers load it once per batch.
//
// Dest ids are never reused, and every dest a generation's pools can return has its
// id in that generation's dests, so a worker indexes its own generation safely. A
// connection may name a dest of a newer generation than the one a worker is on (made
// by another worker); the worker then moves to the newest (Worker.info).
type snapshot struct {
	nsvc     uint32 // service ids below it were handed out (per-service stats)
	bySvc    svcIndex
	vips     addrSet // destination addresses of every service (and fwmark matches)
	natRS    addrSet // source addresses of NAT real servers (reply path)
	hasPort0 bool
	hasFTP   bool
	marks    []markRule
	dests    []destInfo // by dest id (includes deleted dests still referenced)
	set      settings
	gen      uint64 // 0 for New's empty generation, then one more per publication
}

type markRule struct {
	ipvs.Match
	mark uint32
}

// ErrConfig reports a service definition the Director cannot apply.
var ErrConfig = errors.New("dataplane: config")

// A Director is the deterministic per-packet pipeline: parse, classify, look up or
// create the connection, rewrite. It does no I/O. It is safe for concurrent use by
// several Workers; configuration changes (Apply, SetOptions) build the next generation
// aside and publish it with one atomic store, keeping every connection.
type Director struct {
	log   *slog.Logger
	table *conntrack.Table
	snap  atomic.Pointer[snapshot]
	twos  func(uint32) uint32 // shared by every twos scheduler; safe for concurrent use

	// The control side, serialised by mu: the options, and the dests of every
	// generation (by id) with the trash of deleted ones. The running services, as
	// applied, are the next generation's index (next.idx).
	mu      sync.Mutex
	opts    Options
	set     settings // settingsOf(&opts), made when the options change: every generation shares it (immutable)
	nextSvc uint32
	trash   map[uint32]map[netip.AddrPort]uint32 // deleted dests by service id, then address → id, revived on re-add
	dests   []destInfo
	now     atomic.Int64 // latest time a worker processed a batch at (for Apply's flushes)

	// The next generation's structures, kept across generations and changed by what
	// a change touches (gen.go): a change costs what it changes, not the table.
	next nextGen

	// owned is the set of VIPs this director serves while VRRP says so; nil = every
	// configured VIP (no VRRP). See SetOwned.
	owned atomic.Pointer[addrSet]

	// Rate limit state shared by the workers (defense.go): ICMP errors per
	// destination and in total, and new connections per client prefix (nil until a
	// limit is set).
	icmpPeers  *rateTable
	icmpGlobal atomic.Int64
	sources    atomic.Pointer[rateTable]

	wmu     sync.Mutex // guards workers
	workers []*Worker  // every worker made by NewWorker, for Totals
}

// New returns a Director with no services.
func New(opts Options) (*Director, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	d := &Director{opts: opts, log: opts.Logger, trash: map[uint32]map[netip.AddrPort]uint32{}, icmpPeers: newRateTable(icmpPeerBits)}
	d.next.init()
	d.setLimits(&Defense{}, &opts.Defense)
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.twos = opts.Rand
	if d.twos == nil {
		d.twos = xorshiftRand(0x2545f4914f6cdd1d)
	}
	t, err := conntrack.New(conntrack.Config{
		Max:                     opts.ConnMax,
		Shards:                  opts.ConnShards,
		HashSeed:                opts.HashSeed,
		Timeouts:                opts.Timeouts,
		ConnReuseMode:           opts.ConnReuseMode,
		ExpireNodestConn:        opts.ExpireNodestConn,
		ExpireQuiescentTemplate: opts.ExpireQuiescentTemplate,
		UnconfirmedMax:          opts.ConnUnconfirmedMax,
		UnconfirmedPerService:   opts.ConnUnconfirmedPerService,
		DropEntry:               opts.DropEntry,
		SecureTCP:               opts.SecureTCP,
		AMemThresh:              opts.AMemThresh,
	})
	if err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	d.table = t
	t.SetSyncRules(opts.Sync)
	d.set = settingsOf(&opts)
	d.snap.Store(&snapshot{set: d.set})
	return d, nil
}

func checkOptions(o *Options) error {
	if o.MTU < 68 {
		return fmt.Errorf("%w: mtu %d is below the IPv4 minimum of 68", ErrConfig, o.MTU)
	}
	if o.Sync != nil {
		if err := o.Sync.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return checkDefense(&o.Defense)
}

// Options returns the options in force.
func (d *Director) Options() Options {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opts
}

// SetOptions changes the Director's options under traffic, keeping every connection:
// the addresses, MACs, MTU and sysctls take effect with the next generation, the
// table's cap and timeouts at once (timeouts from each entry's next packet, as
// ipvsadm --set). ConnShards cannot change without a restart, and the options must
// still serve the running services (a TUN real server needs the director's address
// of its family). On error nothing changes.
func (d *Director) SetOptions(o Options) error {
	if err := checkOptions(&o); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if o.HashSeed != d.opts.HashSeed {
		return fmt.Errorf("%w: the flow hash seed is fixed at start", ErrConfig)
	}
	if o.ConnShards != d.opts.ConnShards {
		return fmt.Errorf("%w: conn_shards %d → %d takes effect only at start (restart gvs)", ErrConfig, d.opts.ConnShards, o.ConnShards)
	}
	if o.MHCanonical != d.opts.MHCanonical {
		return fmt.Errorf("%w: the mh table order is fixed at start (restart gvs)", ErrConfig)
	}
	if err := validate(&o, d.specList()); err != nil {
		return err
	}
	if err := d.table.Set(conntrack.Settings{
		Max:                     o.ConnMax,
		Timeouts:                o.Timeouts,
		ConnReuseMode:           o.ConnReuseMode,
		ExpireNodestConn:        o.ExpireNodestConn,
		ExpireQuiescentTemplate: o.ExpireQuiescentTemplate,
		UnconfirmedMax:          o.ConnUnconfirmedMax,
		UnconfirmedPerService:   o.ConnUnconfirmedPerService,
		DropEntry:               o.DropEntry,
		SecureTCP:               o.SecureTCP,
		AMemThresh:              o.AMemThresh,
	}); err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	if o.Logger == nil {
		o.Logger = d.opts.Logger
	}
	if o.Rand == nil {
		o.Rand = d.opts.Rand
	}
	d.setLimits(&d.opts.Defense, &o.Defense)
	d.table.SetSyncRules(o.Sync)
	d.opts = o
	d.set = settingsOf(&o)
	d.syncRingsLocked() // before the rules are published: the workers' rings are not tested
	d.publishLocked()
	return nil
}

// Table returns the connection table (for listings and tests).
func (d *Director) Table() *conntrack.Table { return d.table }

// xorshiftRand is a deterministic source for the twos scheduler when the options
// give none. Every twos pool of the Director shares it (pools of two generations
// run concurrently), so the state is advanced atomically.
func xorshiftRand(seed uint64) func(uint32) uint32 {
	var state atomic.Uint64
	state.Store(seed)
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
// current ones by their key: a new service is created empty and its real servers are
// added one by one in order (as keepalived and ipvsadm drive the kernel, so list order
// and wrr's first round match LVS); a kept service keeps its scheduler state and
// connections, with real servers added, edited or deleted as the kernel's hooks would
// be; a service no longer listed is removed. The next generation is built aside —
// changed services get a clone of their Pool, so workers still on the current
// generation never see a list or a dest it does not know — and published with one
// atomic store. Only services that differ from the running ones are validated and
// rebuilt (ApplyDelta). On error nothing changes.
func (d *Director) Apply(services []ipvs.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[svcKey]bool, len(services))
	var errs []error
	var upsert []*ipvs.Service
	for i := range services {
		s := &services[i]
		unchanged := func(k svcKey) bool {
			cur := d.next.idx.get(k)
			if cur == nil {
				return false
			}
			a := d.appliedLocked(cur)
			return sameSpec(&a, s)
		}
		if d.admit(s, seen, unchanged, &errs) {
			upsert = append(upsert, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var remove []svcKey
	d.next.idx.each(func(k svcKey, _ *service) {
		if !seen[k] {
			remove = append(remove, k)
		}
	})
	if err := d.applyLocked(upsert, remove); err != nil {
		return err
	}
	d.publishLocked()
	return nil
}

// ApplyDelta changes only the services it names, as Apply would with the running
// services, upsert's put in place of (or beside) theirs and remove's left out:
// upsert's services are validated, created or changed as Apply does, remove's (keys
// of running services; others are ignored) are removed, and every other service is
// kept untouched and not revisited. Its cost follows the size of the change, not
// of the table. A key may not be in both lists. On error nothing changes.
func (d *Director) ApplyDelta(upsert []ipvs.Service, remove []ipvs.Key) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[svcKey]bool, len(upsert))
	var errs []error
	ups := make([]*ipvs.Service, 0, len(upsert))
	for i := range upsert {
		if s := &upsert[i]; d.admit(s, seen, nil, &errs) {
			ups = append(ups, s)
		}
	}
	var rm []svcKey
	for i := range remove {
		k := keyOfKey(&remove[i])
		if seen[k] {
			errs = append(errs, fmt.Errorf("%w: %s: both changed and removed", ErrConfig, &remove[i]))
			continue
		}
		if d.next.idx.get(k) != nil {
			rm = append(rm, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := d.applyLocked(ups, rm); err != nil {
		return err
	}
	d.publishLocked()
	return nil
}

// admit records s's key in seen and reports whether s is to be applied: not a
// second definition of a key (an error), nor unchanged (skip, if given, says so).
// The errors validateService finds in an admitted s are added to errs.
func (d *Director) admit(s *ipvs.Service, seen map[svcKey]bool, skip func(svcKey) bool, errs *[]error) bool {
	k := keyOf(s)
	if seen[k] {
		*errs = append(*errs, fmt.Errorf("%w: %s: service defined twice", ErrConfig, s))
		return false
	}
	seen[k] = true
	if skip != nil && skip(k) {
		return false
	}
	*errs = append(*errs, validateService(&d.opts, s)...)
	return true
}

// sameSpec reports whether a and b define the same service.
func sameSpec(a, b *ipvs.Service) bool {
	return sameSettings(a, b) && slices.Equal(a.RealServers, b.RealServers)
}

// sameSettings reports whether a and b define the same service but for their real
// servers (sameSpec and sameService compare those, each in its own way).
func sameSettings(a, b *ipvs.Service) bool {
	return a.Key == b.Key && a.Scheduler == b.Scheduler && a.Flags == b.Flags && a.MHTableSize == b.MHTableSize &&
		a.Persistence == b.Persistence && a.Netmask == b.Netmask && a.OPS == b.OPS &&
		slices.Equal(a.Match, b.Match)
}

// specList returns the running services (in no particular order).
func (d *Director) specList() []ipvs.Service {
	out := make([]ipvs.Service, 0, d.next.idx.len())
	d.next.idx.each(func(_ svcKey, s *service) { out = append(out, d.appliedLocked(s)) })
	return out
}

// applyLocked creates or changes the services of upsert (validated) and removes
// the services of remove (running), on the control side's state; publishLocked
// makes the result a generation.
// Precondition: d.mu is held.
func (d *Director) applyLocked(upsert []*ipvs.Service, remove []svcKey) error {
	// Everything that can fail was checked by the caller; what follows only builds.
	built := make([]*service, len(upsert))
	for i, spec := range upsert {
		k := keyOf(spec)
		old := d.next.idx.get(k)
		var pool *sched.Pool
		var id uint32
		var room *serviceRoom
		schedChanged := old == nil || old.spec.Scheduler != spec.Scheduler || old.spec.Flags != spec.Flags || old.spec.MHTableSize != spec.MHTableSize
		switch {
		case old == nil:
			id = d.nextSvc
			d.nextSvc++
			room = new(serviceRoom)
			pool = d.newPool(spec, &room.pool)
		case schedChanged:
			id = old.id
			pool = old.pool.Clone()
			if err := pool.SetScheduler(d.newScheduler(spec)); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrConfig, spec, err) // unreachable: validate checked the size
			}
		default:
			id = old.id
			pool = old.pool
			if d.destsChanged(pool, spec) {
				pool = pool.Clone()
			}
		}
		if old != nil && pool == old.pool && sameService(old, spec) {
			// Nothing but real servers' MACs changed: the dests take them, the
			// running service stays as it is (and where it is in the index).
			for j := range spec.RealServers {
				r := &spec.RealServers[j]
				d.setInfoLocked(pool.Find(r.Addr.Addr(), r.Addr.Port()).ID(), old, r)
			}
			built[i] = old
			continue
		}
		var svc *service
		if room != nil {
			svc = &room.svc
		} else {
			svc = new(service)
		}
		*svc = service{id: id, pool: pool, spec: *spec, key: k, readsPacket: sched.ReadsPacket(pool.Scheduler())}
		if len(spec.RealServers) == 1 {
			svc.rs1[0], svc.one = appliedServerOf(&spec.RealServers[0]), true
		} else if len(spec.RealServers) > 0 {
			svc.rs = make([]appliedServer, len(spec.RealServers))
			for j := range svc.rs {
				svc.rs[j] = appliedServerOf(&spec.RealServers[j])
			}
		}
		svc.spec.RealServers = nil
		svc.spec.Match = slices.Clone(spec.Match)
		svc.ipv6 = spec.IPv6
		if old == nil || pool != old.pool {
			if err := d.syncDestsLocked(svc, spec); err != nil {
				return err
			}
		} else {
			for j := range spec.RealServers {
				r := &spec.RealServers[j]
				d.setInfoLocked(pool.Find(r.Addr.Addr(), r.Addr.Port()).ID(), svc, r)
			}
		}
		built[i] = svc
	}
	for _, k := range remove {
		svc := d.next.idx.get(k)
		// The removed service's last pool stays as it is for workers still on the
		// current generation; a clone takes the deletions.
		p := svc.pool.Clone()
		for _, dst := range p.Dests() {
			d.deleteDestLocked(svc, p, dst)
		}
		// Service ids are not reused: nothing can revive the service's trash
		// (its dests stay in d.dests while connections name them).
		delete(d.trash, svc.id)
		d.next.drop(k, svc)
	}
	for i, spec := range upsert {
		k, svc := keyOf(spec), built[i]
		if old := d.next.idx.get(k); old == svc {
			continue
		} else if old != nil {
			d.next.drop(k, old)
		}
		d.next.put(svc)
	}
	d.next.syncNAT(d.dests)
	return nil
}

func (d *Director) newScheduler(spec *ipvs.Service) sched.Scheduler {
	s, err := sched.New(spec.Scheduler, d.schedOptions(spec))
	if err != nil {
		panic("dataplane: scheduler " + spec.Scheduler + " passed validation but failed: " + err.Error())
	}
	return s
}

// serviceRoom is a new service made in one allocation with its pool: one
// object per service for the collector to mark, not two, as long as the
// service runs as it was made (a real server's MAC coming in keeps it). A
// later service that keeps the pool keeps the room, and the first service's
// few hundred bytes in it, while it runs.
type serviceRoom struct {
	svc  service
	pool sched.PoolRoom
}

// newPool returns a new service's pool, with its scheduler, made in room
// (sched.PoolRoom).
func (d *Director) newPool(spec *ipvs.Service, room *sched.PoolRoom) *sched.Pool {
	p, err := room.Init(spec.Scheduler, d.schedOptions(spec))
	if err != nil {
		panic("dataplane: scheduler " + spec.Scheduler + " passed validation but failed: " + err.Error())
	}
	return p
}

func (d *Director) schedOptions(spec *ipvs.Service) sched.Options {
	return sched.Options{Flags: spec.Flags, MHTableSize: spec.MHTableSize, Rand: d.twos, MHCanonical: d.opts.MHCanonical}
}

// destsChanged reports whether spec's real servers differ from pool's list in
// membership, weight or thresholds (what the Pool's hooks see).
func (d *Director) destsChanged(pool *sched.Pool, spec *ipvs.Service) bool {
	cur := pool.Dests()
	if len(cur) != len(spec.RealServers) {
		return true
	}
	for i := range spec.RealServers {
		r := &spec.RealServers[i]
		dst := pool.Find(r.Addr.Addr(), r.Addr.Port())
		if dst == nil || dst.Weight() != r.Weight || dst.UpperThreshold() != r.UpperThreshold || dst.LowerThreshold() != r.LowerThreshold {
			return true
		}
	}
	return false
}

// validate checks everything Apply (or SetOptions, with the running services) could
// refuse half-way, so a refused change changes nothing.
func validate(o *Options, services []ipvs.Service) error {
	seen := map[svcKey]bool{}
	var errs []error
	for i := range services {
		s := &services[i]
		if seen[keyOf(s)] {
			errs = append(errs, fmt.Errorf("%w: %s: service defined twice", ErrConfig, s))
		}
		seen[keyOf(s)] = true
		errs = append(errs, validateService(o, s)...)
	}
	return errors.Join(errs...)
}

// validateService checks one service as validate does, but for duplicates.
func validateService(o *Options, s *ipvs.Service) []error {
	var errs []error
	{
		if s.FWMark == 0 && s.Protocol != ipvs.TCP && s.Protocol != ipvs.UDP {
			errs = append(errs, fmt.Errorf("%w: %s: protocol %d is not tcp or udp", ErrConfig, s, s.Protocol))
		}
		if s.FWMark == 0 && s.IPv6 != s.Addr.Addr().Is6() {
			errs = append(errs, fmt.Errorf("%w: %s: family does not match the address (build keys with ipvs.AddrKey)", ErrConfig, s))
		}
		sc, err := sched.New(s.Scheduler, sched.Options{Flags: s.Flags, MHTableSize: s.MHTableSize})
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrConfig, s, err))
		} else if sz, ok := sc.(sched.Sizer); ok && len(s.RealServers) > sz.MaxDests() {
			errs = append(errs, fmt.Errorf("%w: %s: %d real servers do not fit the %s scheduler's table of %d", ErrConfig, s, len(s.RealServers), s.Scheduler, sz.MaxDests()))
		}
		rs := map[netip.AddrPort]bool{}
		for _, r := range s.RealServers {
			ap := netip.AddrPortFrom(r.Addr.Addr().Unmap(), r.Addr.Port())
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
			switch r.Method {
			case ipvs.DR, ipvs.NAT:
			case ipvs.TUN:
				if ap.Addr().Is4() && !o.Addr4.Unmap().Is4() {
					errs = append(errs, fmt.Errorf("%w: %s: real server %s: tunnelling needs the director's own IPv4 address as the outer source ([director] address)", ErrConfig, s, ap))
				}
				if ap.Addr().Is6() && !(o.Addr6.Is6() && !o.Addr6.Is4In6()) {
					errs = append(errs, fmt.Errorf("%w: %s: real server %s: tunnelling needs the director's own IPv6 address as the outer source ([director] address6)", ErrConfig, s, ap))
				}
			case 0:
				errs = append(errs, fmt.Errorf("%w: %s: real server %s: no forwarding method", ErrConfig, s, ap))
			default:
				errs = append(errs, fmt.Errorf("%w: %s: real server %s: method %s cannot be configured (dr, nat or tun)", ErrConfig, s, ap, r.Method))
			}
		}
	}
	return errs
}

// syncDestsLocked brings svc's pool — a new pool, or a clone no worker reads yet — to
// spec's real servers. New ones are added in config order, so the kernel list (head
// first) is the reverse of the file.
// Precondition: d.mu is held.
func (d *Director) syncDestsLocked(svc *service, spec *ipvs.Service) error {
	pool := svc.pool
	want := make(map[netip.AddrPort]*ipvs.RealServer, len(spec.RealServers))
	for i := range spec.RealServers {
		r := &spec.RealServers[i]
		want[netip.AddrPortFrom(r.Addr.Addr().Unmap(), r.Addr.Port())] = r
	}
	for _, dst := range pool.Dests() {
		if want[netip.AddrPortFrom(dst.Addr(), dst.Port())] == nil {
			d.deleteDestLocked(svc, pool, dst)
		}
	}
	for i := range spec.RealServers {
		r := &spec.RealServers[i]
		addr, port := r.Addr.Addr().Unmap(), r.Addr.Port()
		if cur := pool.Find(addr, port); cur != nil {
			if cur.Weight() != r.Weight || cur.UpperThreshold() != r.UpperThreshold || cur.LowerThreshold() != r.LowerThreshold {
				if err := pool.Edit(addr, port, r.Weight, r.UpperThreshold, r.LowerThreshold); err != nil {
					return fmt.Errorf("%w: %s: real server %s: %w", ErrConfig, spec, r.Addr, err)
				}
			}
			d.setInfoLocked(cur.ID(), svc, r)
			continue
		}
		ap := netip.AddrPortFrom(addr, port)
		var dst *sched.Dest
		if id, ok := d.trash[svc.id][ap]; ok {
			delete(d.trash[svc.id], ap)
			dst = d.dests[id].d
			dst.Revive(r.Weight, r.UpperThreshold, r.LowerThreshold)
		} else {
			dst = pool.NewDest(uint32(len(d.dests)), addr, port, r.Weight, r.UpperThreshold, r.LowerThreshold)
			// Appended past the published generations' length (their slices are
			// capped there): no generation sees the write.
			d.dests = append(d.dests, destInfo{d: dst})
		}
		if err := pool.Add(dst); err != nil {
			return fmt.Errorf("%w: %s: real server %s: %w", ErrConfig, spec, r.Addr, err)
		}
		d.next.touchDest(dst.ID()) // available again
		d.setInfoLocked(dst.ID(), svc, r)
	}
	return nil
}

// setInfoLocked records r's data-path settings for the next generation (the published
// generations have their own copies of d.dests).
// Precondition: d.mu is held.
func (d *Director) setInfoLocked(id uint32, svc *service, r *ipvs.RealServer) {
	in := d.dests[id]
	in.svc = svc.id
	in.method = r.Method
	a := r.Addr.Addr().Unmap()
	in.ipv6 = a.Is6()
	in.addr = rawAddr(a)
	in.hasMAC = !r.MAC.IsZero()
	in.mac = r.MAC
	if in == d.dests[id] {
		return
	}
	if int(id) < d.next.destsPub {
		// The published generations share d.dests up to destsPub: copy before
		// the first write.
		d.dests = slices.Clone(d.dests)
		d.next.destsPub = 0
	}
	d.dests[id] = in
	d.next.touchDest(id)
}

// deleteDestLocked unlinks dst from pool (the next generation's) and keeps it in the
// trash so a re-add finds its counters (docs/ipvs-semantics.md §2.1 step 3), and with
// expire_nodest_conn flushes its connections.
// Precondition: d.mu is held.
func (d *Director) deleteDestLocked(svc *service, pool *sched.Pool, dst *sched.Dest) {
	if _, err := pool.Delete(dst.Addr(), dst.Port()); err != nil {
		return
	}
	t := d.trash[svc.id]
	if t == nil {
		t = map[netip.AddrPort]uint32{}
		d.trash[svc.id] = t
	}
	t[netip.AddrPortFrom(dst.Addr(), dst.Port())] = dst.ID()
	d.next.touchDest(dst.ID())
	if d.opts.ExpireNodestConn {
		d.table.ExpireDest(dst.ID(), d.now.Load())
	}
}

// publishLocked publishes the control side's next generation (d.next) and stores
// it. Precondition: d.mu is held.
func (d *Director) publishLocked() {
	s := d.next.freeze(d.dests)
	s.set = d.set
	s.gen = d.snap.Load().gen + 1
	d.snap.Store(s)
}

// ServiceView describes a service and its real servers as listings show them
// (ipvsadm -L order is applied by the caller; Dests are in kernel list order).
type ServiceView struct {
	ID    uint32
	Spec  ipvs.Service // RealServers empty
	Sched string
	Dests []DestView
}

// DestView is one real server with its live counters.
type DestView struct {
	ID                                    uint32
	Addr                                  netip.Addr
	Port                                  uint16
	Weight                                int32
	Method                                ipvs.Method
	UpperThreshold, LowerThreshold        uint32
	ActiveConns, InactConns, PersistConns int32
	Overloaded                            bool
}

// Services returns every service with its real servers, services sorted by id
// (creation order).
func (d *Director) Services() []ServiceView {
	s := d.snap.Load()
	var vs []ServiceView
	for _, svc := range s.serviceList() {
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

// serviceList returns the generation's services sorted by id.
func (s *snapshot) serviceList() []*service {
	var out []*service
	s.bySvc.each(func(svc *service) { out = append(out, svc) })
	slices.SortFunc(out, func(a, b *service) int { return cmp.Compare(a.id, b.id) })
	return out
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
	s := newAddrSet(vips)
	d.owned.Store(&s)
}
