package daemon

import (
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
// (garp_master_delay, garp_master_refresh).
type vrrpManager struct {
	log    *slog.Logger
	dm     *Daemon
	anns   map[*vrrp.Instance]Announcer
	all    []Announcer
	runner *vrrp.Runner
	trs    []vrrp.Transport
	cfgs   map[*vrrp.Instance]config.VRRP
	// served are each instance's VIPs gvs serves in userspace (its services'
	// addresses); kern the others, which go on the kernel while it is MASTER (kv).
	served map[*vrrp.Instance][]netip.Addr
	kern   map[*vrrp.Instance][]kernelAddr
	kv     *kernelVIPs // nil: no kernel addresses
	// annByIf is the announcer of each interface VIPs are on.
	annByIf map[string]Announcer

	// notify runs the notify commands, one queue per instance so that they run in
	// order without ever blocking the runner.
	notify *notifier

	mu     sync.Mutex // guards master and timers; never held during I/O
	master map[*vrrp.Instance]bool
	timers map[*vrrp.Instance][]func() bool
}

// newVRRP builds the instances and their sync groups and opens their transports.
func newVRRP(dm *Daemon, vs []config.VRRP, groups []config.VRRPSyncGroup) (*vrrpManager, error) {
	log := dm.log
	if dm.deps.OpenVRRP == nil {
		return nil, errors.New("[[vrrp]]: this director has no VRRP transport (Deps.OpenVRRP)")
	}
	m := &vrrpManager{log: log, dm: dm, cfgs: map[*vrrp.Instance]config.VRRP{}, anns: map[*vrrp.Instance]Announcer{},
		served: map[*vrrp.Instance][]netip.Addr{}, kern: map[*vrrp.Instance][]kernelAddr{}, annByIf: map[string]Announcer{},
		master: map[*vrrp.Instance]bool{}, timers: map[*vrrp.Instance][]func() bool{},
		notify: newNotifier(log, notifyTimeout, dm.runScript)}
	byName := map[string]*vrrp.Instance{}
	own := serviceVIPs(dm.st.cfg)
	type trKey struct {
		ifname       string
		ipv6, unicst bool
	}
	shared := map[trKey]vrrp.Transport{}
	var members []vrrp.Member
	linkUp := func(name string) bool {
		ifi, err := dm.deps.Host.Interface(name)
		return err == nil && ifi.Up
	}
	for _, v := range vs {
		ifi, err := dm.deps.Host.Interface(v.Interface)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
		}
		src := v.UnicastSrcIP
		if !src.IsValid() {
			if src, err = vrrpSource(ifi, v.IPv6()); err != nil {
				m.close()
				return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
			}
		}
		c, err := VRRPConfig(v, src)
		if err != nil {
			m.close()
			return nil, err
		}
		in, err := vrrp.NewInstance(c)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
		}
		k := trKey{ifi.Name, c.Src.Is6(), len(c.Peers) > 0}
		tr := shared[k]
		if tr == nil {
			if tr, err = dm.deps.OpenVRRP(vrrp.TransportConfig{Interface: k.ifname, IPv6: k.ipv6, Unicast: k.unicst}); err != nil {
				m.close()
				return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
			}
			shared[k] = tr
			m.trs = append(m.trs, tr)
		}
		m.cfgs[in] = v
		byName[v.Name] = in
		ann, err := m.announcer(ifi)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
		}
		m.anns[in] = ann
		for _, a := range slices.Concat(v.VIPs, v.ExcludedVIPs) {
			if own[a.Addr()] {
				m.served[in] = append(m.served[in], a.Addr())
				continue
			}
			ka, err := m.kernelAddr(a, ifi)
			if err != nil {
				m.close()
				return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
			}
			m.kern[in] = append(m.kern[in], ka)
		}
		members = append(members, vrrp.Member{Name: v.Name, Instance: in, Transport: tr,
			LinkUp: func() bool { return linkUp(ifi.Name) }, Tracks: dm.vrrpTracks(v, linkUp)})
		log.Info("VRRP instance", "instance", v.Name, "interface", ifi.Name, "vrid", c.VRID, "version", c.Version, "priority", c.Priority,
			"advert_int", c.Interval, "src", c.Src, "vips", c.Addrs, "unicast_peers", c.Peers)
	}
	if err := m.openKernel(); err != nil {
		m.close()
		return nil, err
	}
	for _, sg := range groups {
		var ins []*vrrp.Instance
		for _, n := range sg.Group {
			ins = append(ins, byName[n])
		}
		if _, err := vrrp.NewGroup(ins...); err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp_sync_group]] %q: %w", sg.Name, err)
		}
		log.Info("VRRP sync group", "group", sg.Name, "instances", sg.Group)
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
		StateChange: func(tr vrrp.Transition) {
			dm.metrics.SetVRRPState(tr.Name, tr.To.String())
			if cmds := notifyCommands(m.cfgs[tr.Instance], tr.To, tr.Instance.Priority()); len(cmds) > 0 {
				m.notify.enqueue(tr.Name, cmds)
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
	if m.kv != nil {
		// The Runner has stopped: every master has advertised priority 0.
		m.kv.releaseAll()
	}
	rx, tx, txErr := m.runner.Counters()
	m.log.Info("VRRP stopped", append([]any{"received", rx, "sent", tx, "send_errors", txErr}, attrs...)...)
	return err
}

// close releases the transports and announcers (run closes the transports too;
// closing twice is harmless).
func (m *vrrpManager) close() {
	for _, t := range m.trs {
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
	m.annByIf[ifi.Name] = a
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

// openKernel opens the kernel address handle when an instance has kernel
// addresses, and removes what a killed previous run left; without any, it only
// cleans up.
func (m *vrrpManager) openKernel() error {
	need := false
	for _, list := range m.kern {
		need = need || len(list) > 0
	}
	open := m.dm.deps.KernelAddrs
	if open == nil {
		if need {
			for in, list := range m.kern {
				if len(list) > 0 {
					return fmt.Errorf("[[vrrp]] %q: %v is no [[service]]'s address, so it goes on the kernel, and this director cannot change kernel addresses (Deps.KernelAddrs)",
						m.cfgs[in].Name, list[0].Prefix.Addr())
				}
			}
		}
		return nil
	}
	h, err := open()
	if err != nil {
		if !need {
			return nil
		}
		return fmt.Errorf("[[vrrp]] kernel addresses: %w", err)
	}
	kv := newKernelVIPs(m.log, h, recordPath(m.dm.st.cfg))
	kv.cleanup(func(dev string) (int, bool) {
		ifi, err := m.dm.deps.Host.Interface(dev)
		return ifi.Index, err == nil
	})
	if !need {
		return h.Close()
	}
	m.kv = kv
	return nil
}

// becomeMaster runs on the Runner's goroutine: the controller takes the service
// VIPs, the effects goroutine adds the kernel addresses, then announces both; the
// repeats of keepalived's garp_master_delay and garp_master_refresh are armed here.
func (m *vrrpManager) becomeMaster(mb *vrrp.Member) {
	in := mb.Instance
	v := m.cfgs[in]
	ev := vrrpEvent{instance: v.Name, master: true, vips: slices.Clone(m.served[in]), ann: m.anns[in], repeat: v.GARPMasterRepeat}
	if kern := m.kern[in]; len(kern) > 0 {
		ev.kernel = func() []netip.Addr { return m.announceKernel(in, m.kv.take(v.Name, kern), v.GARPMasterRepeat) }
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

// announceKernel announces the kernel addresses held on other interfaces than the
// instance's, repeat times, and returns those on the instance's interface, which the
// effect announces with the service VIPs.
func (m *vrrpManager) announceKernel(in *vrrp.Instance, held []kernelAddr, repeat int) []netip.Addr {
	own := m.anns[in]
	var mine []netip.Addr
	others := map[string][]netip.Addr{}
	for _, a := range held {
		if ann := m.annByIf[a.Dev]; ann != nil && ann != own {
			others[a.Dev] = append(others[a.Dev], a.Prefix.Addr())
			continue
		}
		mine = append(mine, a.Prefix.Addr())
	}
	for dev, addrs := range others {
		m.announce(m.annByIf[dev], m.cfgs[in].Name, addrs, repeat)
	}
	return mine
}

func (m *vrrpManager) leaveMaster(mb *vrrp.Member) {
	in := mb.Instance
	v := m.cfgs[in]
	ev := vrrpEvent{instance: v.Name, master: false}
	if len(m.kern[in]) > 0 {
		ev.kernel = func() []netip.Addr { m.kv.release(v.Name); return nil }
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
	v := m.cfgs[in]
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
	if n <= 0 {
		return
	}
	addrs := slices.Clone(m.served[in])
	if m.kv != nil {
		addrs = append(addrs, m.announceKernel(in, m.kv.heldAddrs(m.cfgs[in].Name), n)...)
	}
	m.announce(m.anns[in], m.cfgs[in].Name, addrs, n)
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
