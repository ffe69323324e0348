package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/vrrp"
)

// VRRPConfig maps one [[vrrp]] section onto the state machine's configuration. src
// is the address adverts go out from when unicast_src_ip is not set: the
// interface's primary IPv4 address, or its IPv6 link-local address.
func VRRPConfig(v config.VRRP, src netip.Addr) (vrrp.Config, error) {
	c := vrrp.Config{
		VRID:         v.VirtualRouterID,
		Version:      vrrp.Version(v.Version),
		Priority:     v.Priority,
		Interval:     v.AdvertInt,
		Src:          src,
		Addrs:        slices.Clone(v.VirtualIPAddress),
		NoPreempt:    v.NoPreempt,
		PreemptDelay: v.PreemptDelay,
		Peers:        slices.Clone(v.UnicastPeer),
	}
	if v.UnicastSrcIP.IsValid() {
		c.Src = v.UnicastSrcIP
	}
	if v.AuthType == "PASS" && c.Version == vrrp.Version2 {
		c.AuthType = vrrp.AuthPassword
		copy(c.AuthData[:], v.AuthPass) // keepalived uses the first 8 bytes
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
	}
	return c, nil
}

// vrrpSource finds the address an instance on ifi advertises from: the first
// (primary) IPv4 address, or the IPv6 link-local address.
func vrrpSource(ifi Interface, ipv6 bool) (netip.Addr, error) {
	for _, ip := range ifi.Addrs {
		if !ipv6 && ip.Is4() {
			return ip, nil
		}
		if ipv6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	fam := "IPv4"
	if ipv6 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s address to send VRRP adverts from", ifi.Name, fam)
}

// vrrpManager is the daemon's side of VRRP: it runs a vrrp.Runner over the
// transports Deps.OpenVRRP opens and reports its decisions to the controller, which
// owns the Director's VIP set; it repeats announcements as keepalived does
// (garp_master_delay, garp_master_refresh); a reload changes its instances
// (vrrpreload.go).
type vrrpManager struct {
	log    *slog.Logger
	dm     *Daemon
	all    []Announcer
	runner *vrrp.Runner
	kv     *kernelVIPs // nil: no kernel addresses (yet); set before Run or in a reload's Prepare
	// cleaned: the leftovers of a previous run were looked for.
	cleaned bool
	// record is where the kernel addresses are recorded; the dumps go beside it.
	record string

	// imu guards insts, which the Runner's callbacks, the announcement timers and
	// a reload's Prepare read or change; never held during I/O.
	imu   sync.RWMutex
	insts map[*vrrp.Instance]*vrrpInst

	// The controller's (New and reloads): the announcer of each interface VIPs
	// are on, and the transport of each interface, family and mode.
	annByIf map[string]Announcer
	shared  map[trKey]vrrp.Transport
	groups  []config.VRRPSyncGroup // the running sync groups

	// notify runs the notify commands, one queue per instance so that they run in
	// order without ever blocking the runner.
	notify *notifier

	mu     sync.Mutex // guards master and timers; never held during I/O
	master map[*vrrp.Instance]bool
	timers map[*vrrp.Instance][]func() bool
}

// vrrpInst is what the daemon keeps of one instance.
type vrrpInst struct {
	cfg config.VRRP
	ann Announcer // on the instance's interface; nil: none
	// served are its VIPs gvs serves in userspace (its services' addresses); kern
	// the others, which go on the kernel while it is MASTER.
	served []netip.Addr
	kern   []kernelAddr
	routes []kernelRoute  // virtual_routes, on the kernel with kern
	rules  []kaddr.Rule   // virtual_rules, on the kernel after routes
	tr     vrrp.Transport // shared with the instances on the same interface, family and mode
}

// onKernel reports whether the instance puts anything on the kernel while MASTER.
func (st *vrrpInst) onKernel() bool {
	return len(st.kern) > 0 || len(st.routes) > 0 || len(st.rules) > 0
}

// trKey identifies a shared transport.
type trKey struct {
	ifname       string
	ipv6, unicst bool
}

// get returns what the manager keeps of in; nil once a reload removed it.
func (m *vrrpManager) get(in *vrrp.Instance) *vrrpInst {
	m.imu.RLock()
	defer m.imu.RUnlock()
	return m.insts[in]
}

// newVRRP builds the instances and their sync groups and opens their transports.
func newVRRP(dm *Daemon, vs []config.VRRP, groups []config.VRRPSyncGroup) (*vrrpManager, error) {
	log := dm.log
	if dm.deps.OpenVRRP == nil {
		return nil, errors.New("[[vrrp]]: this director has no VRRP transport (Deps.OpenVRRP)")
	}
	m := &vrrpManager{log: log, dm: dm, insts: map[*vrrp.Instance]*vrrpInst{}, annByIf: map[string]Announcer{},
		shared: map[trKey]vrrp.Transport{}, master: map[*vrrp.Instance]bool{}, timers: map[*vrrp.Instance][]func() bool{},
		notify: newNotifier(log, notifyTimeout, dm.runScript)}
	m.record = recordPath(dm.st.cfg)
	members, built, err := m.build(vs, groups, dm.st.cfg)
	if err != nil {
		m.close()
		return nil, err
	}
	m.insts = built
	m.groups = slices.Clone(groups)
	if err := m.openKernel(built); err != nil {
		m.close()
		return nil, err
	}
	for _, v := range vs {
		dm.metrics.SetVRRPState(v.Name, "INIT")
	}
	r, err := vrrp.NewRunner(members, vrrp.RunnerOptions{
		Logger:       log,
		Clock:        dm.clock,
		BecomeMaster: m.becomeMaster,
		LeaveMaster:  m.leaveMaster,
		Gratuitous:   m.lowerPrio,
		// A director in cluster mode takes no VIP from a live master before its
		// bulk sync is done (docs/cluster.md §14); dm.cl is set by New before Run.
		PreemptHold: func() string { return dm.cl.preemptHold(dm.clock.Now()) },
		StateChange: func(tr vrrp.Transition) {
			dm.metrics.SetVRRPState(tr.Name, tr.To.String())
			dm.cl.vrrpTransition(tr.From, tr.To)
			if st := m.get(tr.Instance); st != nil {
				if cmds := notifyCommands(st.cfg, tr.To, tr.Instance.Priority()); len(cmds) > 0 {
					m.notify.enqueue(tr.Name, cmds)
				}
			}
		},
	})
	if err != nil {
		m.close()
		return nil, err
	}
	m.runner = r
	return m, nil
}

// linkUp reports whether interface name exists and is up.
func (m *vrrpManager) linkUp(name string) bool {
	ifi, err := m.dm.deps.Host.Interface(name)
	return err == nil && ifi.Up
}

// build makes the instances vs and their sync groups (groups naming any of them),
// opening the transports and announcers they need; cfg tells which VIPs are
// services'. The transports and announcers opened stay with m (m.close).
func (m *vrrpManager) build(vs []config.VRRP, groups []config.VRRPSyncGroup, cfg *config.Config) ([]vrrp.Member, map[*vrrp.Instance]*vrrpInst, error) {
	dm := m.dm
	own := serviceVIPs(cfg)
	byName := map[string]*vrrp.Instance{}
	built := map[*vrrp.Instance]*vrrpInst{}
	var members []vrrp.Member
	for _, v := range vs {
		member, st, err := m.buildOne(v, own)
		if err != nil {
			return nil, nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
		}
		byName[v.Name] = member.Instance
		built[member.Instance] = st
		members = append(members, member)
		c := member.Instance.Config()
		dm.log.Info("VRRP instance", "instance", v.Name, "interface", v.Interface, "vrid", c.VRID, "version", c.Version, "priority", c.Priority,
			"advert_int", c.Interval, "src", c.Src, "vips", c.Addrs, "unicast_peers", c.Peers, "kernel_addresses", len(st.kern))
	}
	for _, sg := range groups {
		var ins []*vrrp.Instance
		for _, n := range sg.Group {
			if in := byName[n]; in != nil {
				ins = append(ins, in)
			}
		}
		if len(ins) == 0 {
			continue
		}
		if _, err := vrrp.NewGroup(ins...); err != nil {
			return nil, nil, fmt.Errorf("[[vrrp_sync_group]] %q: %w", sg.Name, err)
		}
		dm.log.Info("VRRP sync group", "group", sg.Name, "instances", sg.Group)
	}
	return members, built, nil
}

// buildOne makes one instance: its configuration from the interface, its shared
// transport, its announcer, and which of its VIPs go on the kernel.
func (m *vrrpManager) buildOne(v config.VRRP, own map[netip.Addr]bool) (vrrp.Member, *vrrpInst, error) {
	dm := m.dm
	ifi, err := dm.deps.Host.Interface(v.Interface)
	if err != nil {
		return vrrp.Member{}, nil, err
	}
	c, err := m.instanceConfig(v, ifi)
	if err != nil {
		return vrrp.Member{}, nil, err
	}
	in, err := vrrp.NewInstance(c)
	if err != nil {
		return vrrp.Member{}, nil, err
	}
	k := trKey{ifi.Name, c.Src.Is6(), len(c.Peers) > 0}
	tr := m.shared[k]
	if tr == nil {
		if tr, err = dm.deps.OpenVRRP(vrrp.TransportConfig{Interface: k.ifname, IPv6: k.ipv6, Unicast: k.unicst}); err != nil {
			return vrrp.Member{}, nil, err
		}
		m.shared[k] = tr
	}
	ann, err := m.announcer(ifi)
	if err != nil {
		return vrrp.Member{}, nil, err
	}
	st := &vrrpInst{cfg: v, ann: ann, tr: tr}
	if err := m.entries(st, ifi, own, c.Src.Is6()); err != nil {
		return vrrp.Member{}, nil, err
	}
	return vrrp.Member{Name: v.Name, Instance: in, Transport: tr,
		LinkUp: func() bool { return m.linkUp(ifi.Name) }, Tracks: dm.vrrpTracks(v, m.linkUp)}, st, nil
}

// entries sets st's served VIPs, kernel addresses, routes and rules from st.cfg:
// ifi is the instance's interface, own the addresses gvs serves, ipv6 its family.
func (m *vrrpManager) entries(st *vrrpInst, ifi Interface, own map[netip.Addr]bool, ipv6 bool) error {
	v := st.cfg
	st.served, st.kern, st.routes = nil, nil, nil
	for _, a := range slices.Concat(v.VIPs, v.ExcludedVIPs) {
		if own[a.Addr()] {
			st.served = append(st.served, a.Addr())
			continue
		}
		ka, err := m.kernelAddr(a, ifi)
		if err != nil {
			return err
		}
		st.kern = append(st.kern, ka)
	}
	for _, rt := range v.VirtualRoutes {
		kr, err := m.kernelRoute(rt)
		if err != nil {
			return err
		}
		st.routes = append(st.routes, kr)
	}
	st.rules = kernelRules(v.VirtualRules, ipv6)
	return nil
}

// instanceConfig maps v onto the state machine's configuration on ifi.
func (m *vrrpManager) instanceConfig(v config.VRRP, ifi Interface) (vrrp.Config, error) {
	src := v.UnicastSrcIP
	if !src.IsValid() {
		var err error
		if src, err = vrrpSource(ifi, v.IPv6()); err != nil {
			return vrrp.Config{}, err
		}
	}
	return VRRPConfig(v, src)
}

// run drives VRRP until ctx ends, then shuts the instances down (a master
// advertises priority 0 and releases its VIPs).
func (m *vrrpManager) run(ctx context.Context) error {
	err := m.runner.Run(ctx)
	// The STOP notifications of the shutdown are queued: give them a moment.
	m.notify.close(notifyDrain)
	m.mu.Lock()
	for in := range m.timers {
		m.stopTimersLocked(in)
	}
	m.mu.Unlock()
	drops := m.runner.Drops()
	var attrs []any
	for r, n := range drops {
		if n > 0 {
			attrs = append(attrs, vrrp.Reason(r).String(), n)
		}
	}
	if kv := m.kernel(); kv != nil {
		// The Runner has stopped: every master has advertised priority 0.
		kv.releaseAll()
	}
	rx, tx, txErr := m.runner.Counters()
	m.log.Info("VRRP stopped", append([]any{"received", rx, "sent", tx, "send_errors", txErr}, attrs...)...)
	return err
}

// close releases the transports and announcers (run closes the transports too;
// closing twice is harmless).
func (m *vrrpManager) close() {
	for _, t := range m.shared {
		t.Close()
	}
	for _, a := range m.all {
		a.Close()
	}
}

// announcer returns the announcer of ifi, opening it the first time (the
// director's own for its interface); nil without Deps.NewAnnouncer.
func (m *vrrpManager) announcer(ifi Interface) (Announcer, error) {
	if a, ok := m.annByIf[ifi.Name]; ok {
		return a, nil
	}
	dm := m.dm
	var a Announcer
	switch {
	case dm.deps.NewAnnouncer == nil:
	case ifi.Name == dm.ifi.Name && dm.ann != nil:
		a = dm.ann
	default:
		var err error
		if a, err = dm.deps.NewAnnouncer(ifi); err != nil {
			return nil, err
		}
		m.all = append(m.all, a)
	}
	m.imu.Lock()
	m.annByIf[ifi.Name] = a
	m.imu.Unlock()
	return a, nil
}

// kernelAddr resolves a virtual address that goes on the kernel: its interface
// (dev, else the instance's), scope and label; it opens the announcer of that
// interface.
func (m *vrrpManager) kernelAddr(a config.VirtualAddress, inst Interface) (kernelAddr, error) {
	ifi := inst
	if a.Dev != "" && a.Dev != inst.Name {
		var err error
		if ifi, err = m.dm.deps.Host.Interface(a.Dev); err != nil {
			return kernelAddr{}, fmt.Errorf("virtual address %v: dev %s: %w", a.Prefix, a.Dev, err)
		}
		if _, err := m.announcer(ifi); err != nil {
			return kernelAddr{}, err
		}
	}
	scope := kaddr.ScopeGlobal
	if a.Scope != "" {
		var err error
		if scope, err = kaddr.ParseScope(a.Scope); err != nil {
			return kernelAddr{}, err
		}
	}
	return kernelAddr{Addr: kaddr.Addr{Prefix: a.Prefix, Index: ifi.Index, Label: a.Label, Scope: scope, Broadcast: a.Broadcast}, Dev: ifi.Name}, nil
}

// kernelRules maps virtual rules onto the kernel's; a rule with neither from nor
// to is of the instance's family (ipv6).
func kernelRules(rules []config.VirtualRule, ipv6 bool) []kaddr.Rule {
	var out []kaddr.Rule
	for _, ru := range rules {
		r := kaddr.Rule{IPv6: ipv6, From: ru.From, To: ru.To, IIF: ru.IIF, OIF: ru.OIF, Mark: ru.Mark, Mask: ru.Mask, HasMark: ru.HasMark,
			Priority: ru.Priority, HasPriority: ru.HasPriority, Table: ru.Table}
		if p := cmp.Or(ru.From, ru.To); p.IsValid() {
			r.IPv6 = p.Addr().Is6()
		}
		out = append(out, r)
	}
	return out
}

// kernelRoute resolves a virtual route: its interface's index, scope and type.
func (m *vrrpManager) kernelRoute(rt config.VirtualRoute) (kernelRoute, error) {
	r := kernelRoute{Route: kaddr.Route{Dst: rt.Dst, Src: rt.Src, Via: rt.Via, Metric: rt.Metric, Table: rt.Table}, Dev: rt.Dev}
	if rt.Dev != "" {
		ifi, err := m.dm.deps.Host.Interface(rt.Dev)
		if err != nil {
			return kernelRoute{}, fmt.Errorf("virtual route %v: dev %s: %w", rt.Dst, rt.Dev, err)
		}
		r.Index = ifi.Index
	}
	if rt.Scope != "" {
		sc, err := kaddr.ParseScope(rt.Scope)
		if err != nil {
			return kernelRoute{}, err
		}
		r.Scope = sc
	}
	r.Type = map[string]kaddr.RouteType{"blackhole": kaddr.RouteBlackhole, "unreachable": kaddr.RouteUnreachable, "prohibit": kaddr.RouteProhibit}[rt.Type]
	return r, nil
}

// openKernel opens the kernel address handle when an instance of insts has kernel
// addresses and none is open yet, after removing what a killed previous run left
// (on the first call); without any, it only cleans up.
func (m *vrrpManager) openKernel(insts map[*vrrp.Instance]*vrrpInst) error {
	if m.kernel() != nil {
		return nil
	}
	var need *vrrpInst
	for _, st := range insts {
		if st.onKernel() {
			need = st
		}
	}
	open := m.dm.deps.KernelAddrs
	if open == nil {
		if need != nil {
			return fmt.Errorf("[[vrrp]] %q: its virtual routes, and the virtual addresses that are no [[service]]'s, go on the kernel, and this director cannot change kernel addresses (Deps.KernelAddrs)",
				need.cfg.Name)
		}
		return nil
	}
	if m.cleaned && need == nil {
		return nil
	}
	h, err := open()
	if err != nil {
		if need == nil {
			return nil
		}
		return fmt.Errorf("[[vrrp]] kernel addresses: %w", err)
	}
	kv := newKernelVIPs(m.log, h, m.record)
	if !m.cleaned {
		m.cleaned = true
		kv.cleanup(func(dev string) (int, bool) {
			ifi, err := m.dm.deps.Host.Interface(dev)
			return ifi.Index, err == nil
		})
	}
	if need == nil {
		return h.Close()
	}
	m.imu.Lock()
	m.kv = kv
	m.imu.Unlock()
	return nil
}

// becomeMaster runs on the Runner's goroutine: the controller takes the service
// VIPs, the effects goroutine adds the kernel addresses, then announces both; the
// repeats of keepalived's garp_master_delay and garp_master_refresh are armed here.
func (m *vrrpManager) becomeMaster(mb *vrrp.Member) {
	in := mb.Instance
	st := m.get(in)
	if st == nil {
		return
	}
	v := st.cfg
	ev := vrrpEvent{instance: v.Name, master: true, vips: slices.Clone(st.served), ann: st.ann, repeat: v.GARPMasterRepeat}
	if kern, kv := st.kern, m.kernel(); st.onKernel() && kv != nil {
		ev.kernel = func() []netip.Addr {
			held := kv.take(v.Name, kern)
			kv.takeRoutes(v.Name, st.routes)
			kv.takeRules(v.Name, st.rules)
			return m.announceKernel(st, held, v.GARPMasterRepeat)
		}
	}
	m.dm.inbox.post(ev)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.master[in] = true
	m.stopTimersLocked(in)
	clock := m.dm.clock
	var ts []func() bool
	if v.GARPMasterDelay > 0 {
		ts = append(ts, clock.AfterFunc(v.GARPMasterDelay, func() { m.burstIfMaster(in, v.GARPMasterRepeat) }))
	}
	if v.GARPMasterRefresh > 0 {
		var refresh func()
		refresh = func() {
			if m.burstIfMaster(in, v.GARPMasterRefreshRepeat) {
				m.mu.Lock()
				if m.master[in] {
					m.timers[in] = append(m.timers[in], clock.AfterFunc(v.GARPMasterRefresh, refresh))
				}
				m.mu.Unlock()
			}
		}
		ts = append(ts, clock.AfterFunc(v.GARPMasterRefresh, refresh))
	}
	m.timers[in] = ts
}

// entriesChanged follows a reload that changed a running instance's virtual
// addresses, routes or rules, from old to st (Reconfig.Applied: on the Runner's
// goroutine, so in order with the instance's transitions). A master keeps its
// state and serves the new set: the controller's owned set becomes st's served
// VIPs, the kernel gets the difference (kernelVIPs.update), and the addresses
// new to it are announced, garp_master_repeat times; a BACKUP or FAULT instance
// holds nothing and takes the new set when it next becomes MASTER.
func (m *vrrpManager) entriesChanged(in *vrrp.Instance, old, st *vrrpInst) {
	m.mu.Lock()
	master := m.master[in]
	m.mu.Unlock()
	if !master {
		return
	}
	v := st.cfg
	added := slices.DeleteFunc(slices.Clone(st.served), func(a netip.Addr) bool { return slices.Contains(old.served, a) })
	kv := m.kernel()
	// No ann: the effect announces only what is new, from kernel.
	ev := vrrpEvent{instance: v.Name, master: true, vips: slices.Clone(st.served), kernel: func() []netip.Addr {
		if kv != nil && (st.onKernel() || old.onKernel()) {
			added = append(added, m.announceKernel(st, kv.update(v.Name, st.kern, st.routes, st.rules), v.GARPMasterRepeat)...)
		}
		m.announce(st.ann, v.Name, added, v.GARPMasterRepeat)
		return nil
	}}
	m.dm.inbox.post(ev)
}

// announceKernel announces the kernel addresses held on other interfaces than the
// instance's, repeat times, and returns those on the instance's interface, which the
// caller announces with the service VIPs.
func (m *vrrpManager) announceKernel(st *vrrpInst, held []kernelAddr, repeat int) []netip.Addr {
	var mine []netip.Addr
	others := map[Announcer][]netip.Addr{}
	for _, a := range held {
		if ann := m.annOf(a.Dev); ann != nil && ann != st.ann {
			others[ann] = append(others[ann], a.Prefix.Addr())
			continue
		}
		mine = append(mine, a.Prefix.Addr())
	}
	for ann, addrs := range others {
		m.announce(ann, st.cfg.Name, addrs, repeat)
	}
	return mine
}

// kernel returns the kernel address manager, nil until an instance has kernel
// addresses.
func (m *vrrpManager) kernel() *kernelVIPs {
	m.imu.RLock()
	defer m.imu.RUnlock()
	return m.kv
}

// annOf returns the announcer of interface dev.
func (m *vrrpManager) annOf(dev string) Announcer {
	m.imu.RLock()
	defer m.imu.RUnlock()
	return m.annByIf[dev]
}

func (m *vrrpManager) leaveMaster(mb *vrrp.Member) {
	in := mb.Instance
	st := m.get(in)
	if st == nil {
		return
	}
	ev := vrrpEvent{instance: st.cfg.Name, master: false}
	if kv := m.kernel(); st.onKernel() && kv != nil {
		name := st.cfg.Name
		ev.kernel = func() []netip.Addr { kv.release(name); return nil }
	}
	m.dm.inbox.post(ev)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.master, in)
	m.stopTimersLocked(in)
}

