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
		master: map[*vrrp.Instance]bool{}, timers: map[*vrrp.Instance][]func() bool{},
		notify: newNotifier(log, notifyTimeout, dm.runScript)}
	byName := map[string]*vrrp.Instance{}
	annByIf := map[string]Announcer{}
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
		ann, ok := annByIf[ifi.Name]
		if !ok && dm.deps.NewAnnouncer != nil {
			if ifi.Name == dm.ifi.Name && dm.ann != nil {
				ann = dm.ann
			} else {
				if ann, err = dm.deps.NewAnnouncer(ifi); err != nil {
					m.close()
					return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
				}
				m.all = append(m.all, ann)
			}
			annByIf[ifi.Name] = ann
		}
		m.anns[in] = ann
		members = append(members, vrrp.Member{Name: v.Name, Instance: in, Transport: tr,
			LinkUp: func() bool { return linkUp(ifi.Name) }, Tracks: dm.vrrpTracks(v, linkUp)})
		log.Info("VRRP instance", "instance", v.Name, "interface", ifi.Name, "vrid", c.VRID, "version", c.Version, "priority", c.Priority,
			"advert_int", c.Interval, "src", c.Src, "vips", c.Addrs, "unicast_peers", c.Peers)
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
		Gratuitous: func(mb *vrrp.Member) {
			v := m.cfgs[mb.Instance]
			m.burst(mb.Instance, v.VirtualIPAddress, v.GARPMasterRepeat)
		},
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

// becomeMaster runs on the Runner's goroutine: the controller takes the VIPs and
// announces them; the repeats of keepalived's garp_master_delay and
// garp_master_refresh are armed here.
func (m *vrrpManager) becomeMaster(mb *vrrp.Member) {
	v := m.cfgs[mb.Instance]
	vips := slices.Clone(v.VirtualIPAddress)
	m.dm.inbox.post(vrrpEvent{instance: v.Name, master: true, vips: vips, ann: m.anns[mb.Instance], repeat: v.GARPMasterRepeat})
	m.mu.Lock()
	defer m.mu.Unlock()
	m.master[mb.Instance] = true
	m.stopTimersLocked(mb.Instance)
	clock := m.dm.clock
	var ts []func() bool
	if v.GARPMasterDelay > 0 {
		ts = append(ts, clock.AfterFunc(v.GARPMasterDelay, func() { m.burstIfMaster(mb.Instance, vips, v.GARPMasterRepeat) }))
	}
	if v.GARPMasterRefresh > 0 {
		var refresh func()
		refresh = func() {
			if m.burstIfMaster(mb.Instance, vips, v.GARPMasterRefreshRepeat) {
				m.mu.Lock()
				if m.master[mb.Instance] {
					m.timers[mb.Instance] = append(m.timers[mb.Instance], clock.AfterFunc(v.GARPMasterRefresh, refresh))
				}
				m.mu.Unlock()
			}
		}
		ts = append(ts, clock.AfterFunc(v.GARPMasterRefresh, refresh))
	}
	m.timers[mb.Instance] = ts
}

func (m *vrrpManager) leaveMaster(mb *vrrp.Member) {
	v := m.cfgs[mb.Instance]
	m.dm.inbox.post(vrrpEvent{instance: v.Name, master: false})
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.master, mb.Instance)
	m.stopTimersLocked(mb.Instance)
}

// Precondition: m.mu is held.
func (m *vrrpManager) stopTimersLocked(in *vrrp.Instance) {
	for _, stop := range m.timers[in] {
		stop()
	}
	delete(m.timers, in)
}

// burstIfMaster announces vips n times if in is still master; it reports whether it
// was.
func (m *vrrpManager) burstIfMaster(in *vrrp.Instance, vips []netip.Addr, n int) bool {
	m.mu.Lock()
	ok := m.master[in]
	m.mu.Unlock()
	if ok {
		m.burst(in, vips, n)
	}
	return ok
}

// burst sends n gratuitous ARPs (unsolicited NAs) per VIP, back to back as
// keepalived does with vrrp_garp_interval 0.
func (m *vrrpManager) burst(in *vrrp.Instance, vips []netip.Addr, n int) {
	a := m.anns[in]
	if a == nil {
		return
	}
	for range max(n, 1) {
		if err := a.Announce(vips); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Warn("VRRP gratuitous ARP/NA", "instance", m.cfgs[in].Name, "err", err)
			}
			return
		}
	}
}