// lowerPrio runs when a master heard a lower priority: keepalived repeats its
// announcements, garp_lower_prio_repeat of them now and as many again after
// garp_lower_prio_delay.
func (m *vrrpManager) lowerPrio(mb *vrrp.Member) {
	in := mb.Instance
	st := m.get(in)
	if st == nil {
		return
	}
	v := st.cfg
	m.burst(in, v.GARPLowerPrioRepeat)
	if v.GARPLowerPrioDelay <= 0 || v.GARPLowerPrioRepeat <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.master[in] {
		m.timers[in] = append(m.timers[in], m.dm.clock.AfterFunc(v.GARPLowerPrioDelay, func() { m.burstIfMaster(in, v.GARPLowerPrioRepeat) }))
	}
}

// Precondition: m.mu is held.
func (m *vrrpManager) stopTimersLocked(in *vrrp.Instance) {
	for _, stop := range m.timers[in] {
		stop()
	}
	delete(m.timers, in)
}

// burstIfMaster announces in's addresses n times if in is still master; it
// reports whether it was.
func (m *vrrpManager) burstIfMaster(in *vrrp.Instance, n int) bool {
	m.mu.Lock()
	ok := m.master[in]
	m.mu.Unlock()
	if ok {
		m.burst(in, n)
	}
	return ok
}

// burst sends n gratuitous ARPs (unsolicited NAs), back to back as keepalived does
// with vrrp_garp_interval 0, for each address in serves: its service VIPs and the
// kernel addresses it holds now (not those it was refused).
func (m *vrrpManager) burst(in *vrrp.Instance, n int) {
	st := m.get(in)
	if n <= 0 || st == nil {
		return
	}
	addrs := slices.Clone(st.served)
	if kv := m.kernel(); kv != nil {
		addrs = append(addrs, m.announceKernel(st, kv.heldAddrs(st.cfg.Name), n)...)
	}
	m.announce(st.ann, st.cfg.Name, addrs, n)
}

// announce sends n announcements of addrs on a.
func (m *vrrpManager) announce(a Announcer, instance string, addrs []netip.Addr, n int) {
	if a == nil || len(addrs) == 0 {
		return
	}
	for range max(n, 1) {
		if err := a.Announce(addrs); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Warn("VRRP gratuitous ARP/NA", "instance", instance, "err", err)
			}
			return
		}
	}
}
